"""Process-wide switches (only the testing mode for now), read by the attempt loop on each retry."""

from __future__ import annotations


class _Config:
    __slots__ = ("testing",)

    def __init__(self) -> None:
        # When True, backoff waits are skipped (delays are still computed and reported): like
        # `stamina.set_testing`, so test suites exercising retries don't sleep.
        self.testing = False


CONFIG = _Config()
