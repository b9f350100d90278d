"""structlog JSON logs, OpenTelemetry spans and Prometheus metrics for background tasks, end to end.

Run it:  pip install 'anyio-taskflow[structlog,prometheus]' opentelemetry-sdk
         uvicorn examples.observability_app:app
Then:    curl -X POST "http://localhost:8000/orders/42"
         curl "http://localhost:8000/tasks/metrics/prometheus"

Every JSON line a task writes carries the request's `request_id` and the task's `task_id`, `func_name`,
`attempt` and `tags`; each attempt is a span linked to the request's; the metrics route serves Prometheus.
"""

from __future__ import annotations

import uuid

import structlog
from fastapi import Depends, FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from taskflow import ManagedBackgroundTasks, StructlogObserver, TaskAdmin, TaskManager, task_log
from taskflow.observers import redact_keys

# structlog: your configuration; taskflow never calls structlog.configure().
structlog.configure(
    processors=[
        structlog.contextvars.merge_contextvars,  # the request's and the task's bound values
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso"),
        structlog.processors.JSONRenderer(),
    ]
)

# OpenTelemetry: any tracer provider turns task spans on (swap the exporter for OTLP in production).
spans = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(spans))
trace.set_tracer_provider(provider)
tracer = trace.get_tracer("shop")

task_manager = TaskManager(loggers=[StructlogObserver(processors=[redact_keys("card_number")])])
log = structlog.get_logger("shop")


@task_manager.task(retries=1)
async def charge(order_id: int, card_number: str) -> None:
    log.info("charging", order_id=order_id)  # has request_id, task_id, func_name, attempt, tags
    task_log("charged", card_number=card_number)  # through StructlogObserver: card_number redacted


app = FastAPI()
TaskAdmin(app, task_manager)  # also serves /tasks/metrics/prometheus


@app.post("/orders/{order_id}")
async def create_order(
    order_id: int,
    tasks: ManagedBackgroundTasks = Depends(task_manager.get_tasks),  # noqa: B008
) -> dict[str, str]:
    structlog.contextvars.bind_contextvars(request_id=uuid.uuid4().hex)
    with tracer.start_as_current_span("create_order"):
        task_id = tasks.add_task(charge, order_id, "4111 1111 1111 1111", tags={"shop": "eu"})
    return {"task_id": task_id}
