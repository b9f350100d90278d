"""What crosses the boundary of a worker process, seen from the parent: the check `add_task` makes on a
process task's call, and reading an attempt's final frame back into a value or an error."""

from __future__ import annotations

import inspect
import pickle
from collections.abc import Callable
from typing import Any

from ._exceptions import ProcessTaskError, TaskArgumentError
from ._traceback import REMOTE_TRACEBACK

_PROTOCOL = pickle.HIGHEST_PROTOCOL


def read_outcome(frame: tuple[Any, ...], name: str) -> Any:
    """The value of a final frame, or its error raised (with the worker's traceback for the record)."""
    if frame[0] == "ok":
        try:
            return pickle.loads(frame[1])
        except Exception as exc:
            raise ProcessTaskError(f"the return value of {name} could not be unpickled: {exc}") from None
    _, packed, label, trace, _fatal = frame
    error: BaseException | None = None
    if packed is not None:
        try:
            error = pickle.loads(packed)
        except Exception:
            error = None
    if not isinstance(error, Exception):
        error = ProcessTaskError(f"{label} (the error could not be sent back from the worker process)")
    setattr(error, REMOTE_TRACEBACK, trace)
    raise error


def check_call(func: Callable[..., Any], name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """What `add_task` checks for a process task: the function and each argument pickle (a worker gets
    them as pickles). TaskArgumentError names the first argument that does not."""
    try:
        pickle.dumps(func, _PROTOCOL)
    except Exception as exc:
        raise TaskArgumentError(
            f"task {name!r} runs in a worker process, so its function must be importable by name "
            f"(a module-level function): {exc}"
        ) from None
    names = _parameter_names(func, len(args))
    for label, value in [*zip(names, args, strict=True), *kwargs.items()]:
        try:
            pickle.dumps(value, _PROTOCOL)
        except Exception as exc:
            raise TaskArgumentError(
                f"argument {label!r} of task {name!r} ({type(value).__qualname__}) cannot be pickled, so it "
                f"cannot be sent to a worker process: {exc}"
            ) from None


def _parameter_names(func: Callable[..., Any], count: int) -> list[str]:
    """The names of the first `count` positional parameters of `func` (`args[i]` where unknown)."""
    try:
        parameters = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        parameters = []
    names: list[str] = []
    for index in range(count):
        parameter = parameters[index] if index < len(parameters) else None
        if (
            parameter is None
            or parameter.kind is parameter.VAR_POSITIONAL
            or parameter.kind is parameter.KEYWORD_ONLY
        ):
            names.append(f"args[{index}]")
            parameters = []  # past *args every further one is positional too
        else:
            names.append(parameter.name)
    return names
