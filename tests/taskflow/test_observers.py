"""The observer classes: level rules, line formats, file/stdout writes off the loop, structlog, chains."""

from __future__ import annotations

import logging
import sys
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
import structlog
from structlog.testing import capture_logs

from taskflow._models import TaskStatus
from taskflow.observers import (
    FileLogger,
    InMemoryLogger,
    LifecycleEvent,
    LogEvent,
    LoggerChain,
    StdoutLogger,
    StructlogObserver,
    TaskObserver,
)

WHEN = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
TASK_ID = "1a2b3c4d-5e6f-7080-90a0-b0c0d0e0f000"


def log_event(message: str = "hello", level: str = "info", **extra: Any) -> LogEvent:
    return LogEvent(TASK_ID, "send_email", message, level, WHEN, 0, tags={"tenant": "a"}, extra=extra)


def lifecycle(status: TaskStatus, error: str | None = None) -> LifecycleEvent:
    return LifecycleEvent(TASK_ID, "send_email", status, WHEN, 1, 1, duration=0.5, error=error)


class Plain(TaskObserver):
    """An observer that forgets to call super().__init__()."""

    def __init__(self) -> None:
        pass


class Recorder:
    """A stand-in for sys.stdout that remembers which thread wrote."""

    def __init__(self) -> None:
        self.writes: list[str] = []
        self.threads: set[int] = set()

    def write(self, text: str) -> int:
        self.writes.append(text)
        self.threads.add(threading.get_ident())
        return len(text)

    def flush(self) -> None:
        pass


@pytest.fixture
def thread_hops(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Count calls to anyio.to_thread.run_sync (one per batch is the contract)."""
    calls: list[object] = []
    real = anyio.to_thread.run_sync

    async def counting(func: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(func)
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting)
    return calls


# ---- levels --------------------------------------------------------------------------------------------


def test_invalid_min_level_is_a_value_error() -> None:
    """min_level must be one of the four level names."""
    with pytest.raises(ValueError, match="min_level must be one of debug, info, warning, error"):
        InMemoryLogger(min_level="verbose")


@pytest.mark.parametrize(
    ("min_level", "level", "expected"),
    [
        ("debug", "debug", True), ("info", "debug", False), ("info", "info", True),
        ("info", "warning", True), ("warning", "info", False), ("error", "warning", False),
        ("error", "error", True), ("info", "nonsense", True), ("warning", "nonsense", False),
    ],
)  # fmt: skip
def test_should_log_orders_levels(min_level: str, level: str, expected: bool) -> None:
    """debug < info < warning < error; an unknown level counts as info."""
    assert InMemoryLogger(min_level=min_level)._should_log(level) is expected


@pytest.mark.parametrize(
    ("status", "at_warning", "at_error"),
    [
        (TaskStatus.PENDING, False, False), (TaskStatus.RUNNING, False, False),
        (TaskStatus.SUCCESS, False, False), (TaskStatus.FAILED, True, True),
        (TaskStatus.INTERRUPTED, True, False), (TaskStatus.CANCELLED, True, False),
    ],
)  # fmt: skip
def test_lifecycle_levels_by_status(status: TaskStatus, at_warning: bool, at_error: bool) -> None:
    """failed is error, interrupted and cancelled are warning, the rest info."""
    assert InMemoryLogger(min_level="warning")._should_log_lifecycle(lifecycle(status)) is at_warning
    assert InMemoryLogger(min_level="error")._should_log_lifecycle(lifecycle(status)) is at_error
    assert InMemoryLogger(min_level="info")._should_log_lifecycle(lifecycle(status)) is True


async def test_subclass_without_super_init_uses_info_and_no_op_hooks() -> None:
    """The base hooks are optional no-ops and the level default holds without super().__init__()."""
    observer = Plain()
    assert observer._should_log("info")
    assert not observer._should_log("debug")
    await observer.on_log(log_event())
    await observer.on_lifecycle(lifecycle(TaskStatus.SUCCESS))
    await observer.startup()
    await observer.flush()
    await observer.close()


# ---- in memory and chains -------------------------------------------------------------------------------


async def test_in_memory_logger_filters_logs_but_keeps_every_lifecycle_event() -> None:
    """Log events pass min_level (default debug); lifecycle events are always kept; clear() empties."""
    default, strict = InMemoryLogger(), InMemoryLogger(min_level="error")
    for observer in (default, strict):
        await observer.on_log(log_event(level="debug"))
        await observer.on_lifecycle(lifecycle(TaskStatus.SUCCESS))
    assert [e.level for e in default.log_events] == ["debug"]
    assert strict.log_events == []
    assert len(strict.lifecycle_events) == 1
    strict.clear()
    assert strict.lifecycle_events == []


async def test_logger_chain_calls_in_order_and_isolates_failures(caplog: pytest.LogCaptureFixture) -> None:
    """A raising observer is logged on taskflow.observers and the next one still gets the event."""
    seen: list[str] = []

    class Broken(TaskObserver):
        async def on_log(self, event: LogEvent) -> None:
            seen.append("broken")
            raise RuntimeError("observer bug")

    class Working(TaskObserver):
        async def on_log(self, event: LogEvent) -> None:
            seen.append("working")

    with caplog.at_level(logging.ERROR, logger="taskflow.observers"):
        await LoggerChain([Broken(), Working()]).on_log(log_event())
    assert seen == ["broken", "working"]
    assert "observer bug" in caplog.text


# ---- line observers -------------------------------------------------------------------------------------


async def test_stdout_line_formats(monkeypatch: pytest.MonkeyPatch) -> None:
    """`[id8] [func] <UTC ts> message key=value` and `... -- STATUS error=...` for failures."""
    out = Recorder()
    monkeypatch.setattr(sys, "stdout", out)
    logger = StdoutLogger()
    await logger.on_log(log_event("sent", user=7, note="two words"))
    shifted = LogEvent(TASK_ID, "f", "m", "info", WHEN.astimezone(timezone(timedelta(hours=5))), 0)
    await logger.on_log(shifted)
    await logger.on_lifecycle(lifecycle(TaskStatus.FAILED, error="boom"))
    await logger.on_lifecycle(lifecycle(TaskStatus.SUCCESS))
    await logger.flush()
    assert "".join(out.writes).splitlines() == [
        '[d0e0f000] [send_email] 2026-01-01T12:00:00Z sent user=7 note="two words"',
        "[d0e0f000] [f] 2026-01-01T12:00:00Z m",
        "[d0e0f000] [send_email] 2026-01-01T12:00:00Z -- FAILED error=boom",
        "[d0e0f000] [send_email] 2026-01-01T12:00:00Z -- SUCCESS",
    ]


async def test_stdout_writes_off_the_loop_once_per_batch(
    monkeypatch: pytest.MonkeyPatch, thread_hops: list[object]
) -> None:
    """Lines are buffered and written in a worker thread, in one write per flush."""
    out = Recorder()
    monkeypatch.setattr(sys, "stdout", out)
    logger = StdoutLogger(log_lifecycle=False, min_level="warning")
    for level in ("info", "warning", "error"):
        await logger.on_log(log_event(level=level))
    await logger.on_lifecycle(lifecycle(TaskStatus.FAILED))
    assert out.writes == []
    await logger.flush()
    assert len(out.writes) == 1
    assert out.writes[0].count("\n") == 2
    assert threading.get_ident() not in out.threads
    assert len(thread_hops) == 1


async def test_file_logger_writes_lines_in_a_worker_thread(tmp_path: Path, thread_hops: list[object]) -> None:
    """Lines reach the file through the per-path stdlib logger, from a thread other than the loop's."""
    path = tmp_path / "logs" / "tasks.log"  # the directory is created on the first write
    logger = FileLogger(path, log_lifecycle=True)
    threads: list[int] = []

    class ThreadSpy(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            threads.append(threading.get_ident())

    stdlib_logger = logging.getLogger(f"taskflow.observers.file.{path}")
    assert stdlib_logger.propagate is False
    spy = ThreadSpy()
    stdlib_logger.addHandler(spy)
    try:
        await logger.on_log(log_event("one"))
        await logger.on_log(log_event("skipped", level="debug"))
        await logger.on_log(log_event("two", level="error"))
        await logger.on_lifecycle(lifecycle(TaskStatus.FAILED, error="boom"))
        await logger.close()
    finally:
        stdlib_logger.removeHandler(spy)
    assert path.read_text().splitlines() == [
        "[d0e0f000] [send_email] 2026-01-01T12:00:00Z one",
        "[d0e0f000] [send_email] 2026-01-01T12:00:00Z two",
        "[d0e0f000] [send_email] 2026-01-01T12:00:00Z -- FAILED error=boom",
    ]
    assert len(threads) == 3
    assert threading.get_ident() not in threads
    assert len(thread_hops) == 2  # one flush of the batch, one to close the file


async def test_file_logger_skips_lifecycle_by_default_and_closes_its_handler(tmp_path: Path) -> None:
    """log_lifecycle defaults to False; close() removes and closes the handler."""
    path = tmp_path / "tasks.log"
    logger = FileLogger(str(path))
    await logger.on_lifecycle(lifecycle(TaskStatus.SUCCESS))
    await logger.on_log(log_event())
    await logger.flush()
    stdlib_logger = logging.getLogger(f"taskflow.observers.file.{path}")
    assert len(stdlib_logger.handlers) == 1
    await logger.close()
    assert stdlib_logger.handlers == []
    assert path.read_text().count("\n") == 1


async def test_file_logger_rotates(tmp_path: Path) -> None:
    """In rotate mode the file rolls over at max_bytes and keeps backup_count old files."""
    path = tmp_path / "tasks.log"
    logger = FileLogger(path, max_bytes=200, backup_count=2)
    for i in range(40):
        await logger.on_log(log_event(f"line {i:02d}"))
    await logger.close()
    assert path.exists()
    assert (tmp_path / "tasks.log.1").exists()
    assert (tmp_path / "tasks.log.2").exists()
    assert not (tmp_path / "tasks.log.3").exists()
    assert path.stat().st_size <= 200
    assert path.read_text().splitlines()[-1].endswith("line 39")


async def test_file_logger_watched_mode_follows_logrotate(tmp_path: Path) -> None:
    """In watched mode, a file moved away by logrotate is reopened at the original path."""
    path = tmp_path / "tasks.log"
    logger = FileLogger(path, mode="watched")
    await logger.on_log(log_event("before"))
    await logger.flush()
    path.rename(tmp_path / "tasks.log.old")
    await logger.on_log(log_event("after"))
    await logger.close()
    assert path.read_text().strip().endswith("after")
    assert (tmp_path / "tasks.log.old").read_text().strip().endswith("before")


def test_file_logger_rejects_unknown_mode(tmp_path: Path) -> None:
    """mode is "rotate" or "watched"."""
    with pytest.raises(ValueError, match="mode must be"):
        FileLogger(tmp_path / "x.log", mode="daily")  # type: ignore[arg-type]


# ---- structlog ------------------------------------------------------------------------------------------


async def test_structlog_observer_binds_task_fields_and_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each event is logged with task_id, func_name, attempt, tags and extras; configure() is never called."""

    def no_configure(**kwargs: Any) -> None:
        raise AssertionError("the library must not configure structlog")

    observer = StructlogObserver(min_level="info")
    with capture_logs() as logs:
        monkeypatch.setattr(structlog, "configure", no_configure)
        await observer.on_log(log_event("charged", level="warning", amount=5, task_id="clash"))
        await observer.on_log(log_event("hidden", level="debug"))
        await observer.on_lifecycle(lifecycle(TaskStatus.FAILED, error="boom"))
        await observer.on_lifecycle(lifecycle(TaskStatus.RUNNING))
        await observer.close()
    assert logs == [
        {
            "event": "charged", "log_level": "warning", "task_id": TASK_ID, "func_name": "send_email",
            "attempt": 0, "tags": {"tenant": "a"}, "amount": 5, "extra_task_id": "clash",
        },
        {
            "event": "task failed", "log_level": "error", "task_id": TASK_ID, "func_name": "send_email",
            "attempt": 1, "tags": {}, "status": "failed", "retries_used": 1, "duration": 0.5, "error": "boom",
        },
        {
            "event": "task running", "log_level": "info", "task_id": TASK_ID, "func_name": "send_email",
            "attempt": 1, "tags": {}, "status": "running", "retries_used": 1, "duration": 0.5,
        },
    ]  # fmt: skip


def test_structlog_missing_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without structlog installed, the error says which extra to install."""
    monkeypatch.setitem(sys.modules, "structlog", None)
    with pytest.raises(ImportError, match=r"pip install 'anyio-taskflow\[structlog\]'"):
        StructlogObserver()
