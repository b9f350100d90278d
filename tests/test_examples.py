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


async def test_production_example_persists_and_guards_the_dashboard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """examples/production_app.py: durable tasks land in its SQLite file; the API needs a login."""
    monkeypatch.setenv("TASKFLOW_DB", str(tmp_path / "prod.db"))
    sys.modules.pop("examples.production_app", None)
    module = importlib.import_module("examples.production_app")
    try:
        async with serve(module.app) as client:
            first = (await client.post("/orders/42")).json()["task_id"]
            again = (await client.post("/orders/42")).json()["task_id"]
            report = (await client.post("/reports/2026-11-28")).json()["task_id"]
            await wait_finished(module.task_manager, [first, report])
            assert (await client.get("/tasks")).status_code == 401
            login = await client.post(
                "/tasks/auth/login",
                data={"username": "admin", "password": "admin"},
                headers={"Origin": "http://testserver"},
            )
            assert login.status_code in (302, 303)
            listing = (await client.get("/tasks")).json()  # the client kept the session cookie
    finally:
        sys.modules.pop("examples.production_app", None)
    assert first == again
    assert {t["task_id"] for t in listing} == {first, report}
    from taskflow.stores import SqliteStore

    store = SqliteStore(str(tmp_path / "prod.db"))
    await store.open()
    stored = await store.get(first)
    await store.close()
    assert stored is not None and stored.status.value == "success"
