"""structlog processors for task events: hide or drop keys, such as a task's arguments in your own lines.

They are ordinary structlog processors, `(logger, method_name, event_dict) -> event_dict`: put them in
`StructlogObserver(processors=[...])` for taskflow's events only, or in your own `structlog.configure()`
chain for every line. They import nothing.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any

__all__ = ["drop_keys", "redact_keys"]

EventDict = MutableMapping[str, Any]
Processor = Callable[[Any, str, EventDict], EventDict]


def _names(keys: tuple[str, ...]) -> frozenset[str]:
    if not keys or not all(isinstance(k, str) for k in keys):
        raise TypeError("give the keys as one or more strings")
    return frozenset(keys)


def redact_keys(*keys: str, replacement: str = "[redacted]") -> Processor:
    """A processor that replaces the value of each of `keys` present in an event with `replacement`."""
    names = _names(keys)

    def redact(logger: Any, method_name: str, event_dict: EventDict) -> EventDict:
        for key in names & event_dict.keys():
            event_dict[key] = replacement
        return event_dict

    return redact


def drop_keys(*keys: str) -> Processor:
    """A processor that removes each of `keys` from an event."""
    names = _names(keys)

    def drop(logger: Any, method_name: str, event_dict: EventDict) -> EventDict:
        for key in names & event_dict.keys():
            del event_dict[key]
        return event_dict

    return drop
