"""The exported store contract (`taskflow.testing.StoreContract`) run against MemoryStore and SqliteStore."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from taskflow.stores import MemoryStore, SqliteStore, TaskStore
from taskflow.testing import StoreContract


class TestMemoryStore(StoreContract):
    """MemoryStore, the reference implementation, meets the contract."""

    @pytest.fixture
    def store_factory(self) -> Callable[[], TaskStore]:
        """One shared in-memory store: every handle is the same object."""
        shared = MemoryStore()
        return lambda: shared


class TestSqliteStore(StoreContract):
    """SqliteStore meets the contract; each handle is its own connection to one file."""

    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> Callable[[], TaskStore]:
        """A new SqliteStore (own connection, own thread limiter) on one file per call."""
        return lambda: SqliteStore(tmp_path / "tasks.db")
