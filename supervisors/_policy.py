"""Policy: how one child is retried, timed out and limited; Restart: what happens when a run ends."""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Callable
from dataclasses import dataclass

RetryOn = type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]


class Restart(enum.Enum):
    """What a supervisor does when a child's run (all its attempts) has ended."""

    #: Restart whenever the run ends, with or without an error (a long-lived actor).
    PERMANENT = "permanent"
    #: Restart only if the run ended with an error.
    TRANSIENT = "transient"
    #: Never restart (the default for `start_soon`): one run, then the child is finished.
    TEMPORARY = "temporary"


def _int(field: str, value: object, minimum: int) -> None:
    # bool is an int subclass, but `retries=True` is a bug, not a count.
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"Policy.{field} must be an int >= {minimum}, got {value!r}")


def _float(
    field: str, value: object, minimum: float, *, strict: bool = False, maximum: float = math.inf
) -> None:
    ok = (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (value > minimum if strict else value >= minimum)
        and value <= maximum
    )
    if not ok:
        bound = f"> {minimum}" if strict else f">= {minimum}"
        if maximum != math.inf:
            bound = f"between {minimum} and {maximum}"
        raise ValueError(f"Policy.{field} must be a finite number {bound}, got {value!r}")


def check_seconds(field: str, value: object, *, positive: bool = False) -> float:
    """Validate a duration given to a supervisor (ValueError naming `field`)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
        or (positive and value == 0)
    ):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"Supervisor {field} must be a finite number {bound}, got {value!r}")
    return float(value)


def _is_exception_type(value: object) -> bool:
    return isinstance(value, type) and issubclass(value, BaseException)


@dataclass(frozen=True, kw_only=True, slots=True)
class Policy:
    """How a child is run: retries with backoff, a per-attempt timeout and concurrency limits.

    Immutable and validated at construction: a bad value raises `ValueError` naming the field.
    """

    name: str = "default"
    #: Extra attempts after the first (a run makes at most `retries + 1` attempts).
    retries: int = 0
    #: Seconds to wait before the first retry.
    delay: float = 0.0
    #: Multiplier applied to the delay for each further retry.
    backoff: float = 1.0
    #: Cap on a single delay; None means no cap.
    max_delay: float | None = None
    #: Fraction (0..1) of each delay that is randomly removed, to spread retries of many children.
    jitter: float = 0.0
    #: Seconds one attempt may take; None means no limit. A timed-out attempt counts as a failure.
    timeout: float | None = None
    #: Which errors are retried: an exception type, a tuple of types, or a predicate.
    retry_on: RetryOn = Exception
    #: Async attempts of this policy's supervisor running at once; None means no limit.
    max_concurrency: int | None = None
    #: Sync attempts of this policy's supervisor running in worker threads at once; None: anyio's default.
    max_threads: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Policy.name must be a non-empty str, got {self.name!r}")
        _int("retries", self.retries, 0)
        _float("delay", self.delay, 0.0)
        _float("backoff", self.backoff, 1.0)
        if self.max_delay is not None:
            _float("max_delay", self.max_delay, 0.0)
        _float("jitter", self.jitter, 0.0, maximum=1.0)
        if self.timeout is not None:
            _float("timeout", self.timeout, 0.0, strict=True)
        retry_on = self.retry_on
        valid = _is_exception_type(retry_on) or (
            isinstance(retry_on, tuple) and bool(retry_on) and all(_is_exception_type(t) for t in retry_on)
        )
        if not valid and (isinstance(retry_on, type | tuple) or not callable(retry_on)):
            raise ValueError(
                "Policy.retry_on must be an exception type, a non-empty tuple of exception types "
                f"or a callable(error) -> bool, got {retry_on!r}"
            )
        if self.max_concurrency is not None:
            _int("max_concurrency", self.max_concurrency, 1)
        if self.max_threads is not None:
            _int("max_threads", self.max_threads, 1)

    @property
    def attempts(self) -> int:
        """The maximum number of attempts of one run: `retries + 1`."""
        return self.retries + 1

    def backoff_delay(self, retry: int, *, rand: float | None = None) -> float:
        """Seconds to wait before retry number `retry` (1 = the wait before the second attempt).

        A pure function of its arguments::

            base   = min(delay * backoff ** (retry - 1), max_delay)   # no cap when max_delay is None
            result = base * (1 - jitter * rand)                        # rand uniform in [0, 1)

        `rand` defaults to `random.random()`; pass it to get a deterministic value. Jitter only ever
        shortens a delay, so `max_delay` stays a true upper bound.
        """
        if isinstance(retry, bool) or not isinstance(retry, int) or retry < 1:
            raise ValueError(f"retry must be an int >= 1, got {retry!r}")
        try:
            base = self.delay * self.backoff ** (retry - 1)
        except OverflowError:  # huge retry numbers with backoff > 1: the cap (or inf) applies
            base = math.inf
        if self.max_delay is not None:
            base = min(base, self.max_delay)
        if self.jitter:
            base *= 1.0 - self.jitter * (random.random() if rand is None else rand)
        return base

    def should_retry(self, error: BaseException) -> bool:
        """Whether `error` is one this policy retries (per `retry_on`); the attempt count is not checked."""
        retry_on = self.retry_on
        if isinstance(retry_on, type | tuple):
            return isinstance(error, retry_on)
        return bool(retry_on(error))
