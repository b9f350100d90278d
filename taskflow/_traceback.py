"""The stack trace stored on a failed task: `traceback.format_exception`'s text, made cheaply.

It starts at the task's own function (the supervisor's, anyio's worker-thread and the actor's frames lead
every task's traceback and say nothing about the failure) and leaves out the `^^^^` position markers.

Written here rather than through `traceback.TracebackException`, which for every frame stats the source
file (`linecache.checkcache`) and, for the markers, parses its source: together 30-40% of a retry storm's
time. The text is otherwise the standard one: chained causes and contexts with their usual separators,
"[Previous line repeated N more times]" for recursion, `format_exception_only` for the last line (notes
included). Exception groups, rare here, go through the standard formatter.
"""

from __future__ import annotations

import linecache
import traceback
from types import TracebackType

from . import _actor, _attempt_context

# The frames that call the task's function: the actor's, or the bindings around an attempt.
_CALLER_FILES = frozenset({_actor.__file__, _attempt_context.__file__})
_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"
_RECURSIVE_CUTOFF = 3  # as the traceback module: identical frames shown before "repeated N more times"


def error_text(error: BaseException) -> str:
    """The record's `error` field: the message, or the exception type when the message is empty."""
    text = str(error)
    return text if text else type(error).__name__


REMOTE_TRACEBACK = "_taskflow_traceback"
"""The attribute of an error from a worker process holding the worker's traceback text (the record's)."""


def format_traceback(error: BaseException, *, caller: str | None = None) -> str:
    """The traceback of a task's final error, from the task's own function on, without position markers.

    `caller`: one more file whose frames call the task's function (a process worker's). An error that came
    back from a worker process has the worker's traceback text already: that is returned.
    """
    remote = getattr(error, REMOTE_TRACEBACK, None)
    if isinstance(remote, str):
        return remote
    callers = _CALLER_FILES if caller is None else _CALLER_FILES | {caller}
    tb = start = error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename in callers and tb.tb_next is not None:
            start = tb.tb_next  # the task's function, called by the actor
        tb = tb.tb_next
    if isinstance(error, BaseExceptionGroup):
        return "".join(traceback.TracebackException(type(error), error, start).format())
    out: list[str] = []
    _format(error, start, out, set())
    return "".join(out)


def _format(error: BaseException, tb: TracebackType | None, out: list[str], seen: set[int]) -> None:
    seen.add(id(error))
    cause, context = error.__cause__, error.__context__
    if cause is not None and id(cause) not in seen:
        _format(cause, cause.__traceback__, out, seen)
        out.append(_CAUSE)
    elif context is not None and not error.__suppress_context__ and id(context) not in seen:
        _format(context, context.__traceback__, out, seen)
        out.append(_CONTEXT)
    if tb is not None:
        out.append("Traceback (most recent call last):\n")
        _frames(tb, out)
    out.extend(traceback.format_exception_only(type(error), error))


def _frames(tb: TracebackType | None, out: list[str]) -> None:
    last: tuple[str, int, str] | None = None
    repeats = 0  # how many times in a row the current frame repeated the one before
    while tb is not None:
        frame = tb.tb_frame
        here = (frame.f_code.co_filename, tb.tb_lineno, frame.f_code.co_name)
        if here == last:
            repeats += 1
        else:
            _repeated(repeats, out)
            last, repeats = here, 0
        if repeats < _RECURSIVE_CUTOFF:
            out.append(f'  File "{here[0]}", line {here[1]}, in {here[2]}\n')
            line = linecache.getline(here[0], here[1], frame.f_globals).strip()
            if line:
                out.append(f"    {line}\n")
        tb = tb.tb_next
    _repeated(repeats, out)


def _repeated(repeats: int, out: list[str]) -> None:
    hidden = repeats - _RECURSIVE_CUTOFF + 1
    if hidden > 0:
        out.append(f"  [Previous line repeated {hidden} more time{'s' if hidden > 1 else ''}]\n")
