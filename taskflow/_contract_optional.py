"""The parts of `taskflow.testing.StoreContract` for what a store may add to `TaskStore`: the id search
(`query(task_id_search=)`) and the aggregate query (`summary()`). A store without them skips these tests;
the runtime then falls back (full-id prefixes only; process-local durations and charts)."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ._models import TaskRecord, TaskStatus
from .stores import SummarizingStore, TaskStore

_T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
_S = TaskStatus


def _finished(task_id: str, status: TaskStatus, func_name: str, *, ends: int, seconds: float) -> TaskRecord:
    """A record of `func_name` that ran `seconds` and ended `ends` seconds after _T0."""
    end = _T0 + timedelta(seconds=ends)
    start = end - timedelta(seconds=seconds)
    return TaskRecord(
        task_id=task_id, func_name=func_name, status=status, created_at=start, start_time=start, end_time=end
    )


class OptionalContract:
    """Tests of the optional store features, mixed into `StoreContract`."""

    async def test_query_task_id_search_matches_full_and_short_ids(self, store: TaskStore) -> None:
        """task_id_search matches the start of the full id or of its short form (last 8 characters)."""
        if "task_id_search" not in inspect.signature(store.query).parameters:
            pytest.skip("this store has no task_id_search (the dashboard's search uses full-id prefixes)")
        same_minute = "01a24db0-0000-7000-8000-"
        a, b = f"{same_minute}00001234abcd", f"{same_minute}0000ffff5678"
        await store.write(
            [TaskRecord(task_id=t, func_name="job", status=_S.PENDING, created_at=_T0) for t in (a, b)],
            owner="i1",
        )

        async def ids(text: str) -> list[str]:
            page = await store.query(task_id_search=text)
            return sorted(r.task_id for r in page.records)

        assert await ids("1234abcd") == [a]  # the whole short id
        assert await ids("ffff") == [b]  # the start of a short id
        assert await ids("01a24db0") == [a, b]  # a full-id prefix
        assert await ids("abcd") == []  # neither a prefix nor the start of a short id
        assert await ids("00001234") == []  # inside the id, before the short form

    async def test_summary_counts_per_function_and_latest_runs(self, store: TaskStore) -> None:
        """summary(): counts per function and status over every record; the latest-ended runs first."""
        if not isinstance(store, SummarizingStore):
            pytest.skip("this store has no summary(): metrics fall back to counts() and this process")
        await store.write(
            [
                _finished("r1", _S.SUCCESS, "send", ends=10, seconds=0.5),
                _finished("r2", _S.FAILED, "send", ends=30, seconds=2.0),
                _finished("r3", _S.SUCCESS, "bill", ends=20, seconds=1.25),
                _finished("r4", _S.CANCELLED, "bill", ends=40, seconds=0.0),
                TaskRecord(task_id="r5", func_name="bill", status=_S.PENDING, created_at=_T0),
            ],
            owner="i1",
        )
        summary = await store.summary(recent=3)
        assert summary.counts == {
            "send": {_S.SUCCESS: 1, _S.FAILED: 1},
            "bill": {_S.SUCCESS: 1, _S.CANCELLED: 1, _S.PENDING: 1},
        }
        latest: list[tuple[Any, ...]] = [(r.func_name, r.status, r.ended, r.duration) for r in summary.recent]
        ends = [(_T0 + timedelta(seconds=s)).timestamp() for s in (40, 30, 20)]
        assert latest == [
            ("bill", _S.CANCELLED, ends[0], 0.0),
            ("send", _S.FAILED, ends[1], 2.0),
            ("bill", _S.SUCCESS, ends[2], 1.25),
        ]
        with pytest.raises(ValueError, match=r"limit|recent"):
            await store.summary(recent=0)
