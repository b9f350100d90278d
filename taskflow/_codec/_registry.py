"""The types an application taught the codec (`register_type`): a name, an encode and a decode function each.

A module of its own because it is the codec's one piece of mutable state, written by the application and
read by both directions: the encoder asks `encoding_for(cls)`, the decoder `decoder_for(name)`. The encoder
declares the types it stores natively (`reserve_native`), which can never be registered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")

_by_class: dict[type, tuple[str, Callable[[Any], Any]]] = {}
_by_name: dict[str, Callable[[Any], Any]] = {}
_native: set[type] = set()


def reserve_native(classes: Iterable[type]) -> None:
    """Mark classes the codec stores on its own: `register_type` refuses them."""
    _native.update(classes)


def register_type(cls: type[T], *, name: str, encode: Callable[[T], Any], decode: Callable[[Any], T]) -> None:
    """Teach the codec a type it cannot store on its own.

    `encode(value)` returns any value the codec can store (plain JSON, or other supported types);
    `decode(that)` rebuilds the object. `name` is written into stored payloads, so keep it stable across
    releases (e.g. "myapp.Money"). Registration matches the exact class, not subclasses. Registering the
    same class again replaces it; a name already used by another class raises `ValueError`.
    """
    if not isinstance(cls, type):
        raise TypeError(f"register_type() needs a class, got {cls!r}")
    if not isinstance(name, str) or not name:
        raise ValueError("register_type() needs a non-empty name")
    if cls in _native:
        raise ValueError(f"{cls.__qualname__} is stored natively and cannot be registered")
    for other, (other_name, _) in _by_class.items():
        if other_name == name and other is not cls:
            raise ValueError(f"the name {name!r} is already registered for {other.__qualname__}")
    old = _by_class.get(cls)
    if old is not None:
        _by_name.pop(old[0], None)
    _by_class[cls] = (name, encode)
    _by_name[name] = decode


def encoding_for(cls: type) -> tuple[str, Callable[[Any], Any]] | None:
    """The registered name and encode function of exactly `cls`, if it was registered."""
    return _by_class.get(cls)


def decoder_for(name: str) -> Callable[[Any], Any] | None:
    """The decode function registered under `name`, if any."""
    return _by_name.get(name)
