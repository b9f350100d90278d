"""A task's call (`args`, `kwargs`) as one versioned JSON envelope: `encode_call` and `decode_call`.

What the stores and the argument encryption write and read. Apart from the value codec because the envelope
is a format of its own (`{"tf": CALL_FORMAT, "a": [...], "k": {...}}`), checked on the way back, and because
it names the argument that cannot be stored and writes an `UnstoredCallArgs`' display form in its place.
"""

from __future__ import annotations

from typing import Any

from .._exceptions import PayloadError
from ._decode import loads
from ._encode import JSON_OUT, encode_arg
from ._format import CALL_FORMAT, SCALARS, TAG
from ._stand_ins import UnstoredCallArgs


def encode_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """Encode a call's arguments; `TypeError` names the first argument that cannot be stored.

    `UnstoredCallArgs` encode as the display form they carry.
    """
    if type(args) is UnstoredCallArgs:
        args, kwargs = args.stored
    a = [x if type(x) in SCALARS else encode_arg(x, f"positional argument {i}") for i, x in enumerate(args)]
    k = {n: v if type(v) in SCALARS else encode_arg(v, f"argument {n!r}") for n, v in kwargs.items()}
    # A kwarg literally named like the tag must not read back as a tagged object.
    stored_kwargs = {TAG: "dict", "v": [[n, v] for n, v in k.items()]} if TAG in k else k
    return JSON_OUT.encode({"tf": CALL_FORMAT, "a": a, "k": stored_kwargs})


def decode_call(text: str | bytes) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Decode what `encode_call()` wrote back to `(args, kwargs)`."""
    body = loads(text)
    if not isinstance(body, dict) or body.get("tf") != CALL_FORMAT:
        raise PayloadError("stored arguments are not a taskflow call payload")
    args, kwargs = body.get("a"), body.get("k")
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise PayloadError("stored arguments are not a taskflow call payload")
    return tuple(args), kwargs
