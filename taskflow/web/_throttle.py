"""Login rate limiting: per client address and per user name, with delays that double after each failure.

A key's `free`-th failure locks it for `base` seconds, each later one for twice as long as the one before
(capped at `cap`); a success clears the key. A sign-in is refused (429 with `Retry-After`) while any of its
keys is locked, before the password is checked, so a guessing loop gets nothing from the backend. The state
is this process's memory, bounded to `max_keys` keys (the oldest are forgotten first).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence


class LoginThrottle:
    """Failure counts and lock times per key (`client:<address>`, `user:<name>`)."""

    def __init__(
        self,
        *,
        free: int = 5,
        base: float = 1.0,
        cap: float = 300.0,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free, self.base, self.cap, self.max_keys = free, base, cap, max_keys
        self._clock = clock
        self._state: dict[str, tuple[int, float]] = {}  # key -> (failures, locked until)

    def __repr__(self) -> str:
        return f"LoginThrottle(free={self.free}, base={self.base}, cap={self.cap}, keys={len(self._state)})"

    def retry_after(self, keys: Sequence[str]) -> int:
        """Whole seconds until every key may try again; 0 when none is locked."""
        now = self._clock()
        wait = max((self._state.get(k, (0, now))[1] - now for k in keys), default=0.0)
        return math.ceil(wait) if wait > 0 else 0

    def failed(self, keys: Sequence[str]) -> None:
        """Count a failure for each key and lock those that reached `free` failures."""
        now = self._clock()
        for key in keys:
            failures = self._state.pop(key, (0, now))[0] + 1  # popped and re-added: the newest go last
            over = failures - self.free + 1
            locked = now + min(self.cap, self.base * 2 ** min(over - 1, 40)) if over > 0 else now
            self._state[key] = (failures, locked)
        while len(self._state) > self.max_keys:
            del self._state[next(iter(self._state))]

    def succeeded(self, keys: Sequence[str]) -> None:
        """Forget the failures of these keys."""
        for key in keys:
            self._state.pop(key, None)
