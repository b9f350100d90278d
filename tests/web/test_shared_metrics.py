"""Two server processes on one SQLite file: the dashboard's figures and `/tasks/metrics` agree, in every
instance, and count every instance's tasks; after a restart they include the history."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import free_port, server_process
from tests.web.test_servers import SERVERS


@contextmanager
def instance(server: str, db: Path) -> Iterator[httpx.Client]:
    """One server process persisting to `db`."""
    port = free_port()
    with server_process(SERVERS[server](port), port, env={"TASKFLOW_TEST_DB": str(db)}, timeout=10) as (
        client,
        _,
    ):
        yield client


def dashboard_metrics(client: httpx.Client) -> dict[str, Any]:
    """The `metrics` of the snapshot the dashboard's stream sends first (what the page's cards show)."""
    with client.stream("GET", "/tasks/dashboard/stream") as response:
        event = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line[len("event: ") :]
            elif line.startswith("data: ") and event == "state":
                return json.loads(line[len("data: ") :])["metrics"]  # type: ignore[no-any-return]
    raise AssertionError("the stream sent no snapshot")


def wait_success(client: httpx.Client, expected: int) -> dict[str, Any]:
    """Poll `/tasks/metrics` (bounded) until the store counts `expected` successes; return it."""
    deadline = time.monotonic() + 20
    while True:
        metrics = client.get("/tasks/metrics").json()
        if metrics["success"] >= expected or time.monotonic() > deadline:
            return metrics  # type: ignore[no-any-return]
        time.sleep(0.1)


def assert_agree(api: dict[str, Any], page: dict[str, Any], total: int) -> None:
    """The page's cards, charts and per-function stats show the API's numbers, all `total` tasks."""
    assert api["scope"] == page["scope"] == {"counts": "store", "durations": "store"}
    for key in ("total", "pending", "running", "success", "failed", "interrupted", "cancelled"):
        assert page[key] == api[key], key
    assert api["total"] == api["success"] == total
    assert page["success_rate"] == 100.0 and api["success_rate"] == 1.0
    assert page["p95_ms"] == round(api["p95_duration_seconds"] * 1000, 1)
    charts = page["charts"]
    assert charts["scope"] == "store"
    assert sum(b[1] for b in charts["series"]) == total  # every run ended within the chart's ten minutes
    assert {n: f["runs"] for n, f in charts["functions"].items()} == {
        n: f["runs"] for n, f in api["functions"].items()
    }
    assert sum(f["runs"] for f in api["functions"].values()) == total


@pytest.mark.slow
@pytest.mark.parametrize("server", list(SERVERS))
def test_two_instances_and_a_restart_show_the_same_store_wide_numbers(server: str, tmp_path: Path) -> None:
    """Tasks run in two instances on one file: each instance's dashboard and API count all of them, and
    after both restart the new instance still counts them, then adds its own."""
    db = tmp_path / "tasks.db"
    with ExitStack() as stack:
        first = stack.enter_context(instance(server, db))
        second = stack.enter_context(instance(server, db))
        first.post("/work")  # each /work starts `flaky` (one retry) and `sync_work`
        first.post("/work")
        second.post("/work")
        wait_success(first, 6)
        for client in (first, second):
            api = wait_success(client, 6)
            page = dashboard_metrics(client)
            assert_agree(api, page, 6)
            assert api["functions"]["flaky"]["runs"] == api["functions"]["sync_work"]["runs"] == 3
    with instance(server, db) as restarted:
        api = restarted.get("/tasks/metrics").json()
        assert_agree(api, dashboard_metrics(restarted), 6)  # the history, though this process ran nothing
        restarted.post("/work")
        api = wait_success(restarted, 8)
        assert_agree(api, dashboard_metrics(restarted), 8)
