"""Who is asking: signed-in sessions (with server-side revocation), bearer tokens for automation, and the
`Principal` a request acts as.

Revocation lives in the task store when it has the `SessionStore` capability and is running (so logout
holds on every instance sharing it, and across restarts); otherwise, and always in addition, in this
process's memory. A revoked session is kept until the token's own expiry. Revoking every session at once
bumps the session version: tokens issued under an older version are refused.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ..stores import MemoryAccess, SessionStore
from ._tokens import Claims, TokenSigner

_log = logging.getLogger("taskflow.web")
MIN_API_TOKEN_LENGTH = 16
SCOPES = ("read", "write")


@dataclass(frozen=True, slots=True)
class Principal:
    """The identity a request acts as: `kind` is `session`, `token` or `anonymous` (no auth)."""

    name: str
    kind: str
    can_act: bool


ANONYMOUS = Principal("anonymous", "anonymous", True)


class Sessions:
    """Issues, checks and revokes session tokens; `store` returns the running store (or None)."""

    def __init__(self, signer: TokenSigner, store: Callable[[], object | None]) -> None:
        self.signer = signer
        self._store = store
        self._memory = MemoryAccess()

    def _shared(self) -> SessionStore | None:
        store = self._store()
        return store if isinstance(store, SessionStore) else None

    async def _version(self) -> int:
        shared = self._shared()
        local = (await self._memory.session_status("")).version
        return max(local, (await shared.session_status("")).version) if shared is not None else local

    async def issue(self, user: str, *, read_only: bool) -> str:
        """A token under the current session version."""
        return self.signer.issue(user, version=await self._version(), read_only=read_only)

    async def check(self, token: str | None) -> Claims | None:
        """The claims of a valid token that was not revoked and not issued under an older version."""
        claims = self.signer.verify(token)
        if claims is None:
            return None
        statuses = [await self._memory.session_status(claims.session_id)]
        shared = self._shared()
        if shared is not None:
            statuses.append(await shared.session_status(claims.session_id))
        if any(s.revoked or claims.version < s.version for s in statuses):
            return None
        return claims

    async def revoke(self, claims: Claims) -> None:
        """Refuse this session from now on, everywhere the store reaches."""
        await self._memory.revoke_session(claims.session_id, expires=claims.expires)
        shared = self._shared()
        if shared is not None:
            await shared.revoke_session(claims.session_id, expires=claims.expires)

    async def revoke_all(self) -> int:
        """Void every session issued so far; returns the new session version."""
        local = await self._memory.bump_session_version()
        shared = self._shared()
        return max(local, await shared.bump_session_version()) if shared is not None else local


class ApiTokens:
    """Bearer tokens for automation: `{name: (token, scope)}`, scope `read` or `write`.

    Kept as SHA-256 digests: a lookup compares digests, never the secret itself, so its timing says nothing
    about the token.
    """

    def __init__(self, tokens: Mapping[str, tuple[str, str]] | None) -> None:
        self._by_digest: dict[bytes, Principal] = {}
        if tokens is None:
            return
        if not isinstance(tokens, Mapping):
            raise TypeError("api_tokens must be a mapping of name -> (token, scope)")
        for name, value in tokens.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"api_tokens names must be non-empty strings, got {name!r}")
            if not (isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, str) for v in value)):
                raise ValueError(f"api_tokens[{name!r}] must be a (token, scope) pair of strings")
            token, scope = value
            if scope not in SCOPES:
                raise ValueError(f"api_tokens[{name!r}] scope must be 'read' or 'write', got {scope!r}")
            if len(token) < MIN_API_TOKEN_LENGTH:
                raise ValueError(
                    f"api_tokens[{name!r}] token must be at least {MIN_API_TOKEN_LENGTH} characters"
                )
            digest = hashlib.sha256(token.encode()).digest()
            if digest in self._by_digest:
                raise ValueError(f"api_tokens[{name!r}] reuses the token of another name")
            self._by_digest[digest] = Principal(name, "token", scope == "write")

    def __repr__(self) -> str:
        return f"ApiTokens(names={sorted(p.name for p in self._by_digest.values())!r}, tokens=***)"

    def __bool__(self) -> bool:
        return bool(self._by_digest)

    def find(self, authorization: str | None) -> Principal | None:
        """The principal of an `Authorization: Bearer <token>` header; None for anything else."""
        if not authorization or not self._by_digest:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self._by_digest.get(hashlib.sha256(token.strip().encode()).digest())


def several_workers(argv: Sequence[str], environ: Mapping[str, str]) -> bool:
    """True when this process looks like one of several server workers (uvicorn or gunicorn `--workers N`,
    `-w N`, or `WEB_CONCURRENCY`); a spawned uvicorn worker keeps its parent's command line."""
    counts = [environ.get("WEB_CONCURRENCY", "")]
    args = list(argv) + environ.get("GUNICORN_CMD_ARGS", "").split()
    for i, arg in enumerate(args):
        if arg in ("--workers", "-w") and i + 1 < len(args):
            counts.append(args[i + 1])
        elif arg.startswith("--workers="):
            counts.append(arg.partition("=")[2])
        elif arg.startswith("-w") and arg[2:].isdigit():
            counts.append(arg[2:])
    return any(c.strip().isdigit() and int(c) > 1 for c in counts)


_warned = False


def warn_random_key(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> bool:
    """Warn once per process when auth runs with a random key under several workers; True if it warned."""
    global _warned
    if _warned or not several_workers(
        sys.argv if argv is None else argv, os.environ if environ is None else environ
    ):
        return False
    _warned = True
    _log.warning(
        "TaskAdmin(auth=...) has no secret_key while the server runs several workers: each worker signs "
        "sessions with its own random key, so a session made by one worker is refused by the others (users "
        "are sent back to the login page at random) and every restart signs everybody out. Pass the same "
        "secret_key to every worker, e.g. TaskAdmin(..., secret_key=os.environ['TASKFLOW_SECRET'])."
    )
    return True
