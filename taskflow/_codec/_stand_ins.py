"""What a store holds in place of arguments the codec cannot encode: `UnstoredArgument`, `UnstoredCallArgs`.

Apart from the encoder because they are values of their own, not a way of encoding: the codec writes and
reads them under the `unstored` tag like any other type, `taskflow._unstored` makes them, and a record read
back from a store carries them. Which calls may hold them, and what is refused, is `taskflow._unstored`'s.
"""

from __future__ import annotations

from typing import Any


def type_name(value: object) -> str:
    """The type of `value` as messages and display forms name it (builtins without their module)."""
    cls = type(value)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


class UnstoredArgument:
    """What a store holds in place of an argument the codec could not encode: a display form, not the value.

    Only a task that is not persisted gets one (a `persist=True` task with such an argument is refused at
    `add_task`); the task itself ran with the real object. `type_name` is the argument's type, `text` its
    `repr()` (at most 500 characters), or None when argument encryption was on: a repr in clear text could
    show what encryption protects. A call holding one is never run again: recovery marks the task
    INTERRUPTED and retry refuses it.
    """

    __slots__ = ("text", "type_name")

    def __init__(self, type_name: str, text: str | None) -> None:
        self.type_name = type_name
        self.text = text

    def __repr__(self) -> str:
        if self.text is None:
            return f"<not stored: a {self.type_name}, redacted (argument encryption is on)>"
        return f"<not stored: {self.text}>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, UnstoredArgument):
            return NotImplemented
        return (self.type_name, self.text) == (other.type_name, other.text)

    def __hash__(self) -> int:
        return hash((self.type_name, self.text))


class UnstoredCallArgs(tuple[Any, ...]):
    """The positional arguments of a call that cannot be stored as it is, carrying what is stored instead.

    It is the very tuple the task is called with. `stored` is the `(args, kwargs)` that `encode_call()`
    writes in its place, with `UnstoredArgument`s (made by `taskflow._unstored.unstored_call()`). A tuple
    subclass, so a record keeps one field for its arguments and every store (a custom one included)
    writes the display form through `encode_call()` unchanged.
    """

    stored: tuple[tuple[Any, ...], dict[str, Any]]
