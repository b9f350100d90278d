"""Type-faithful JSON for task arguments: what is stored, requeued, retried or encrypted comes back equal.

Plain JSON values pass through untouched; everything else becomes a tagged object `{"__tf__": tag, ...}`:
tuples, sets, frozensets, bytes, non-finite floats, dates and times, timedelta, UUID, Decimal, pathlib paths,
enum members, dataclasses, named tuples, pydantic models (found by duck typing, pydantic is never imported)
and types registered with `register_type()`. A user dict that has the tag key, or non-str keys, is stored as
a tagged list of pairs, so no user data is ever mistaken for a tag.

A task that is not persisted may still be given an argument the codec cannot encode (an `UploadFile`, a
database session): it runs with the object itself, and what its stored history holds in that argument's
place is an `UnstoredArgument`, a marked display form that nothing re-runs (see `taskflow._unstored`).

Security: decoding never imports a module and never unpickles. A class named in a payload is looked up only
among modules already in `sys.modules` (or the registry); anything else is a `PayloadError`.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import json
import math
import pathlib
import sys
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

from ._exceptions import PayloadError

__all__ = [
    "UnstoredArgument",
    "UnstoredCallArgs",
    "decode_call",
    "dumps",
    "encode_call",
    "loads",
    "register_type",
    "storable",
    "type_name",
]

T = TypeVar("T")
TAG = "__tf__"
_FORMAT = 1  # bumped if the envelope of encode_call ever changes

_SCALARS = frozenset({str, int, bool, type(None)})
# Every pathlib class by name (PurePath, Path, PosixPath, ...); decoding picks among these only.
_PATHS = {n: c for n, c in vars(pathlib).items() if isinstance(c, type) and issubclass(c, pathlib.PurePath)}
_HOW_TO = "pass plain data or register the type with taskflow.register_type()"


class _Unencodable(Exception):
    """Internal: carries the offending value up to the caller, which names the argument."""

    def __init__(self, value: object, reason: str = "") -> None:
        super().__init__(value)
        self.value = value
        self.reason = reason


def type_name(value: object) -> str:
    """The type of `value` as messages and display forms name it (builtins without their module)."""
    cls = type(value)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


# ---- arguments that are not stored --------------------------------------------------------------------


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


def storable(value: Any) -> bool:
    """Whether `encode_call()` can store `value` as an argument."""
    try:
        _walk(value)
    except (_Unencodable, RecursionError):
        return False
    return True


# ---- registry ------------------------------------------------------------------------------------------

_by_class: dict[type, tuple[str, Callable[[Any], Any]]] = {}
_by_name: dict[str, Callable[[Any], Any]] = {}


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
    if cls in _ENCODERS:
        raise ValueError(f"{cls.__qualname__} is stored natively and cannot be registered")
    for other, (other_name, _) in _by_class.items():
        if other_name == name and other is not cls:
            raise ValueError(f"the name {name!r} is already registered for {other.__qualname__}")
    old = _by_class.get(cls)
    if old is not None:
        _by_name.pop(old[0], None)
    _by_class[cls] = (name, encode)
    _by_name[name] = decode


# ---- encoding ------------------------------------------------------------------------------------------


def _walk(obj: Any) -> Any:
    """Return the JSON-ready form of `obj`; plain scalars come back as they are (the common, cheap case)."""
    cls = type(obj)
    if cls in _SCALARS:
        return obj
    encoder = _ENCODERS.get(cls)
    if encoder is not None:
        return encoder(obj)
    return _encode_other(obj)


def _enc_float(value: float) -> Any:
    # JSON has no nan/inf; Python's json would write invalid JSON (NaN) that other readers reject.
    return value if math.isfinite(value) else {TAG: "float", "v": repr(value)}


def _enc_list(value: list[Any]) -> list[Any]:
    return [x if type(x) in _SCALARS else _walk(x) for x in value]


def _enc_dict(value: dict[Any, Any]) -> Any:
    if TAG not in value and all(type(k) is str for k in value):
        return {k: v if type(v) in _SCALARS else _walk(v) for k, v in value.items()}
    return {TAG: "dict", "v": [[_walk(k), _walk(v)] for k, v in value.items()]}


def _enc_datetime(value: dt.datetime | dt.time) -> Any:
    out: dict[str, Any] = {TAG: "datetime" if type(value) is dt.datetime else "time", "v": value.isoformat()}
    if value.fold:
        out["fold"] = 1
    return out


_ENCODERS: dict[type, Callable[[Any], Any]] = {
    float: _enc_float,
    list: _enc_list,
    dict: _enc_dict,
    tuple: lambda v: {TAG: "tuple", "v": _enc_list(v)},
    set: lambda v: {TAG: "set", "v": [_walk(x) for x in v]},
    frozenset: lambda v: {TAG: "frozenset", "v": [_walk(x) for x in v]},
    bytes: lambda v: {TAG: "bytes", "v": base64.b64encode(v).decode("ascii")},
    bytearray: lambda v: {TAG: "bytearray", "v": base64.b64encode(v).decode("ascii")},
    dt.datetime: _enc_datetime,
    dt.time: _enc_datetime,
    dt.date: lambda v: {TAG: "date", "v": v.isoformat()},
    dt.timedelta: lambda v: {TAG: "timedelta", "v": [v.days, v.seconds, v.microseconds]},
    uuid.UUID: lambda v: {TAG: "uuid", "v": str(v)},
    Decimal: lambda v: {TAG: "decimal", "v": str(v)},
    **{cls: (lambda v: {TAG: "path", "c": type(v).__name__, "v": str(v)}) for cls in _PATHS.values()},
    # A record read back from a store holds these; writing it again (recovery) keeps them as they are.
    UnstoredArgument: lambda v: {TAG: "unstored", "t": v.type_name, "v": v.text},
}

# Class -> "module:qualname", checked once per class: a class that cannot be found again by name (defined
# inside a function, or shadowed) fails at enqueue time instead of at decode time.
_class_refs: dict[type, str] = {}


def _class_ref(cls: type, value: object) -> str:
    ref = _class_refs.get(cls)
    if ref is None:
        ref = f"{cls.__module__}:{cls.__qualname__}"
        try:
            found = _resolve(ref)
        except PayloadError:
            found = None
        if found is not cls:
            reason = f"{cls.__qualname__} cannot be found by name; define it at module level"
            raise _Unencodable(value, reason)
        _class_refs[cls] = ref
    return ref


def _encode_other(obj: Any) -> Any:
    cls = type(obj)
    registered = _by_class.get(cls)
    if registered is not None:
        return {TAG: "ext", "n": registered[0], "v": _walk(registered[1](obj))}
    if isinstance(obj, enum.Enum):
        return {TAG: "enum", "c": _class_ref(cls, obj), "v": _walk(obj.value)}
    if dataclasses.is_dataclass(cls):
        fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(cls)}
        return {TAG: "dataclass", "c": _class_ref(cls, obj), "v": _enc_dict(fields)}
    if _is_namedtuple(cls):
        return {TAG: "namedtuple", "c": _class_ref(cls, obj), "v": _enc_list(list(obj))}
    if _is_model(cls):
        return {TAG: "model", "c": _class_ref(cls, obj), "v": _walk(obj.model_dump(mode="python"))}
    raise _Unencodable(obj)


def _message(value: object, reason: str, subject: str | None, nested: bool) -> str:
    what = f"a {type_name(value)}"
    if subject is None:
        head = f"{what} cannot be stored as JSON"
    elif nested:
        head = f"{subject} cannot be stored as JSON: it contains {what}"
    else:
        head = f"{subject} ({what}) cannot be stored as JSON"
    return f"{head}{f' ({reason})' if reason else ''}; {_HOW_TO}"


def _encode_arg(value: Any, subject: str) -> Any:
    try:
        return _walk(value)
    except _Unencodable as exc:
        raise TypeError(_message(exc.value, exc.reason, subject, exc.value is not value)) from None
    except RecursionError:
        reason = "it is nested too deeply or contains itself"
        raise TypeError(f"{subject} cannot be stored as JSON: {reason}") from None


# Built once: json.dumps/loads with options construct a new encoder/decoder on every call (~5 us).
_JSON_OUT = json.JSONEncoder(separators=(",", ":"), allow_nan=False)  # ASCII: safe in any store, faster


def encode_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """Encode a call's arguments; `TypeError` names the first argument that cannot be stored.

    `UnstoredCallArgs` encode as the display form they carry.
    """
    if type(args) is UnstoredCallArgs:
        args, kwargs = args.stored
    a = [x if type(x) in _SCALARS else _encode_arg(x, f"positional argument {i}") for i, x in enumerate(args)]
    k = {n: v if type(v) in _SCALARS else _encode_arg(v, f"argument {n!r}") for n, v in kwargs.items()}
    # A kwarg literally named like the tag must not read back as a tagged object.
    body = {"tf": _FORMAT, "a": a, "k": {TAG: "dict", "v": [[n, v] for n, v in k.items()]} if TAG in k else k}
    return _JSON_OUT.encode(body)


def dumps(obj: Any) -> str:
    """Encode one value to JSON text (see the module docstring for what survives)."""
    try:
        data = _walk(obj)
    except _Unencodable as exc:
        raise TypeError(_message(exc.value, exc.reason, None, False)) from None
    return _JSON_OUT.encode(data)


# ---- decoding ------------------------------------------------------------------------------------------


def _resolve(ref: str) -> Any:
    """Find an already-imported class by "module:qualname"; never imports anything."""
    module_name, _, qualname = ref.partition(":")
    module = sys.modules.get(module_name)
    if module is None or not qualname:
        raise PayloadError(
            f"stored arguments name the class {ref!r}, whose module is not imported; import it before "
            "the task runs, or register the type with taskflow.register_type()"
        )
    obj: Any = module
    for part in qualname.split("."):
        # vars(), not getattr(): a module-level __getattr__ may import lazily, and descriptors may run code.
        obj = vars(obj).get(part) if hasattr(obj, "__dict__") else None
        if obj is None:
            raise PayloadError(f"stored arguments name the class {ref!r}, which does not exist")
    return obj


def _class(node: dict[str, Any], check: Callable[[type], bool], kind: str) -> Any:
    cls = _resolve(node["c"])
    if not isinstance(cls, type) or not check(cls):
        raise PayloadError(f"stored arguments name {node['c']!r} as {kind}, but it is not one")
    return cls


def _is_namedtuple(cls: type) -> bool:
    return issubclass(cls, tuple) and hasattr(cls, "_fields")


def _is_model(cls: type) -> bool:  # pydantic v2, by duck typing: pydantic itself is never imported
    return hasattr(cls, "model_dump") and hasattr(cls, "model_validate")


def _dec_dataclass(node: dict[str, Any]) -> Any:
    cls = _class(node, dataclasses.is_dataclass, "a dataclass")
    values: dict[str, Any] = node["v"]
    fields = dataclasses.fields(cls)
    obj = cls(**{f.name: values[f.name] for f in fields if f.init and f.name in values})
    for f in fields:  # init=False fields come back as stored, not as __post_init__ recomputes them
        if not f.init and f.name in values:
            object.__setattr__(obj, f.name, values[f.name])
    return obj


def _dec_ext(node: dict[str, Any]) -> Any:
    decode = _by_name.get(node["n"])
    if decode is None:
        raise PayloadError(
            f"stored arguments use the type name {node['n']!r}, which is not registered; call "
            "taskflow.register_type() for it before the task runs"
        )
    return decode(node["v"])


def _dec_datetime(node: dict[str, Any]) -> Any:
    value = (dt.datetime if node[TAG] == "datetime" else dt.time).fromisoformat(node["v"])
    return value.replace(fold=1) if node.get("fold") else value


_DECODERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "float": lambda n: float(n["v"]),
    "dict": lambda n: {k: v for k, v in n["v"]},
    "tuple": lambda n: tuple(n["v"]),
    "set": lambda n: set(n["v"]),
    "frozenset": lambda n: frozenset(n["v"]),
    "bytes": lambda n: base64.b64decode(n["v"], validate=True),
    "bytearray": lambda n: bytearray(base64.b64decode(n["v"], validate=True)),
    "datetime": _dec_datetime,
    "time": _dec_datetime,
    "date": lambda n: dt.date.fromisoformat(n["v"]),
    "timedelta": lambda n: dt.timedelta(days=n["v"][0], seconds=n["v"][1], microseconds=n["v"][2]),
    "uuid": lambda n: uuid.UUID(n["v"]),
    "decimal": lambda n: Decimal(n["v"]),
    "path": lambda n: _PATHS[n["c"]](n["v"]),
    "enum": lambda n: _class(n, lambda c: issubclass(c, enum.Enum), "an enum")(n["v"]),
    "dataclass": _dec_dataclass,
    "namedtuple": lambda n: _class(n, _is_namedtuple, "a named tuple")(*n["v"]),
    "model": lambda n: _class(n, _is_model, "a pydantic model").model_validate(n["v"]),
    "ext": _dec_ext,
    "unstored": lambda n: UnstoredArgument(str(n["t"]), None if n["v"] is None else str(n["v"])),
}


def _hook(node: dict[str, Any]) -> Any:
    # json calls this bottom-up, so a tagged node's contents are already decoded.
    tag = node.get(TAG)
    if tag is None:
        return node
    decoder = _DECODERS.get(tag)
    if decoder is None:
        raise PayloadError(f"stored arguments contain an unknown tag {tag!r} (written by a newer taskflow?)")
    try:
        return decoder(node)
    except PayloadError:
        raise
    except Exception as exc:
        raise PayloadError(f"stored arguments contain an unreadable {tag!r} value: {exc}") from exc


_JSON_IN = json.JSONDecoder(object_hook=_hook)  # built once, like _JSON_OUT


def loads(text: str | bytes) -> Any:
    """Decode JSON written by `dumps()`; malformed or unknown content raises `PayloadError`."""
    try:
        return _JSON_IN.decode(text if isinstance(text, str) else text.decode("utf-8"))
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError; PayloadError is re-raised as is
        if isinstance(exc, PayloadError):
            raise
        raise PayloadError(f"stored arguments are not valid JSON: {exc}") from exc


def decode_call(text: str | bytes) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Decode what `encode_call()` wrote back to `(args, kwargs)`."""
    body = loads(text)
    if not isinstance(body, dict) or body.get("tf") != _FORMAT:
        raise PayloadError("stored arguments are not a taskflow call payload")
    args, kwargs = body.get("a"), body.get("k")
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise PayloadError("stored arguments are not a taskflow call payload")
    return tuple(args), kwargs
