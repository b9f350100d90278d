"""Direct observers (`ChildObserver`): the same moments as the events, given the handle, in order."""

from __future__ import annotations

import logging

import anyio
import pytest

from supervisors import ChildHandle, ChildState, Policy, Supervisor, run_supervised
from supervisors.testing import testing_mode


class Recorder:
    """Writes down every call it gets, with what the handle said at that moment."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []

    def attempt_started(self, handle: ChildHandle) -> None:
        self.calls.append(("started", handle.key, handle.attempts))

    def attempt_failed(
        self, handle: ChildHandle, error: BaseException, will_retry: bool, reason: str
    ) -> None:
        self.calls.append(("failed", handle.key, handle.attempts, str(error), will_retry, reason))

    def retry_scheduled(self, handle: ChildHandle, delay: float, error: BaseException) -> None:
        self.calls.append(("retry", handle.key, delay, str(error)))

    def finished(self, handle: ChildHandle) -> None:
        self.calls.append(("finished", handle.key, handle.state, handle.reason, handle.result))


async def test_an_observer_follows_a_flaky_child_from_first_attempt_to_success() -> None:
    recorder = Recorder()
    failures = iter([ValueError("one"), ValueError("two")])

    async def flaky() -> str:
        error = next(failures, None)
        if error is not None:
            raise error
        return "done"

    with testing_mode():
        async with Supervisor(Policy(retries=2, delay=0.5), observers=[recorder]) as sup:
            sup.start_soon(flaky, key="k")
    assert recorder.calls == [
        ("started", "k", 1),
        ("failed", "k", 1, "one", True, "error"),
        ("retry", "k", 0.5, "one"),
        ("started", "k", 2),
        ("failed", "k", 2, "two", True, "error"),
        ("retry", "k", 0.5, "two"),
        ("started", "k", 3),
        ("finished", "k", ChildState.SUCCEEDED, None, "done"),
    ]


async def test_child_supervisors_and_inline_runs_report_to_observers_too() -> None:
    recorder = Recorder()

    async def fail() -> None:
        raise RuntimeError("no")

    async with Supervisor(observers=[recorder]) as sup:
        sup.child(Policy(name="other", max_concurrency=2)).start_soon(fail, key="child")
    handle = await run_supervised(fail, key="inline", observers=[recorder])
    assert handle.state is ChildState.FAILED
    assert ("finished", "child", ChildState.FAILED, "error", None) in recorder.calls
    assert recorder.calls[-1] == ("finished", "inline", ChildState.FAILED, "error", None)


async def test_cancelled_and_interrupted_children_are_reported_finished_with_their_reason() -> None:
    recorder = Recorder()

    async def forever() -> None:
        await anyio.sleep_forever()

    async with Supervisor(observers=[recorder], shutdown_grace=0) as sup:
        doomed = sup.start_soon(forever, key="cancelled")
        sup.start_soon(forever, key="interrupted")
        await anyio.wait_all_tasks_blocked()
        doomed.cancel()
    finished = {call[1]: call[2:4] for call in recorder.calls if call[0] == "finished"}
    assert finished == {
        "cancelled": (ChildState.CANCELLED, "cancelled"),
        "interrupted": (ChildState.INTERRUPTED, "shutdown"),
    }


async def test_a_raising_observer_is_logged_and_changes_nothing(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(Recorder):
        def attempt_started(self, handle: ChildHandle) -> None:
            raise RuntimeError("observer bug")

    after = Recorder()

    async def work() -> int:
        return 7

    with caplog.at_level(logging.ERROR, logger="supervisors"):
        async with Supervisor(observers=[Broken(), after]) as sup:
            handle = sup.start_soon(work, key="w")
    assert (handle.state, handle.result) == (ChildState.SUCCEEDED, 7)
    assert after.calls == [("started", "w", 1), ("finished", "w", ChildState.SUCCEEDED, None, 7)]
    assert "observer bug" in caplog.text
