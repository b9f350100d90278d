"""The keys of a named policy in `taskflow.toml`: what each accepts, from TOML or an environment variable.

Each parser takes the raw value (a TOML value, or the text of an environment variable) and returns the
value a `supervisors.Policy` (or the restart intensity) takes, or raises `ValueError` with the reason only:
the caller adds the file, the table and the key.
"""

from __future__ import annotations

import builtins
import importlib
import math
from collections.abc import Callable
from typing import Any

from supervisors import Policy

POLICY_KEYS = (
    "retries",
    "delay",
    "backoff",
    "max_delay",
    "jitter",
    "timeout",
    "retry_on",
    "max_concurrency",
    "max_threads",
)
"""The keys that make the `Policy` itself."""
INTENSITY_KEYS = ("max_restarts", "restart_window")
"""The keys of the restart intensity (for actors run under the policy)."""
KEYS = POLICY_KEYS + INTENSITY_KEYS
NULLABLE = frozenset({"max_delay", "timeout", "max_concurrency", "max_threads"})
"""Keys whose "no limit" is None: an environment variable unsets them with `none`."""
INTENSITY_DEFAULTS: dict[str, Any] = {"max_restarts": 3, "restart_window": 60.0}
QUEUE_KEYS = ("concurrency", "max_size")
"""The keys of a named queue (`[queues.<name>]`): both a positive int, or absent for no limit."""

_POLICY_DEFAULTS = Policy()


def default(key: str) -> Any:
    """The value a key has when nothing sets it."""
    if key in INTENSITY_DEFAULTS:
        return INTENSITY_DEFAULTS[key]
    return getattr(_POLICY_DEFAULTS, key)


def import_exception(dotted: str) -> type[BaseException]:
    """The exception class named `dotted` (`ConnectionError`, `smtplib.SMTPException`, `pkg.mod.Class`)."""
    if not isinstance(dotted, str) or not dotted.strip():
        raise ValueError(f"exception names must be non-empty strings, got {dotted!r}")
    dotted = dotted.strip()
    if "." not in dotted:
        found = getattr(builtins, dotted, None)
        if found is None:
            raise ValueError(f"{dotted!r} is not a builtin exception; give its module too (module.Name)")
    else:
        found = _import_dotted(dotted)
    if not (isinstance(found, type) and issubclass(found, BaseException)):
        raise ValueError(f"{dotted!r} is not an exception class")
    return found


def _import_dotted(dotted: str) -> object:
    # The longest importable module prefix, then attributes (for classes nested in classes).
    parts = dotted.split(".")
    error: Exception | None = None
    for cut in range(len(parts) - 1, 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError as exc:
            error = error or exc
            continue
        for attr in parts[cut:]:
            if not hasattr(found, attr):
                raise ValueError(f"cannot import {dotted!r}: {'.'.join(parts[:cut])} has no {attr!r}")
            found = getattr(found, attr)
        return found
    raise ValueError(f"cannot import {dotted!r}: {error}")


def _retry_on(value: object) -> type[BaseException] | tuple[type[BaseException], ...]:
    names = value if isinstance(value, list) else [value]
    if not names:
        raise ValueError("must name at least one exception class")
    types = tuple(import_exception(name) for name in names)  # type: ignore[arg-type]
    return types[0] if len(types) == 1 else types


def _checked_by_policy(key: str, value: object) -> Any:
    # The Policy validates its own fields: build one with only this key set, and keep its reason.
    try:
        Policy(**{key: value})  # type: ignore[arg-type]  # checked by the Policy itself
    except ValueError as exc:
        raise ValueError(str(exc).removeprefix(f"Policy.{key} ")) from None
    return value


def _max_restarts(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"must be an int >= 0, got {value!r}")
    return value


def _restart_window(value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"must be a finite number > 0, got {value!r}")
    return float(value)


def check(key: str, value: object) -> Any:
    """The validated value of `key` from TOML (or a dict); ValueError with the reason."""
    if key == "retry_on":
        return _retry_on(value)
    if key == "max_restarts":
        return _max_restarts(value)
    if key == "restart_window":
        return _restart_window(value)
    return _checked_by_policy(key, value)


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"must be a number, got {text!r}") from None


_FROM_TEXT: dict[str, Callable[[str], object]] = {
    "retry_on": lambda text: [name for name in text.split(",") if name.strip()],
}


def from_text(key: str, text: str) -> Any:
    """The validated value of `key` from an environment variable's text (`none` unsets a limit)."""
    stripped = text.strip()
    if key in NULLABLE and stripped.lower() in ("none", ""):
        return None
    parse = _FROM_TEXT.get(key, _number)
    return check(key, parse(stripped))


def describe(key: str, value: object) -> str:
    """A value as `python -m taskflow policies` prints it."""
    if key == "retry_on":
        types = value if isinstance(value, tuple) else (value,)
        names = [
            t.__name__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"
            for t in types
            if isinstance(t, type)
        ]
        return ", ".join(names) if names else repr(value)
    return "none" if value is None else repr(value)


def check_queue_limit(value: object) -> int:
    """A queue limit from TOML (absent means no limit: TOML has no null); ValueError with the reason."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"must be a positive int, got {value!r}")
    return value


def queue_limit_from_text(text: str) -> int | None:
    """A queue limit from an environment variable's text (`none` or empty: no limit)."""
    stripped = text.strip()
    if stripped.lower() in ("none", ""):
        return None
    try:
        number = int(stripped)
    except ValueError:
        raise ValueError(f"must be a positive int or none, got {text!r}") from None
    return check_queue_limit(number)
