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

This package is the codec's one face (the rest of taskflow and the stores import `taskflow._codec`); inside:

- `_format`: what both directions share (the tag key, the envelope version, scalar and path types);
- `_encode` / `_decode`: values to JSON-ready data and back, each tag's encoder and decoder;
- `_class_refs`: classes named in payloads, found again without importing (the security seam);
- `_registry`: the types an application registered (`register_type`);
- `_stand_ins`: `UnstoredArgument` and `UnstoredCallArgs`, what is stored in place of what cannot be;
- `_call`: a call's `(args, kwargs)` as one versioned envelope (`encode_call`, `decode_call`).
"""

from __future__ import annotations

from ._call import decode_call, encode_call
from ._decode import loads
from ._encode import dumps, storable
from ._registry import register_type
from ._stand_ins import UnstoredArgument, UnstoredCallArgs, type_name

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
