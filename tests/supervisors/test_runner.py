"""The attempt loop: attempt counts, exact backoff delays, retry_on, per-attempt timeouts, last error."""

from __future__ import annotations

import threading

import anyio
import pytest

from supervisors import ChildState, Policy, Supervisor
from supervisors.testing import FakeClock, set_testing, testing_mode


class Flaky:
    """Fails `failures` times with a fresh exception each time, then returns "ok"."""

    def __init__(self, failures: int, error: type[Exception] = ValueError) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0
        self.raised: list[Exception] = []

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            exc = self.error(f"failure {self.calls}")
            self.raised.append(exc)
            raise exc
        return "ok"


async def test_retries_with_backoff_sleep_exact_delays() -> None:
    """Two failures then success: 3 attempts, and the clock slept exactly delay, delay*backoff."""
    clock = FakeClock()
    flaky = Flaky(2)
    async with Supervisor(Policy(retries=3, delay=0.5, backoff=3.0), clock=clock) as sup:
        handle = await sup.start_soon(flaky).wait()
    assert handle.state is ChildState.SUCCEEDED
    assert handle.result == "ok"
    assert handle.attempts == flaky.calls == 3
    assert clock.sleeps == [0.5, 1.5]
    assert clock.now() == 2.0


async def test_exhausted_attempts_keep_the_very_last_exception() -> None:
    """When attempts run out the handle is FAILED and `error` is the last exception object itself."""
    clock = FakeClock()
    flaky = Flaky(10)
    async with Supervisor(Policy(retries=2, delay=1.0, backoff=2.0, max_delay=1.5), clock=clock) as sup:
        handle = await sup.start_soon(flaky).wait()
    assert handle.state is ChildState.FAILED
    assert handle.reason == "error"
    assert handle.attempts == flaky.calls == 3
    assert handle.error is flaky.raised[-1]
    assert clock.sleeps == [1.0, 1.5]


async def test_non_matching_error_fails_after_one_attempt_not_retryable() -> None:
    """An error outside retry_on is not retried: one attempt, reason "not_retryable"."""
    clock = FakeClock()
    flaky = Flaky(5, error=KeyError)
    async with Supervisor(Policy(retries=3, retry_on=ValueError), clock=clock) as sup:
        handle = await sup.start_soon(flaky).wait()
    assert (handle.state, handle.reason, handle.attempts) == (ChildState.FAILED, "not_retryable", 1)
    assert handle.error is flaky.raised[0]
    assert clock.sleeps == []


async def test_predicate_retry_on_decides_per_error() -> None:
    """A retry_on predicate is consulted for each failure."""
    flaky = Flaky(2)
    policy = Policy(retries=5, retry_on=lambda e: str(e) != "failure 2")
    async with Supervisor(policy, clock=FakeClock()) as sup:
        handle = await sup.start_soon(flaky).wait()
    assert (handle.attempts, handle.reason) == (2, "not_retryable")


async def test_testing_mode_skips_backoff_waits() -> None:
    """Under testing_mode the clock is never slept on, yet every attempt still happens."""
    clock = FakeClock()
    flaky = Flaky(3)
    with testing_mode():
        async with Supervisor(Policy(retries=3, delay=60.0), clock=clock) as sup:
            handle = await sup.start_soon(flaky).wait()
    assert handle.state is ChildState.SUCCEEDED
    assert handle.attempts == 4
    assert clock.sleeps == []


def test_set_testing_toggles_and_testing_mode_restores() -> None:
    """set_testing flips the switch; testing_mode restores the previous value on exit."""
    from supervisors._config import CONFIG

    set_testing(True)
    try:
        with testing_mode(False):
            assert CONFIG.testing is False
        assert CONFIG.testing is True
    finally:
        set_testing(False)
    assert CONFIG.testing is False


async def test_async_attempt_timeout_counts_as_failed_attempt() -> None:
    """A per-attempt timeout fails the attempt with reason "timeout" and is retried like an error."""
    calls = 0

    async def slow_then_fast() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            await anyio.sleep_forever()
        return "fast"

    async with Supervisor(Policy(retries=1, timeout=0.05), clock=FakeClock()) as sup:
        handle = await sup.start_soon(slow_then_fast).wait()
    assert (handle.state, handle.result, handle.attempts) == (ChildState.SUCCEEDED, "fast", 2)


async def test_async_timeout_when_attempts_run_out_reports_timeout() -> None:
    """The last attempt timing out ends the child FAILED with a TimeoutError and reason "timeout"."""
    async with Supervisor(Policy(timeout=0.05)) as sup:
        handle = await sup.start_soon(anyio.sleep_forever).wait()
    assert (handle.state, handle.reason) == (ChildState.FAILED, "timeout")
    assert isinstance(handle.error, TimeoutError)


async def test_child_raising_timeout_error_itself_is_an_error_not_a_timeout() -> None:
    """A TimeoutError raised by the child is an ordinary error (reason "error")."""

    async def raises() -> None:
        raise TimeoutError("mine")

    async with Supervisor(Policy(timeout=10)) as sup:
        handle = await sup.start_soon(raises).wait()
    assert handle.reason == "error"
    assert str(handle.error) == "mine"


async def test_sync_attempt_timeout_counts_as_failed_attempt() -> None:
    """A sync child blocked past the timeout: the attempt fails with "timeout" (thread abandoned)."""
    release = threading.Event()
    try:
        async with Supervisor(Policy(retries=1, timeout=0.05), clock=FakeClock()) as sup:
            handle = await sup.start_soon(release.wait).wait()
        assert (handle.state, handle.reason, handle.attempts) == (ChildState.FAILED, "timeout", 2)
        assert isinstance(handle.error, TimeoutError)
    finally:
        release.set()


async def test_sync_child_retries_and_returns_its_value() -> None:
    """Sync children run in threads with the same retry loop."""
    calls = []

    def work(x: int) -> int:
        calls.append(x)
        if len(calls) < 2:
            raise ValueError("first")
        return x * 2

    clock = FakeClock()
    async with Supervisor(Policy(retries=1, delay=0.25), clock=clock) as sup:
        handle = await sup.start_soon(work, 21).wait()
    assert (handle.result, handle.attempts, clock.sleeps) == (42, 2, [0.25])


async def test_retry_on_predicate_that_raises_is_treated_as_final(caplog: pytest.LogCaptureFixture) -> None:
    """A broken retry_on predicate does not crash the supervisor: the error is final and logged."""

    def broken(error: BaseException) -> bool:
        raise RuntimeError("bad predicate")

    async with Supervisor(Policy(retries=3, retry_on=broken)) as sup:
        handle = await sup.start_soon(Flaky(5)).wait()
    assert (handle.state, handle.attempts) == (ChildState.FAILED, 1)
    assert "retry_on raised" in caplog.text


def test_is_async_callable_tells_every_kind_of_callable_apart() -> None:
    """Functions, partials, methods, lru_cache wrappers and objects with __call__, asked twice each (the
    answer for a class with __call__ is cached; for wrappers it must not be)."""
    import functools

    from supervisors._call import is_async_callable

    async def coro_fn() -> None: ...

    def sync_fn() -> None: ...

    class AsyncCall:
        async def __call__(self) -> None: ...

    class SyncCall:
        def __call__(self) -> None: ...

        async def method(self) -> None: ...

    cases = [
        (coro_fn, True),
        (sync_fn, False),
        (functools.partial(coro_fn), True),
        (functools.partial(sync_fn), False),
        (AsyncCall(), True),
        (SyncCall(), False),
        (SyncCall().method, True),
        (SyncCall().__call__, False),
        (functools.lru_cache(sync_fn), False),
        (SyncCall, False),
    ]
    for _ in range(2):
        assert [is_async_callable(fn) for fn, _ in cases] == [expected for _, expected in cases]
