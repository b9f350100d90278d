"""The dashboard's detail panel names the instance that ran a task, with a store (SQLite)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.server import uvicorn_server

pytestmark = pytest.mark.slow


def test_the_detail_panel_shows_the_instance_of_a_task_of_this_instance(page: Any, tmp_path: Path) -> None:
    """A task this instance ran shows its instance id under "Instance" (from the task's JSON)."""
    with uvicorn_server(TASKFLOW_TEST_DB=str(tmp_path / "tasks.db")) as (base, _):
        task_id = httpx.post(f"{base}/run/quick", params={"arg": "7"}).json()["task_id"]
        page.goto(f"{base}/tasks/dashboard")
        page.locator('#live[data-state="live"]').wait_for()
        page.locator(f'#tasks tbody tr[data-id="{task_id}"] .status.success').wait_for()
        instance = httpx.get(f"{base}/tasks/{task_id}").json()["instance"]
        assert isinstance(instance, str) and len(instance) == 32
        page.locator(f'#tasks tbody tr[data-id="{task_id}"]').click()
        detail = page.locator("#detail")
        detail.get_by_text(task_id).wait_for()
        detail.locator("dt", has_text="Instance").wait_for()
        assert detail.locator("dd", has_text=instance).count() == 1
        assert page.errors == []
