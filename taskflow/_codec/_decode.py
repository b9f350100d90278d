"""JSON text back to values: each tag's decoder, run bottom-up by the JSON parser.

The decoding half of the codec, and the half that reads untrusted text: an unknown tag, a malformed value or
a class that is not of the kind its tag says is a `PayloadError`, never an import (classes are looked up by
`_class_refs`). A tag added here is a format change: payloads written with it do not decode on an older
taskflow.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import json
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from .._exceptions import PayloadError
from ._class_refs import is_model, is_namedtuple, named_class
from ._format import PATHS, TAG
from ._registry import decoder_for
from ._stand_ins import UnstoredArgument


def _dec_dataclass(node: dict[str, Any]) -> Any:
    cls = named_class(node, dataclasses.is_dataclass, "a dataclass")
    values: dict[str, Any] = node["v"]
    fields = dataclasses.fields(cls)
    obj = cls(**{f.name: values[f.name] for f in fields if f.init and f.name in values})
    for f in fields:  # init=False fields come back as stored, not as __post_init__ recomputes them
        if not f.init and f.name in values:
            object.__setattr__(obj, f.name, values[f.name])
    return obj


def _dec_ext(node: dict[str, Any]) -> Any:
    decode = decoder_for(node["n"])
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
    "path": lambda n: PATHS[n["c"]](n["v"]),
    "enum": lambda n: named_class(n, lambda c: issubclass(c, enum.Enum), "an enum")(n["v"]),
    "dataclass": _dec_dataclass,
    "namedtuple": lambda n: named_class(n, is_namedtuple, "a named tuple")(*n["v"]),
    "model": lambda n: named_class(n, is_model, "a pydantic model").model_validate(n["v"]),
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


_JSON_IN = json.JSONDecoder(object_hook=_hook)  # built once, like _encode.JSON_OUT


def loads(text: str | bytes) -> Any:
    """Decode JSON written by `dumps()`; malformed or unknown content raises `PayloadError`."""
    try:
        return _JSON_IN.decode(text if isinstance(text, str) else text.decode("utf-8"))
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError; PayloadError is re-raised as is
        if isinstance(exc, PayloadError):
            raise
        raise PayloadError(f"stored arguments are not valid JSON: {exc}") from exc
