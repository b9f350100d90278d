"""Session tokens: what a session cookie carries, signed and checked with `itsdangerous`.

A token is `itsdangerous.URLSafeSerializer` output (base64url JSON, `.`, base64url HMAC-SHA256 under a key
derived from `secret_key` and the salt `taskflow.session`). The payload is `{"sub": user, "sid": session id,
"ver": session version, "exp": Unix expiry, "ro": read-only}`. `secret_key` may be a list for rotation:
the last key signs, every key verifies. Whether a signed session was revoked is `_sessions`' business.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadData, URLSafeSerializer

MAX_TOKEN_LENGTH = 4096
_SALT = "taskflow.session"


@dataclass(frozen=True, slots=True)
class Claims:
    """What a valid token says: who, which session, the session version it was issued under, its expiry
    (Unix seconds) and whether its user may only look."""

    user: str
    session_id: str
    version: int
    expires: int
    read_only: bool


def _keys(secret_key: str | bytes | Sequence[str | bytes] | None) -> list[bytes]:
    if secret_key is None:
        # A key per process: sessions end on restart and are not shared between workers (docs say so).
        return [secrets.token_bytes(32)]
    raw = [secret_key] if isinstance(secret_key, str | bytes) else list(secret_key)
    keys = []
    for key in raw:
        if not isinstance(key, str | bytes):
            raise ValueError(f"secret_key must be a str, bytes or a list of them, got {type(key).__name__}")
        keys.append(key.encode() if isinstance(key, str) else bytes(key))
    if not keys or not all(keys):
        raise ValueError("secret_key must not be empty")
    return keys


class TokenSigner:
    """Makes and checks session tokens with one key (or a rotation list of keys)."""

    def __init__(self, secret_key: str | bytes | Sequence[str | bytes] | None, expiry: int) -> None:
        if isinstance(expiry, bool) or not isinstance(expiry, int) or expiry < 1:
            raise ValueError(f"token_expiry must be a positive number of seconds, got {expiry!r}")
        self.expiry = expiry
        self.random_key = secret_key is None
        self._serializer = URLSafeSerializer(
            _keys(secret_key), salt=_SALT, signer_kwargs={"digest_method": hashlib.sha256}
        )

    def __repr__(self) -> str:
        return f"TokenSigner(secret_key=***, expiry={self.expiry})"

    def issue(
        self, username: str, *, version: int = 0, read_only: bool = False, now: float | None = None
    ) -> str:
        """A token for `username`, valid for `expiry` seconds, with a new random session id."""
        exp = int((time.time() if now is None else now) + self.expiry)
        payload = {
            "sub": username,
            "sid": secrets.token_urlsafe(16),
            "ver": version,
            "exp": exp,
            "ro": read_only,
        }
        return str(self._serializer.dumps(payload))

    def verify(self, token: str | None, *, now: float | None = None) -> Claims | None:
        """The claims of a valid token; None when it is missing, malformed, tampered, foreign or expired."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return None
        try:
            payload: Any = self._serializer.loads(token)
        except BadData:  # bad signature, bad base64, bad JSON: every failure of itsdangerous is a BadData
            return None
        if not isinstance(payload, dict):
            return None
        sub, sid, ver, exp, ro = (payload.get(k) for k in ("sub", "sid", "ver", "exp", "ro"))
        if not (isinstance(sub, str) and sub and isinstance(sid, str) and sid and isinstance(ro, bool)):
            return None
        if (
            not (isinstance(ver, int) and isinstance(exp, int))
            or isinstance(ver, bool)
            or isinstance(exp, bool)
        ):
            return None
        if exp <= (time.time() if now is None else now):
            return None
        return Claims(sub, sid, ver, exp, ro)
