"""The shape of the payloads, shared by both directions: the tag key, the envelope's version, and which types
are written as they are.

A module of its own because the encoder, the decoder and the call envelope all read these, and a change to
any of them is a change of the stored format (payloads written by an older taskflow must still decode).
"""

from __future__ import annotations

import pathlib

TAG = "__tf__"
"""The key that marks a tagged object `{"__tf__": tag, ...}`; a user dict holding it is stored as pairs."""

CALL_FORMAT = 1
"""The version in `encode_call`'s envelope (`{"tf": 1, "a": [...], "k": {...}}`); bumped if it changes."""

SCALARS = frozenset({str, int, bool, type(None)})
"""Types written exactly as they are: the common, cheap case every encoder tests first."""

PATHS = {n: c for n, c in vars(pathlib).items() if isinstance(c, type) and issubclass(c, pathlib.PurePath)}
"""Every pathlib class by name (PurePath, Path, PosixPath, ...); decoding picks among these only."""
