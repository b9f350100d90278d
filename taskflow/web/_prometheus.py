"""`GET {path}/metrics/prometheus`: the task manager's metrics in the Prometheus text format, or OpenMetrics
when the scraper asks for it, behind the same auth as the rest of the admin routes (see `taskflow.metrics`).
Without prometheus-client installed the route answers 501 saying what to install."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request, Response

from ._manager import TaskManager


def build_prometheus_router(task_manager: TaskManager, *, dependencies: Sequence[Any]) -> APIRouter:
    """The router of the metrics route (its prefix is the admin path)."""
    router = APIRouter(dependencies=list(dependencies))
    try:
        from prometheus_client import CollectorRegistry
        from prometheus_client.exposition import choose_encoder

        from ..metrics import TaskflowCollector
    except ImportError:

        @router.get("/metrics/prometheus", include_in_schema=False)
        def missing() -> Response:
            return Response(
                "Prometheus metrics need prometheus-client: pip install 'anyio-taskflow[prometheus]'\n",
                status_code=501,
                media_type="text/plain",
            )

        return router

    registry = CollectorRegistry(auto_describe=False)
    registry.register(TaskflowCollector(task_manager))

    @router.get("/metrics/prometheus", include_in_schema=False)
    def metrics(request: Request) -> Response:
        encode, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encode(registry), media_type=content_type)

    return router
