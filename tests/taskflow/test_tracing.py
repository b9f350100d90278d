"""OpenTelemetry: a span per attempt, its parent or link to the submitting request span, retries linked
to the failed attempt, and the link kept across a restart (the SDK's in-memory exporter)."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from taskflow import TaskManager, TaskStatus
from tests.helpers import wait_finished, wait_until

_EXPORTER = InMemorySpanExporter()


def _install() -> None:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))


_install()
request_tracer = trace.get_tracer("tests.request")


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


def task_spans(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


def define(tm: TaskManager, kind: str, body: Any, **options: Any) -> Any:
    if kind == "async":

        async def job() -> None:
            body()
    else:

        def job() -> None:  # type: ignore[misc]
            body()

    return tm.task(name="job", **options)(job)


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_a_task_run_within_the_request_span_is_its_child(kind: str, spans: Any) -> None:
    """Run inline while the request span is open: the attempt's span is its child, with the attributes."""
    tm = TaskManager()
    job = define(tm, kind, lambda: None)
    with request_tracer.start_as_current_span("POST /orders") as request:
        task_id, _ = tm.launcher.submit(job, (), {}, tags={"tenant": "a"})
        await tm.launcher.start(task_id)  # no lifespan: runs inline, here
    (span,) = task_spans(spans, "job")
    assert span.parent is not None and span.parent.span_id == request.get_span_context().span_id
    assert span.context.trace_id == request.get_span_context().trace_id
    attrs = dict(span.attributes or {})
    assert attrs["taskflow.task_id"] == task_id and attrs["taskflow.func_name"] == "job"
    assert attrs["taskflow.attempt"] == 0 and attrs["taskflow.tag.tenant"] == "a"
    assert attrs["taskflow.instance"]
    assert span.status.status_code is StatusCode.UNSET


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_a_task_run_after_the_request_ended_links_to_it(kind: str, spans: Any) -> None:
    """Handed to the lifespan after the request span ended: a new trace, linked to the request's span."""
    tm = TaskManager()
    job = define(tm, kind, lambda: None)
    async with tm.running():
        with request_tracer.start_as_current_span("POST /orders") as request:
            task_id, _ = tm.launcher.submit(job, (), {})
        await tm.launcher.start(task_id)
        await wait_finished(tm, [task_id])
    (span,) = task_spans(spans, "job")
    assert span.parent is None and span.context.trace_id != request.get_span_context().trace_id
    (link,) = span.links
    assert link.context.span_id == request.get_span_context().span_id
    assert link.context.trace_id == request.get_span_context().trace_id


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_a_retry_links_to_the_failed_attempt(kind: str, spans: Any) -> None:
    """Each failed attempt records its exception and an error status; the retry's span links to it."""
    tm = TaskManager()
    calls: list[int] = []

    def body() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("first try")

    job = define(tm, kind, body, retries=1)
    async with tm.running():
        task_id, _ = tm.launcher.submit(job, (), {})
        await tm.launcher.start(task_id)
        (record,) = await wait_finished(tm, [task_id])
    assert record.status is TaskStatus.SUCCESS
    first, second = sorted(task_spans(spans, "job"), key=lambda s: s.start_time or 0)
    assert first.status.status_code is StatusCode.ERROR and "first try" in (first.status.description or "")
    assert [e.name for e in first.events] == ["exception"]
    assert second.status.status_code is StatusCode.UNSET
    assert [dict(s.attributes or {})["taskflow.attempt"] for s in (first, second)] == [0, 1]
    assert [link.context.span_id for link in second.links] == [first.context.span_id]


async def test_a_task_requeued_across_a_restart_links_to_its_original_trace(
    tmp_path: Path, spans: Any
) -> None:
    """The submitting span's context is stored with the record: the run after a restart links back to it."""
    db = str(tmp_path / "tasks.db")
    ran: list[int] = []

    def make() -> Any:
        tm = TaskManager(snapshot_db=db, shutdown_grace=0)

        @tm.task(name="job", persist=True)
        async def job() -> None:
            ran.append(1)

        return tm, job

    first, job = make()
    async with first.running():
        with request_tracer.start_as_current_span("POST /orders") as request:
            task_id, _ = first.launcher.submit(job, (), {})
        # never started: kept PENDING in the store for the next start
    assert first.get(task_id).status is TaskStatus.PENDING and not ran
    second, _ = make()
    async with second.running():
        await wait_finished(second, [task_id])
    assert second.get(task_id).trace_context is not None
    (span,) = task_spans(spans, "job")
    (link,) = span.links
    assert link.context.trace_id == request.get_span_context().trace_id
    assert link.context.span_id == request.get_span_context().span_id
    assert span.parent is None


async def test_cancelled_attempt_ends_its_span_marked_cancelled(spans: Any) -> None:
    """A running task cancelled through the API still ends its span, with an error status saying so."""
    tm = TaskManager()
    started = anyio.Event()

    @tm.task(name="slow")
    async def slow() -> None:
        started.set()
        await anyio.sleep_forever()

    async with tm.running():
        task_id, _ = tm.launcher.submit(slow, (), {})
        await tm.launcher.start(task_id)
        await started.wait()
        tm.cancel(task_id)
        await wait_until(lambda: bool(task_spans(spans, "slow")))
    (span,) = task_spans(spans, "slow")
    assert span.status.status_code is StatusCode.ERROR and dict(span.attributes or {})["taskflow.cancelled"]


_SCRIPT = textwrap.dedent(
    """
    import sys
    import anyio
    from taskflow import TaskManager
    from taskflow._tracing import tracer

    async def main():
        tm = TaskManager()

        @tm.task(retries=1)
        async def job():
            if not job.calls:
                job.calls.append(1)
                raise ValueError("once")

        job.calls = []
        task_id, _ = tm.launcher.submit(job, (), {})
        await tm.launcher.start(task_id)
        record = tm.get(task_id)
        print(record.status.value, record.retries_used, record.trace_context, tracer())

    anyio.run(main)
    """
)


def test_without_a_tracer_provider_tasks_run_unchanged_without_spans() -> None:
    """With OpenTelemetry's API imported (FastAPI does) but no tracer provider set, tasks and retries run
    as before, no span is made and no trace context is stored (a fresh process: this module sets one)."""
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT], cwd=root, capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()
    assert out == ["success", "1", "None", "None"]


_LATE_PROVIDER = textwrap.dedent(
    """
    import sys, time
    import anyio
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from taskflow import TaskManager
    from taskflow import _tracing
    from taskflow._tracing import UNSET_RECHECK, tracer

    if sys.argv[1] == "lifespan":
        _tracing.UNSET_RECHECK = 3600  # only the lifespan's start can make it ask again
    assert tracer() is None  # no provider yet: the answer is kept for a while
    trace.set_tracer_provider(TracerProvider())
    print(tracer() is None)  # still the kept answer

    async def main():
        async with TaskManager().running():  # a starting lifespan asks again at once
            print(tracer() is not None)

    if sys.argv[1] == "wait":
        time.sleep(UNSET_RECHECK * 2)
        print(tracer() is not None)  # asked again once it is stale
    else:
        anyio.run(main)
    """
)


@pytest.mark.parametrize("then", ["wait", "lifespan"])
def test_a_provider_set_later_is_picked_up_once_the_kept_answer_is_stale(then: str) -> None:
    """While no provider is set, "none" is kept for `UNSET_RECHECK` seconds (asking costs an environment
    lookup per task); a provider set later is used once that answer is stale, or at once by a lifespan
    that starts after it (a fresh process: this module sets a provider)."""
    root = Path(__file__).resolve().parents[2]
    script = [sys.executable, "-c", _LATE_PROVIDER, then]
    out = subprocess.run(script, cwd=root, capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.split() == ["True", "True"]


def test_taskflow_never_imports_opentelemetry() -> None:
    """No module of taskflow or supervisors imports opentelemetry: it is found in sys.modules, if there."""
    root = Path(__file__).resolve().parents[2]
    offenders = []
    for path in [*root.joinpath("taskflow").rglob("*.py"), *root.joinpath("supervisors").rglob("*.py")]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "opentelemetry"]
    assert offenders == []
