"""Every file in examples/ runs, and the quick start works with only the import line changed."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.helpers import serve, wait_finished

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def basic_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    monkeypatch.setenv("TASKFLOW_EXAMPLE_DB", str(tmp_path / "tasks.db"))
    sys.modules.pop("examples.basic_app", None)
    module = importlib.import_module("examples.basic_app")
    yield module
    sys.modules.pop("examples.basic_app", None)


async def test_quick_start_flow(basic_app: ModuleType) -> None:
    """signup -> task id -> GET /tasks lists it -> /tasks/metrics counts it (the README's curl flow)."""
    async with serve(basic_app.app) as client:
        task_id = (await client.post("/signup", params={"email": "user@example.com"})).json()["task_id"]
        (record,) = await wait_finished(basic_app.task_manager, [task_id])
        listing = (await client.get("/tasks")).json()
        metrics = (await client.get("/tasks/metrics")).json()
    assert record.status.value == "success"
    assert [t["task_id"] for t in listing] == [task_id] and listing[0]["func_name"] == "send_email"
    assert metrics["total"] == 1 and metrics["success"] == 1 and metrics["success_rate"] == 1.0
    assert [e.extra for e in basic_app.events.log_events] == [{"address": "user@example.com"}]


async def test_all_three_injection_patterns_tags_and_idempotency(basic_app: ModuleType) -> None:
    """The managed annotation with tags, and Depends with an idempotency key (same id twice)."""
    async with serve(basic_app.app) as client:
        order = (await client.post("/orders/7")).json()["task_id"]
        first = (await client.post("/orders/7/notify")).json()["task_id"]
        await wait_finished(basic_app.task_manager, [order, first])
        second = (await client.post("/orders/7/notify")).json()["task_id"]
        detail = (await client.get(f"/tasks/{order}")).json()
    assert first == second
    assert detail["tags"] == {"user_id": "42", "source": "checkout"} and detail["status"] == "success"


def test_supervised_worker_example_is_covered() -> None:
    """examples/supervised_worker.py has its own test (tests/supervisors), run on both backends."""
    assert (ROOT / "examples" / "supervised_worker.py").exists()
    assert any(
        "supervised_worker" in p.read_text() for p in (ROOT / "tests" / "supervisors").glob("test_*.py")
    )
