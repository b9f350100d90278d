"""Each package has one public face: `__all__` is sorted and lists exactly the public names it defines."""

from __future__ import annotations

import importlib
import types

import pytest

PACKAGES = [
    "supervisors",
    "supervisors.testing",
    "taskflow",
    "taskflow.observers",
    "taskflow.backends",
    "taskflow.stores",
    "taskflow.metrics",
    # fastapi-taskflow 0.5.0 compatibility modules (re-exports at 0.5.0's import paths)
    "taskflow.loggers",
    "taskflow.loggers.base",
    "taskflow.loggers.chain",
    "taskflow.loggers.file",
    "taskflow.loggers.memory",
    "taskflow.loggers.stdout",
    "taskflow.models",
    "taskflow.store",
    "taskflow.task_logging",
    "taskflow.wrapper",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_matches_public_names(name: str) -> None:
    """`__all__` is sorted, every name in it exists, and every public attribute is in it."""
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported == sorted(exported)
    for attr in exported:
        assert hasattr(module, attr), attr
    public = {
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_")
        and not isinstance(value, types.ModuleType)
        and attr not in {"annotations", "TYPE_CHECKING"}
    }
    assert public == set(exported)


def test_fastapi_taskflow_050_names_are_importable() -> None:
    """Every name fastapi-taskflow 0.5.0 exports is importable from taskflow (migration = import line)."""
    import taskflow

    names = [
        "TaskAdmin", "TaskAuthBackend", "TaskManager", "ManagedBackgroundTasks", "TaskStatus", "TaskRecord",
        "TaskConfig", "SnapshotScheduler", "SnapshotBackend", "SqliteBackend", "RedisBackend", "TaskObserver",
        "LogEvent", "LifecycleEvent", "LoggerChain", "FileLogger", "InMemoryLogger", "StdoutLogger",
        "task_log", "TaskContext", "get_task_context",
    ]  # fmt: skip
    missing = [n for n in names if not hasattr(taskflow, n)]
    assert missing == []


def test_public_types_of_schedules_are_exported() -> None:
    """The types schedule users catch and receive are importable from taskflow: `ScheduleNotFound` (pause,
    resume, run now of an unknown schedule) and `ScheduledOnce` (fastapi-taskflow 0.12's `list_scheduled`
    item), besides the exceptions of queues and process tasks."""
    import taskflow
    from taskflow._exceptions import ScheduleNotFound
    from taskflow._schedules import ScheduledOnce

    expected = {"ScheduleNotFound", "ScheduledOnce", "QueueFull", "QueueFullError", "TaskRejected",
                "TaskArgumentError", "ProcessTaskError", "QueueConfig"}  # fmt: skip
    assert expected <= set(taskflow.__all__)
    assert (taskflow.ScheduleNotFound, taskflow.ScheduledOnce) == (ScheduleNotFound, ScheduledOnce)


# What each fastapi-taskflow 0.5.0 module exported, as (0.5.0 module, name, where taskflow defines it).
FASTAPI_TASKFLOW_050_PATHS = [
    ("models", "TaskStatus", "taskflow"),
    ("models", "TaskConfig", "taskflow"),
    ("models", "TaskRecord", "taskflow"),
    ("task_logging", "TaskContext", "taskflow"),
    ("task_logging", "get_task_context", "taskflow"),
    ("task_logging", "task_log", "taskflow"),
    ("loggers", "TaskObserver", "taskflow.observers"),
    ("loggers", "LogEvent", "taskflow.observers"),
    ("loggers", "LifecycleEvent", "taskflow.observers"),
    ("loggers", "LoggerChain", "taskflow.observers"),
    ("loggers", "FileLogger", "taskflow.observers"),
    ("loggers", "InMemoryLogger", "taskflow.observers"),
    ("loggers", "StdoutLogger", "taskflow.observers"),
    ("loggers.base", "TaskObserver", "taskflow.observers"),
    ("loggers.base", "LogEvent", "taskflow.observers"),
    ("loggers.base", "LifecycleEvent", "taskflow.observers"),
    ("loggers.chain", "LoggerChain", "taskflow.observers"),
    ("loggers.file", "FileLogger", "taskflow.observers"),
    ("loggers.memory", "InMemoryLogger", "taskflow.observers"),
    ("loggers.stdout", "StdoutLogger", "taskflow.observers"),
    ("wrapper", "ManagedBackgroundTasks", "taskflow"),
    ("store", "TaskStore", "taskflow._compat_store:CompatTaskStore"),
    ("backends", "SnapshotBackend", "taskflow"),
    ("backends", "SqliteBackend", "taskflow"),
    ("backends", "RedisBackend", "taskflow"),
]


@pytest.mark.parametrize(("module", "name", "origin"), FASTAPI_TASKFLOW_050_PATHS)
def test_fastapi_taskflow_050_import_paths(module: str, name: str, origin: str) -> None:
    """`from fastapi_taskflow.<module> import <name>` works as `from taskflow.<module> import <name>`."""
    imported = getattr(importlib.import_module(f"taskflow.{module}"), name)
    home, _, attr = origin.partition(":")
    assert imported is getattr(importlib.import_module(home), attr or name)


@pytest.mark.parametrize("module", sorted({m for m, _, _ in FASTAPI_TASKFLOW_050_PATHS} - {"backends"}))
def test_compat_modules_export_exactly_050_names(module: str) -> None:
    """Each compatibility module exports 0.5.0's names for that path, no more (it is not a second API)."""
    expected = {n for m, n, _ in FASTAPI_TASKFLOW_050_PATHS if m == module}
    assert set(importlib.import_module(f"taskflow.{module}").__all__) == expected


def test_task_manager_store_is_the_050_task_store() -> None:
    """`task_manager.store` is an instance of `taskflow.store.TaskStore`, as in 0.5.0."""
    from taskflow import TaskManager
    from taskflow.store import TaskStore

    assert isinstance(TaskManager().store, TaskStore)


def test_redis_backend_has_the_050_constructor() -> None:
    """0.5.0's `RedisBackend(url, prefix, ttl, **client_kwargs)` builds a RedisStore without connecting."""
    from taskflow.backends import RedisBackend
    from taskflow.stores import RedisStore

    backend = RedisBackend("redis://127.0.0.1:1/2", "app:tasks", 60, socket_timeout=1.5)
    assert isinstance(backend, RedisStore)
    assert (backend.url, backend.prefix, backend.ttl) == ("redis://127.0.0.1:1/2", "app:tasks", 60)
    assert backend.client_kwargs["socket_timeout"] == 1.5
    assert RedisBackend().prefix == "fbtm:snapshots" and RedisBackend().ttl is None


def test_other_missing_names_stay_attribute_errors() -> None:
    """An unknown name is a plain AttributeError."""
    import taskflow
    import taskflow.backends

    assert not hasattr(taskflow, "NoSuchName")
    assert not hasattr(taskflow.backends, "NoSuchBackend")


def test_version_comes_from_the_package_metadata() -> None:
    """`taskflow.__version__` (0.5.0's name) is the installed distribution's version."""
    import importlib.metadata

    import taskflow

    assert taskflow.__version__ == importlib.metadata.version("anyio-taskflow")


def test_snapshot_scheduler_is_exported_where_050_exported_it() -> None:
    """`SnapshotScheduler` is importable from `taskflow` (0.5.0's `__all__`) and from `taskflow.backends`."""
    import taskflow
    import taskflow.backends

    assert taskflow.SnapshotScheduler is taskflow.backends.SnapshotScheduler
    assert "SnapshotScheduler" in taskflow.__all__ and "SnapshotScheduler" in taskflow.backends.__all__


def test_task_manager_surface_is_the_050_api_plus_the_documented_additions() -> None:
    """TaskManager's public methods are 0.5.0's and those docs/*.md describe; internals are collaborators."""
    import taskflow

    tm = taskflow.TaskManager()
    methods = {n for n in dir(tm) if not n.startswith("_") and callable(getattr(tm, n))}
    v050 = {
        "task",
        "get_tasks",
        "background_tasks",
        "install",
        "merged_list",
        "startup",
        "shutdown",
        "init_app",
    }
    documented = {
        "running",
        "statistics",
        "get",
        "query",
        "flush_observers",
        "find",
        "query_history",
        "metrics",
        "get_config",
        "cancel",
        "retry",
        "delete_history",
        "observer_statistics",
        "store_statistics",
        "actor",
        "actor_statistics",
        "process_statistics",
        # docs/schedules.md
        "schedule",
        "schedule_once",
        "cancel_scheduled",
        "list_scheduled",
        "schedules",
        "pause_schedule",
        "resume_schedule",
        "run_schedule_now",
        "queue_stats",
        "update_queue_config",
    }
    assert methods == v050 | documented
    # The package-internal contract taskflow.web uses: collaborators, none of them a method.
    for name in ("lifecycle", "launcher", "lifespan", "actions", "listeners"):
        assert not callable(getattr(tm, name)), name
    for gone in (
        "transition",
        "changed",
        "adopt",
        "refuse",
        "make_durable",
        "dispatch_all",
        "dispatch",
        "submit",
    ):
        assert not hasattr(tm, gone), gone
