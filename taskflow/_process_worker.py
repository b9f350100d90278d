"""The worker side of process tasks: the loop each worker process of the pool runs (see `_process_pool`).

A worker is a fresh interpreter the pool starts with `python -c "...main()" FD` (spawn semantics: nothing
of the parent's memory is inherited, which is what makes it safe to start from a threaded async server).
Its first message is multiprocessing's own preparation data for a spawned child (`sys.path`, the working
directory, the parent's main module imported again as `__mp_main__`), so task functions resolve exactly as
under `multiprocessing`'s 'spawn' start method. Then it runs one attempt at a time until the connection
closes:

    parent -> worker  pickle((func, args, kwargs, info))     one attempt; `func` goes by reference
    worker -> parent  ("log", text, level, pickled extra)    a task_log() line, as soon as it is written
                      ("checkpoint", state)                  get_task_context().checkpoint(state)
                      ("ok", pickled value)                  the attempt returned ...
                      ("error", pickled error or None, label, traceback text, fatal)  ... or raised

A frame holds builtins only, what came from user code is pickled inside it separately: the parent can always
read a frame, and only a user value may fail to come back (it then gets a `ProcessTaskError`).

SIGINT is ignored (Ctrl+C reaches the whole process group; the parent decides when its workers stop), and a
watcher thread ends the worker if the parent dies, so a killed server leaves no worker behind.
"""

from __future__ import annotations

import contextvars
import multiprocessing.spawn
import os
import pickle
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from ._checkpoint import encode_checkpoint
from ._context import bind
from ._exceptions import ProcessTaskError
from ._models import TaskRecord, TaskStatus
from ._traceback import format_traceback

_PROTOCOL = pickle.HIGHEST_PROTOCOL
_PARENT_POLL = 0.5  # seconds between two checks that the parent is alive


class WorkerScope:
    """The task scope bound while a worker runs an attempt: `get_task_context()` and `task_log()` work in
    the body as in the parent; lines and checkpoints go to the parent at once."""

    __slots__ = ("attempt", "checkpoint", "conn", "record")

    def __init__(self, conn: Connection, info: tuple[str, str, int, dict[str, str], Any]) -> None:
        task_id, func_name, attempt, tags, checkpoint = info
        self.conn = conn
        self.attempt = attempt
        self.checkpoint = checkpoint
        self.record = TaskRecord(task_id=task_id, func_name=func_name, status=TaskStatus.RUNNING, tags=tags)

    @property
    def on_log(self) -> Any:
        return self._send_log

    def _send_log(
        self, record: TaskRecord, attempt: int, text: str, level: str, extra: dict[str, Any]
    ) -> None:
        try:
            packed = pickle.dumps(extra, _PROTOCOL)
        except Exception:  # extra fields are for observers: their text is enough
            packed = pickle.dumps({key: repr(value) for key, value in extra.items()}, _PROTOCOL)
        self.conn.send_bytes(pickle.dumps(("log", text, level, packed), _PROTOCOL))

    def save_checkpoint(self, state: Any) -> None:
        encode_checkpoint(state, None)  # a state that is not JSON raises here, in the body
        self.checkpoint = state
        self.conn.send_bytes(pickle.dumps(("checkpoint", state), _PROTOCOL))

    def load_checkpoint(self) -> Any:
        return self.checkpoint


def main() -> None:
    """The worker process: `sys.argv[1]` is the file descriptor of its connection to the pool."""
    conn = Connection(int(sys.argv[1]))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()
    threading.Thread(target=_watch_parent, args=(parent,), name="taskflow-parent-watch", daemon=True).start()
    try:
        preparation = pickle.loads(conn.recv_bytes())
    except (EOFError, OSError):
        return
    multiprocessing.spawn.prepare(preparation)
    serve(conn)


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(_PARENT_POLL)
    os._exit(1)  # the parent died: nobody will read our results


def serve(conn: Connection) -> None:
    """Run attempts until the parent closes the connection (or a body raised a `BaseException`)."""
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return
        frame = _attempt(conn, data)
        conn.send_bytes(pickle.dumps(frame, _PROTOCOL))
        if frame[-1] is True:
            return


def _attempt(conn: Connection, data: bytes) -> tuple[Any, ...]:
    """Run one attempt in a fresh context; its final frame (an error frame ends with whether the worker
    stops after it)."""
    try:
        func, args, kwargs, info = pickle.loads(data)
    except Exception as exc:
        error = ProcessTaskError(
            f"the worker process could not unpickle the call: {type(exc).__name__}: {exc}"
        )
        return _error_frame(error, exc)
    scope = WorkerScope(conn, info)
    try:
        value = contextvars.copy_context().run(_call, scope, func, args, kwargs)
    except Exception as exc:
        return _error_frame(exc, exc)
    except BaseException as exc:  # SystemExit, KeyboardInterrupt: never re-raised in the parent
        error = ProcessTaskError(f"{_label(exc)} in the worker process")
        return _error_frame(error, exc, fatal=True)
    try:
        return ("ok", pickle.dumps(value, _PROTOCOL))
    except Exception as exc:
        error = ProcessTaskError(
            f"the return value of {scope.record.func_name} ({type(value).__qualname__}) cannot be "
            f"pickled: {exc}"
        )
        return _error_frame(error, exc)


def _call(scope: WorkerScope, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    bind(scope)
    return func(*args, **kwargs)


def _label(exc: BaseException) -> str:
    text = str(exc)
    name = type(exc).__qualname__
    return f"{name}: {text}" if text else name


def _error_frame(error: Exception, original: BaseException, *, fatal: bool = False) -> tuple[Any, ...]:
    """The frame of a failed attempt: `error` pickled if it comes back as itself, else a substitute; the
    traceback text is `original`'s, from the task's function on."""
    trace = format_traceback(original, caller=__file__)
    try:
        packed: bytes | None = pickle.dumps(error, _PROTOCOL)
        pickle.loads(packed)  # type: ignore[arg-type]  # just made  # an exception class whose arguments do not round-trip fails here, not there
    except Exception:
        packed = None
    return ("error", packed, _label(error), trace, fatal)
