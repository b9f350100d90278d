"""A SQLite path that cannot be opened stops startup with one ConfigurationError naming the path and the
problem, not an ExceptionGroup ending in sqlite3's bare "unable to open database file"."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi import FastAPI

from taskflow import ConfigurationError, TaskAdmin, TaskManager
from taskflow.stores import SqliteStore
from tests.helpers import ROOT, free_port

MISSING_DIR = "/nonexistent/dir/tasks.db"


async def test_a_missing_directory_is_named_when_the_runtime_starts() -> None:
    """`running()` raises the ConfigurationError itself (no group), naming the path and the directory."""
    manager = TaskManager(snapshot_db=MISSING_DIR)
    with pytest.raises(ConfigurationError) as caught:
        async with manager.running():
            pytest.fail("the runtime started on a path that cannot be opened")
    message = str(caught.value)
    assert MISSING_DIR in message and "'/nonexistent/dir' does not exist" in message
    assert not manager.is_running


async def test_a_directory_given_as_the_database_is_named(tmp_path: Path) -> None:
    """A path that is a directory says so, through the app's lifespan (what TaskAdmin installs) as well.

    The lifespan is entered directly: servers (and asgi-lifespan on trio) may add a group of their own.
    """
    app = FastAPI()
    TaskAdmin(app, TaskManager(snapshot_db=str(tmp_path)))
    with pytest.raises(ConfigurationError, match="it is a directory") as caught:
        async with app.router.lifespan_context(app):
            pytest.fail("the app started on a directory")
    assert str(tmp_path) in str(caught.value)


async def test_the_store_opens_again_once_the_path_is_fixed(tmp_path: Path) -> None:
    """The failed open leaves nothing half-open: after creating the directory, the same store opens."""
    store = SqliteStore(tmp_path / "later" / "tasks.db")
    with pytest.raises(ConfigurationError, match="does not exist"):
        await store.open()
    (tmp_path / "later").mkdir()
    await store.open()
    try:
        assert await store.get("no-such-task") is None
    finally:
        await store.close()


@pytest.mark.slow
def test_uvicorn_prints_one_error_naming_the_path(tmp_path: Path) -> None:
    """What a user sees from uvicorn: the ConfigurationError with the path, and no ExceptionGroup."""
    result = subprocess.run(
        [sys.executable, "-m", "uvicorn", "tests.web.server_app:app", "--port", str(free_port())],
        cwd=ROOT,
        env={**os.environ, "TASKFLOW_TEST_DB": MISSING_DIR, "TASKFLOW_TEST_SUMMARY": str(tmp_path / "s")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert f"ConfigurationError: cannot open the SQLite task store '{MISSING_DIR}'" in result.stderr
    assert "ExceptionGroup" not in result.stderr and result.stderr.count("Traceback") == 1
