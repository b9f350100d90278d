"""The checks on `TaskRuntime`'s keyword options, made before anything is built, and the queues they declare.

Apart from the runtime so that its constructor reads as what it builds: a bad option raises
`ConfigurationError` here, naming the option, and nothing (no store, no observer thread) is started.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from ._compat import warn_ignored_settings
from ._config import TaskflowConfig
from ._exceptions import ConfigurationError
from ._queues import DEFAULT_QUEUE, QueueConfig, check_limit

DEFAULT_MAX_PENDING = 100_000
"""The default `max_pending`: most tasks one process holds unfinished before `add_task` refuses more."""


def check_cap(name: str, value: int | None) -> None:
    """ConfigurationError unless `value` is a positive int or None (no cap)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigurationError(f"{name} must be a positive int or None, got {value!r}")


def check_seconds(name: str, value: float) -> None:
    """ConfigurationError unless `value` is a finite number of seconds >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ConfigurationError(f"{name} must be a finite number of seconds >= 0, got {value!r}")


def check_options(
    *,
    max_concurrent_tasks: int | None,
    max_pending: int | None,
    max_size: int | None,
    max_sync_threads: int | None,
    max_process_workers: int | None,
    process_max_tasks_per_worker: int | None,
    shutdown_grace: float,
    checkpoint_timeout: float,
    snapshot_interval: float,
    merged_list_ttl: float,
    heartbeat_interval: float,
    heartbeat_ttl: float,
    durable_timeout: float,
    retention_days: float | None,
    max_terminal_records: int | None,
) -> None:
    """Check the runtime's options in this order (the first bad one is named); warn of ignored ones."""
    check_cap("max_concurrent_tasks", max_concurrent_tasks)
    check_cap("max_pending", max_pending)
    check_limit("max_size", max_size)
    check_cap("max_sync_threads", max_sync_threads)
    check_cap("max_process_workers", max_process_workers)
    check_cap("process_max_tasks_per_worker", process_max_tasks_per_worker)
    check_seconds("shutdown_grace", shutdown_grace)
    check_seconds("checkpoint_timeout", checkpoint_timeout)
    check_seconds("snapshot_interval", snapshot_interval)
    check_seconds("merged_list_ttl", merged_list_ttl)
    # stacklevel 4: past this function and the constructor, to the code calling `TaskManager(...)`.
    warn_ignored_settings(snapshot_interval=snapshot_interval, merged_list_ttl=merged_list_ttl, stacklevel=4)
    check_seconds("heartbeat_interval", heartbeat_interval)
    check_seconds("heartbeat_ttl", heartbeat_ttl)
    check_seconds("durable_timeout", durable_timeout)
    if retention_days is not None:
        check_seconds("retention_days", retention_days)
    if heartbeat_ttl <= heartbeat_interval:
        raise ConfigurationError("heartbeat_ttl must be longer than heartbeat_interval")
    if max_terminal_records is not None and (
        isinstance(max_terminal_records, bool)
        or not isinstance(max_terminal_records, int)
        or max_terminal_records < 0
    ):
        raise ConfigurationError(
            f"max_terminal_records must be an int >= 0 or None, got {max_terminal_records!r}"
        )


def declared_queues(
    config: TaskflowConfig, queues: Mapping[str, QueueConfig] | None, max_size: int | None
) -> dict[str, QueueConfig]:
    """The queues of configuration and of `queues=`, with `max_size=` as the default queue's limit."""
    if queues is not None and not isinstance(queues, Mapping):
        raise ConfigurationError(f"queues must be a dict of names to QueueConfig, got {queues!r}")
    declared = dict(config.queues)
    for name, queue in (queues or {}).items():
        if name in declared:
            raise ConfigurationError(f"queue {name!r} is declared both in {config.source} and in queues=")
        if isinstance(queue, Mapping):  # {"concurrency": 4}: the same keys as QueueConfig
            unknown = set(queue) - {"concurrency", "max_size"}
            if unknown:
                raise ConfigurationError(
                    f"queue {name!r}: unknown keys {sorted(unknown)} (concurrency, max_size)"
                )
            queue = QueueConfig(**queue)
        declared[name] = queue
    if max_size is not None:
        if DEFAULT_QUEUE in declared:
            raise ConfigurationError(
                "max_size= sets the 'default' queue's max_size, which is declared too: set it there"
            )
        declared[DEFAULT_QUEUE] = QueueConfig(max_size=max_size)
    return declared
