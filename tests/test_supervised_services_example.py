"""examples/supervised_services.py: config file with environment overrides, the inbox actor restarting and
giving up, and an export that resumes from its checkpoint after a restart; on both backends."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.helpers import serve, wait_until

NAME = "examples.supervised_services"


@pytest.fixture
def load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], ModuleType]]:
    monkeypatch.setenv("TASKFLOW_SERVICES_DB", str(tmp_path / "services.db"))
    monkeypatch.setenv("TASKFLOW_SERVICES_GRACE", "0")
    monkeypatch.setenv("TASKFLOW_POLICY_INBOX_DELAY", "0")  # restart the consumer at once in the test
    monkeypatch.setenv("TASKFLOW_POLICY_INBOX_MAX_RESTARTS", "1")

    def fresh() -> ModuleType:
        sys.modules.pop(NAME, None)
        return importlib.import_module(NAME)

    yield fresh
    sys.modules.pop(NAME, None)


async def test_config_and_the_inbox_actor(load: Callable[[], ModuleType]) -> None:
    """Policies come from the TOML file with environment overrides; the consumer sends, is restarted after
    a bad message, and gives up after the next one (visible in /tasks/supervision)."""
    module = load()
    emails = module.task_manager.config.policy("emails")
    inbox = module.task_manager.config.policy("inbox")
    assert (emails.policy.retries, emails.policy.retry_on) == (4, (ConnectionError, TimeoutError))
    assert (inbox.policy.delay, inbox.max_restarts) == (0, 1)
    async with serve(module.app) as client:
        assert (await client.post("/inbox", params={"to": "ada@example.com"})).status_code == 200
        await wait_until(lambda: module.sent == ["ada@example.com"])
        await client.post("/inbox", params={"to": "nobody"})
        await wait_until(lambda: module.task_manager.actor_statistics()[0].restarts == 1)
        await wait_until(lambda: module.task_manager.actor_statistics()[0].state == "running")
        assert (await client.post("/inbox", params={"to": "bob@example.com"})).status_code == 200
        await wait_until(lambda: module.sent == ["ada@example.com", "bob@example.com"])
        await client.post("/inbox", params={"to": "again-nobody"})
        await wait_until(lambda: module.task_manager.actor_statistics()[0].state == "gave_up")
        actor = (await client.get("/tasks/supervision")).json()["actors"][0]
        refused = await client.post("/inbox", params={"to": "carol@example.com"})
    assert actor["state"] == "gave_up" and actor["last_error"] == "ValueError: not an address: 'again-nobody'"
    assert refused.status_code == 503


async def test_export_resumes_from_its_checkpoint(load: Callable[[], ModuleType]) -> None:
    """Cut short by a shutdown, the export keeps its checkpoint and the next start resumes after it."""
    first = load()
    async with serve(first.app) as client:
        task_id = (await client.post("/exports", params={"rows": 10**6})).json()["task_id"]
        await wait_until(lambda: len(first.exported) >= 2)
    saved = first.exported[-1]
    assert first.task_manager.get(task_id).status.value == "pending"  # kept for the next start

    second = load()
    async with serve(second.app):
        await wait_until(lambda: len(second.exported) >= 1)
        record = second.task_manager.get(task_id)
    assert second.exported[0] == saved + 100  # resumed after the saved batch, not from row 0
    assert any(line.endswith(f"resuming at row {saved}") for line in record.logs)
