"""Values to JSON-ready data: plain JSON passes through, every other supported type becomes a tagged object.

The encoding half of the codec: the walk over a value, the natively stored types (`ENCODERS`), the classes
found by name (enums, dataclasses, named tuples, pydantic models) and registered types, and the messages
that say which argument cannot be stored and why. `dumps` is one value to JSON text; the call envelope
around a task's arguments is `_call`'s.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import json
import math
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from ._class_refs import findable_ref, is_model, is_namedtuple
from ._format import PATHS, SCALARS, TAG
from ._registry import encoding_for, reserve_native
from ._stand_ins import UnstoredArgument, type_name

_HOW_TO = "pass plain data or register the type with taskflow.register_type()"

# Built once: json.dumps/loads with options construct a new encoder/decoder on every call (~5 us).
JSON_OUT = json.JSONEncoder(separators=(",", ":"), allow_nan=False)  # ASCII: safe in any store, faster


class Unencodable(Exception):
    """Internal: carries the offending value up to the caller, which names the argument."""

    def __init__(self, value: object, reason: str = "") -> None:
        super().__init__(value)
        self.value = value
        self.reason = reason


def walk(obj: Any) -> Any:
    """Return the JSON-ready form of `obj`; plain scalars come back as they are (the common, cheap case)."""
    cls = type(obj)
    if cls in SCALARS:
        return obj
    encoder = ENCODERS.get(cls)
    if encoder is not None:
        return encoder(obj)
    return _encode_other(obj)


def _enc_float(value: float) -> Any:
    # JSON has no nan/inf; Python's json would write invalid JSON (NaN) that other readers reject.
    return value if math.isfinite(value) else {TAG: "float", "v": repr(value)}


def _enc_list(value: list[Any]) -> list[Any]:
    return [x if type(x) in SCALARS else walk(x) for x in value]


def _enc_dict(value: dict[Any, Any]) -> Any:
    if TAG not in value and all(type(k) is str for k in value):
        return {k: v if type(v) in SCALARS else walk(v) for k, v in value.items()}
    return {TAG: "dict", "v": [[walk(k), walk(v)] for k, v in value.items()]}


def _enc_datetime(value: dt.datetime | dt.time) -> Any:
    out: dict[str, Any] = {TAG: "datetime" if type(value) is dt.datetime else "time", "v": value.isoformat()}
    if value.fold:
        out["fold"] = 1
    return out


ENCODERS: dict[type, Callable[[Any], Any]] = {
    float: _enc_float,
    list: _enc_list,
    dict: _enc_dict,
    tuple: lambda v: {TAG: "tuple", "v": _enc_list(v)},
    set: lambda v: {TAG: "set", "v": [walk(x) for x in v]},
    frozenset: lambda v: {TAG: "frozenset", "v": [walk(x) for x in v]},
    bytes: lambda v: {TAG: "bytes", "v": base64.b64encode(v).decode("ascii")},
    bytearray: lambda v: {TAG: "bytearray", "v": base64.b64encode(v).decode("ascii")},
    dt.datetime: _enc_datetime,
    dt.time: _enc_datetime,
    dt.date: lambda v: {TAG: "date", "v": v.isoformat()},
    dt.timedelta: lambda v: {TAG: "timedelta", "v": [v.days, v.seconds, v.microseconds]},
    uuid.UUID: lambda v: {TAG: "uuid", "v": str(v)},
    Decimal: lambda v: {TAG: "decimal", "v": str(v)},
    **{cls: (lambda v: {TAG: "path", "c": type(v).__name__, "v": str(v)}) for cls in PATHS.values()},
    # A record read back from a store holds these; writing it again (recovery) keeps them as they are.
    UnstoredArgument: lambda v: {TAG: "unstored", "t": v.type_name, "v": v.text},
}
reserve_native(ENCODERS)


def _class_ref(cls: type, value: object) -> str:
    ref = findable_ref(cls)
    if ref is None:
        raise Unencodable(value, f"{cls.__qualname__} cannot be found by name; define it at module level")
    return ref


def _encode_other(obj: Any) -> Any:
    cls = type(obj)
    registered = encoding_for(cls)
    if registered is not None:
        return {TAG: "ext", "n": registered[0], "v": walk(registered[1](obj))}
    if isinstance(obj, enum.Enum):
        return {TAG: "enum", "c": _class_ref(cls, obj), "v": walk(obj.value)}
    if dataclasses.is_dataclass(cls):
        fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(cls)}
        return {TAG: "dataclass", "c": _class_ref(cls, obj), "v": _enc_dict(fields)}
    if is_namedtuple(cls):
        return {TAG: "namedtuple", "c": _class_ref(cls, obj), "v": _enc_list(list(obj))}
    if is_model(cls):
        return {TAG: "model", "c": _class_ref(cls, obj), "v": walk(obj.model_dump(mode="python"))}
    raise Unencodable(obj)


def _message(value: object, reason: str, subject: str | None, nested: bool) -> str:
    what = f"a {type_name(value)}"
    if subject is None:
        head = f"{what} cannot be stored as JSON"
    elif nested:
        head = f"{subject} cannot be stored as JSON: it contains {what}"
    else:
        head = f"{subject} ({what}) cannot be stored as JSON"
    return f"{head}{f' ({reason})' if reason else ''}; {_HOW_TO}"


def encode_arg(value: Any, subject: str) -> Any:
    """The JSON-ready form of one argument; `TypeError` names it (`subject`) if it cannot be stored."""
    try:
        return walk(value)
    except Unencodable as exc:
        raise TypeError(_message(exc.value, exc.reason, subject, exc.value is not value)) from None
    except RecursionError:
        reason = "it is nested too deeply or contains itself"
        raise TypeError(f"{subject} cannot be stored as JSON: {reason}") from None


def storable(value: Any) -> bool:
    """Whether `encode_call()` can store `value` as an argument."""
    try:
        walk(value)
    except (Unencodable, RecursionError):
        return False
    return True


def dumps(obj: Any) -> str:
    """Encode one value to JSON text (see the package docstring for what survives)."""
    try:
        data = walk(obj)
    except Unencodable as exc:
        raise TypeError(_message(exc.value, exc.reason, None, False)) from None
    return JSON_OUT.encode(data)
