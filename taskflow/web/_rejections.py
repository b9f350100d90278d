"""The HTTP answer to a refused task: `TaskAdmin`, `install()` and `init_app()` register `reject_handler`
for `TaskRejected`, so a route whose `add_task` was refused (its queue or the process backlog was full)
answers 429 Too Many Requests with `Retry-After`, instead of a 500."""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from .._exceptions import QueueFull, TaskRejected


async def reject_handler(request: Request, exc: Exception) -> Response:
    """A refused task (`TaskRejected`): 429 Too Many Requests with `Retry-After` in whole seconds."""
    assert isinstance(exc, TaskRejected)
    body: dict[str, Any] = {"detail": str(exc), "task_id": exc.task_id}
    if isinstance(exc, QueueFull):
        body["queue"] = exc.queue
    retry_after = str(max(1, math.ceil(exc.retry_after)))
    return JSONResponse(body, status_code=429, headers={"Retry-After": retry_after})


def handle_rejections(app: FastAPI) -> None:
    """Answer `TaskRejected` raised by `app`'s routes with 429 (unless the app handles it itself)."""
    if TaskRejected not in app.exception_handlers:
        app.add_exception_handler(TaskRejected, reject_handler)
