"""Every file in examples/ runs, and the quick start works with only the import line changed."""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import anyio
import httpx
import pytest

from tests.helpers import serve, wait_finished, wait_until

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def basic_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    monkeypatch.setenv("TASKFLOW_EXAMPLE_DB", str(tmp_path / "tasks.db"))
    sys.modules.pop("examples.basic_app", None)
    with pytest.warns(DeprecationWarning, match="snapshot_interval"):  # kept from 0.5.0's quick start
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


def _fresh_import(name: str) -> ModuleType:
    sys.modules.pop(name, None)
    return importlib.import_module(name)


async def _login(client: httpx.AsyncClient, password: str) -> int:
    response = await client.post(
        "/tasks/auth/login",
        data={"username": "admin", "password": password},
        headers={"Origin": "http://testserver"},
    )
    return response.status_code


async def test_production_example_persists_and_guards_the_dashboard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """examples/production_app.py: durable tasks land in its SQLite file; the API needs the set password."""
    monkeypatch.setenv("TASKFLOW_DB", str(tmp_path / "prod.db"))
    monkeypatch.setenv("TASKFLOW_ADMIN_PASSWORD", "correct horse battery staple")
    module = _fresh_import("examples.production_app")
    try:
        async with serve(module.app) as client:
            first = (await client.post("/orders/42")).json()["task_id"]
            again = (await client.post("/orders/42")).json()["task_id"]
            report = (await client.post("/reports/2026-11-28")).json()["task_id"]
            await wait_finished(module.task_manager, [first, report])
            assert (await client.get("/tasks")).status_code == 401
            assert await _login(client, "admin") == 401  # the old default password is gone
            assert (await client.get("/tasks")).status_code == 401
            assert await _login(client, "correct horse battery staple") in (302, 303)
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


@pytest.mark.parametrize("password", [None, ""])
def test_production_example_refuses_to_start_without_a_password(
    password: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without TASKFLOW_ADMIN_PASSWORD (or with an empty one) the production example exits with a message."""
    if password is None:
        monkeypatch.delenv("TASKFLOW_ADMIN_PASSWORD", raising=False)
    else:
        monkeypatch.setenv("TASKFLOW_ADMIN_PASSWORD", password)
    try:
        with pytest.raises(SystemExit, match="set TASKFLOW_ADMIN_PASSWORD"):
            _fresh_import("examples.production_app")
    finally:
        sys.modules.pop("examples.production_app", None)


async def test_each_example_keeps_its_tasks_in_its_own_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run from one folder with their defaults, the two apps never list each other's tasks."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TASKFLOW_EXAMPLE_DB", raising=False)
    monkeypatch.delenv("TASKFLOW_DB", raising=False)
    monkeypatch.setenv("TASKFLOW_ADMIN_PASSWORD", "s3cret-for-the-test")
    with pytest.warns(DeprecationWarning, match="snapshot_interval"):  # basic_app is 0.5.0's quick start
        basic = _fresh_import("examples.basic_app")
    production = _fresh_import("examples.production_app")
    try:
        async with serve(basic.app) as basic_client, serve(production.app) as production_client:
            email = {"email": "a@example.com"}
            signup = (await basic_client.post("/signup", params=email)).json()["task_id"]
            order = (await production_client.post("/orders/1")).json()["task_id"]
            await wait_finished(basic.task_manager, [signup])
            await wait_finished(production.task_manager, [order])
            assert await _login(production_client, "s3cret-for-the-test") in (302, 303)
            production_names = {t["func_name"] for t in (await production_client.get("/tasks")).json()}
            basic_names = {t["func_name"] for t in (await basic_client.get("/tasks")).json()}
    finally:
        sys.modules.pop("examples.basic_app", None)
        sys.modules.pop("examples.production_app", None)
    assert production_names == {"charge_order"}
    assert basic_names == {"send_email"}
    assert sorted(name for name in os.listdir(tmp_path) if name.endswith(".db")) == [
        "basic_app.db",
        "production_app.db",
    ]


_OBSERVABILITY_RUN = """
import json, sys
from fastapi.testclient import TestClient
from examples import observability_app as ex

with TestClient(ex.app, backend=sys.argv[1]) as client:
    task_id = client.post("/orders/42").json()["task_id"]
    metrics = client.get("/tasks/metrics/prometheus").text
print("METRICS", "taskflow_tasks_finished_total" in metrics and 'function="charge"' in metrics)
span = next(s for s in ex.spans.get_finished_spans() if s.name == "charge")
print("SPAN", span.attributes["taskflow.task_id"] == task_id, len(span.links) + (span.parent is not None))
print("TASK", task_id)
"""


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_observability_example_logs_json_traces_and_serves_metrics(backend: str) -> None:
    """examples/observability_app.py (own process: it configures structlog and OpenTelemetry globally):
    JSON lines with the request's and the task's values, a span for the task, the Prometheus route."""
    import subprocess

    result = subprocess.run(
        [sys.executable, "-c", _OBSERVABILITY_RUN, backend],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    lines = result.stdout.splitlines()
    task_id = next(line.split()[1] for line in lines if line.startswith("TASK "))
    assert "METRICS True" in lines and "SPAN True 1" in lines
    events = [json.loads(line) for line in lines if line.startswith("{")]
    charging = next(e for e in events if e["event"] == "charging")
    assert charging["task_id"] == task_id and charging["request_id"] and charging["tags"] == {"shop": "eu"}
    charged = next(e for e in events if e["event"] == "charged")
    assert charged["card_number"] == "[redacted]" and charged["request_id"] == charging["request_id"]


async def test_redis_example_runs_as_two_instances(monkeypatch: pytest.MonkeyPatch) -> None:
    """examples/redis_instances.py: two instances on one Redis prefix share tasks and idempotency keys."""
    from tests.helpers import wait_until
    from tests.redis_service import REDIS_URL, redis_prefix

    with redis_prefix() as prefix:
        monkeypatch.setenv("TASKFLOW_REDIS_URL", REDIS_URL)
        monkeypatch.setenv("TASKFLOW_REDIS_PREFIX", prefix)
        try:
            first = _fresh_import("examples.redis_instances")
            second = _fresh_import("examples.redis_instances")
            async with serve(first.app) as one, serve(second.app) as two:
                task_id = (await one.post("/orders/42/charge")).json()["task_id"]
                await wait_finished(first.task_manager, [task_id])
                await wait_until(lambda: second.task_manager.table.key_holder("charge-42") == task_id)
                assert (await two.post("/orders/42/charge")).json()["task_id"] == task_id
                # The first instance commits the final state in its next batch: read until it is there.
                with anyio.fail_after(10):
                    while (listed := (await two.get("/tasks")).json())[0]["status"] != "success":
                        await anyio.sleep(0.02)
                assert [(t["task_id"], t["status"]) for t in listed] == [(task_id, "success")]
        finally:
            sys.modules.pop("examples.redis_instances", None)


async def test_redis_example_with_auth_shares_the_audit_log_and_sign_outs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """examples/redis_instances.py with a password: a sign-in on one instance is in the other's audit log,
    and a sign-out on one is refused by the other."""
    from tests.redis_service import REDIS_URL, redis_prefix
    from tests.web.test_auth import COOKIE_NAME, cookie

    with redis_prefix() as prefix:
        monkeypatch.setenv("TASKFLOW_REDIS_URL", REDIS_URL)
        monkeypatch.setenv("TASKFLOW_REDIS_PREFIX", prefix)
        monkeypatch.setenv("TASKFLOW_ADMIN_PASSWORD", "pw")
        monkeypatch.setenv("TASKFLOW_SECRET", "example-secret")
        try:
            first = _fresh_import("examples.redis_instances")
            second = _fresh_import("examples.redis_instances")
            async with serve(first.app) as one, serve(second.app) as two:
                form = {"username": "admin", "password": "pw"}
                signed_in = await one.post(
                    "/tasks/auth/login", data=form, headers={"origin": "http://testserver"}
                )
                token = signed_in.cookies[COOKIE_NAME]
                audit = (await two.get("/tasks/audit", headers=cookie(token))).json()
                assert [(e["actor"], e["action"]) for e in audit] == [("admin", "login")]
                await one.post("/tasks/auth/logout", headers=cookie(token))
                assert (await two.get("/tasks", headers=cookie(token))).status_code == 401
        finally:
            sys.modules.pop("examples.redis_instances", None)


async def test_cpu_tasks_example_runs_its_task_in_a_worker_process() -> None:
    """examples/cpu_tasks.py: the task runs in a worker process, its progress lines reach the record, and
    the app's shutdown leaves no worker behind."""
    sys.modules.pop("examples.cpu_tasks", None)  # an app (and its runtime) per test
    module = importlib.import_module("examples.cpu_tasks")
    manager = module.task_manager
    try:
        with anyio.fail_after(90):
            async with serve(module.app) as client:
                response = await client.post("/primes", params={"below": 1000})
                task_id = response.json()["task_id"]
                (record,) = await wait_finished(manager, [task_id], seconds=80)
                detail = (await client.get(f"/tasks/{task_id}")).json()
    finally:
        sys.modules.pop("examples.cpu_tasks", None)
    assert record.status.value == "success"
    assert any(line.endswith("168 primes below 1000") for line in detail["logs"])
    assert not any(f"process {os.getpid()} " in line for line in detail["logs"])  # not in this process
    assert manager.process_statistics().alive == 0


async def test_scheduled_example_runs_its_schedules_and_one_offs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """examples/scheduled_app.py: the startup slot runs; an urgent reminder is listed with its priority in
    the outbox queue (its function's), then cancelled; the digest schedule's task waits in the outbox."""
    monkeypatch.setenv("TASKFLOW_EXAMPLE_DB", str(tmp_path / "scheduled.db"))
    module = _fresh_import("examples.scheduled_app")
    try:
        async with serve(module.app) as client:
            with anyio.fail_after(10):
                while not (
                    await module.task_manager.query_history(tag=("schedule", "refresh_rates"))
                ).records:
                    await anyio.sleep(0.02)
            listed = (await client.get("/tasks/schedules")).json()
            assert [s["name"] for s in listed["schedules"]] == ["morning_digest", "refresh_rates"]
            added = await client.post("/remind", params={"who": "ada", "urgent": "true"})
            assert added.json() == {"run_key": "remind-ada"}
            one_offs = (await client.get("/tasks/schedules")).json()["one_offs"]
            assert [(o["run_key"], o["queue"], o["priority"]) for o in one_offs] == [("remind-ada", None, 10)]
            digest = module.task_manager.registry.get("morning_digest")
            assert (digest.queue, digest.priority) == ("outbox", 5)
            assert (await client.delete("/remind/ada")).json() == {"cancelled": True}
    finally:
        sys.modules.pop("examples.scheduled_app", None)


async def test_queues_example_orders_refuses_and_resizes() -> None:
    """examples/queues_app.py: a reset email takes the next slot before the welcome emails waiting ahead of
    it; past max_size the route answers 429 with Retry-After; PATCH /tasks/queues/emails raises the
    concurrency."""
    sys.modules.pop("examples.queues_app", None)
    module = importlib.import_module("examples.queues_app")
    tm = module.task_manager
    async with serve(module.app) as client:
        tm.update_queue_config("emails", concurrency=1)
        welcome = [
            (await client.post("/emails", params={"to": f"u{i}@x"})).json()["task_id"] for i in range(6)
        ]
        reset = (await client.post("/password-reset", params={"to": "vip@x"})).json()["task_id"]
        for i in range(20):
            answer = await client.post("/emails", params={"to": f"more{i}@x"})
            if answer.status_code == 429:
                break
        # One slot: the first welcome email runs; the next to start is the reset, whatever waits ahead of it.
        await wait_until(lambda: tm.get(reset).status.value != "pending", seconds=10)
        still_waiting = [tm.get(w).status.value for w in welcome[1:]]
        patched = await client.patch("/tasks/queues/emails", json={"concurrency": 20})
        await wait_finished(tm, [*welcome, reset], seconds=30)
    assert answer.status_code == 429 and answer.headers["retry-after"] == "1"
    assert still_waiting == ["pending"] * 5
    assert patched.status_code == 200 and patched.json()["max_size"] == 20
    sys.modules.pop("examples.queues_app", None)
