"""What a supervised child runs: `ChildCall` (the callable, its arguments, its restart and checkpoint) and
what supervisors learn about a callable they are given (a default name, whether it is async)."""

from __future__ import annotations

import functools
import inspect
import itertools
import types
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

from ._handle import ChildHandle
from ._policy import Restart

Checkpoint: TypeAlias = Callable[[ChildHandle], Awaitable[object]]
_child_ids = itertools.count(1)
next_child_id = _child_ids.__next__  # itertools.count is atomic under the GIL: ids increase per process


class ChildCall:
    """What a child runs: the callable and its arguments, what happens when a run ends, its checkpoint.

    Held by the child's task, not by its handle, so a finished child's handle keeps nothing its callable
    refers to alive. `retryable` turns False once a child started with `Supervisor.start()` reported itself
    started: retries apply only before that (a restart begins a new run, retryable again).
    """

    __slots__ = ("args", "checkpoint", "fn", "is_async", "restart", "retryable")

    def __init__(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        is_async: bool,
        restart: Restart = Restart.TEMPORARY,
        checkpoint: Checkpoint | None = None,
    ) -> None:
        self.fn = fn
        self.args = args
        self.is_async = is_async
        self.restart = restart
        self.checkpoint = checkpoint
        self.retryable = True


def callable_name(fn: Callable[..., Any]) -> str:
    """A readable default child name: the function's qualified name (through partials)."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    name = getattr(fn, "__qualname__", None) or getattr(type(fn), "__qualname__", None)
    return name if isinstance(name, str) else repr(fn)


_CALLABLE_CLASSES: dict[type, bool] = {}  # class of a callable object -> whether its __call__ is async


def is_async_callable(fn: Callable[..., Any]) -> bool:
    """True for async functions, partials of them, and objects with an async `__call__`."""
    # Fast paths for the overwhelmingly common cases: a plain function, or an object of a class seen before.
    kind = type(fn)
    if kind is types.FunctionType:
        return bool(fn.__code__.co_flags & inspect.CO_COROUTINE)
    known = _CALLABLE_CLASSES.get(kind)
    if known is not None:
        return known
    while isinstance(fn, functools.partial):
        fn = fn.func
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004  (we need the method itself, not callable())
    is_async = call is not None and not inspect.isfunction(fn) and inspect.iscoroutinefunction(call)
    class_call = getattr(kind, "__call__", None)  # noqa: B004  (the class's own method, as above)
    if inspect.isfunction(class_call) and len(_CALLABLE_CLASSES) < 1024:
        # An instance of a class defining __call__ in Python: the answer holds for every instance. (Not so
        # for partials, methods or C wrappers such as lru_cache's: those depend on what they wrap.)
        _CALLABLE_CLASSES[kind] = is_async
    return is_async
