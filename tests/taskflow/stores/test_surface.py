"""The public face of the storage layer: exports, fastapi-taskflow's backend names, and import layering."""

from __future__ import annotations

import ast
import sys
import types
from pathlib import Path

import pytest

import taskflow.backends
import taskflow.stores
import taskflow.testing
from taskflow.backends import SnapshotBackend, SqliteBackend
from taskflow.stores import MemoryStore, SqliteStore, TaskStore

STORES = Path(taskflow.stores.__file__).parent
ALLOWED_CORE = {"taskflow._models", "taskflow._codec", "taskflow._exceptions", "taskflow._table"}


@pytest.mark.parametrize("module", [taskflow.stores, taskflow.testing, taskflow.backends])
def test_all_lists_exactly_the_public_names(module: types.ModuleType) -> None:
    """`__all__` is sorted and equals the module's public, non-module attributes."""
    exported = list(module.__all__)
    assert exported == sorted(exported)
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name not in {"annotations", "TYPE_CHECKING"}
        and getattr(value, "__module__", module.__name__).startswith(module.__name__)
    }
    assert public <= set(exported) and all(hasattr(module, name) for name in exported)


def test_fastapi_taskflow_backend_names() -> None:
    """SqliteBackend takes fastapi-taskflow's signature and is a SqliteStore; SnapshotBackend is TaskStore."""
    assert SqliteBackend().path == "tasks.db"
    backend = SqliteBackend(db_path="other.db")
    assert isinstance(backend, SqliteStore) and backend.path == "other.db"
    assert SnapshotBackend is TaskStore
    assert isinstance(backend, SnapshotBackend) and isinstance(MemoryStore(), SnapshotBackend)


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                found.append(node.module or "")
            elif node.level == 1:
                found.append(f"taskflow.stores.{node.module}" if node.module else "taskflow.stores")
            else:
                found.append(f"taskflow.{node.module}" if node.module else "taskflow")
    return found


def test_stores_import_only_stdlib_anyio_and_core_data() -> None:
    """taskflow/stores/ imports the stdlib, anyio and taskflow's data modules only (never web or runtime)."""
    files = sorted(STORES.rglob("*.py"))
    assert files
    bad = []
    for path in files:
        for module in _imports(path):
            top = module.split(".")[0]
            ok = (
                top in sys.stdlib_module_names
                or top == "anyio"
                or module.startswith("taskflow.stores")
                or module in ALLOWED_CORE
                or (path.name == "_redis.py" and top == "redis")  # the optional client, imported lazily
            )
            if not ok:
                bad.append(f"{path.name}: {module}")
    assert bad == []
