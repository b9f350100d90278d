"""What supervisors learn about a callable they are given (a default name, whether it is async), the type of
a checkpoint, and child ids."""

from __future__ import annotations

import functools
import inspect
import itertools
import types
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

from ._handle import ChildHandle

Checkpoint: TypeAlias = Callable[[ChildHandle], Awaitable[object]]
_child_ids = itertools.count(1)
next_child_id = _child_ids.__next__  # itertools.count is atomic under the GIL: ids increase per process


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
