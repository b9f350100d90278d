"""The queues as the public methods see them: `queue_stats()` and `update_queue_config()`.

Apart from `_queues.py` (which owns the queues' state and slots) because these answers hold for a runtime
with no queue declared too: no stats, and every name unknown.
"""

from __future__ import annotations

from typing import Any

from ._queues import Queues, UnknownQueue

KEEP: Any = object()
"""`update_queue_config`'s default: leave this limit as it is."""


class QueueAdmin:
    """Reads and changes the declared queues' limits (none may be declared)."""

    def __init__(self, queues: Queues | None) -> None:
        self.queues = queues

    def stats(self) -> list[dict[str, Any]]:
        """Per declared queue, by name: its limits and counts; empty when no queue is declared."""
        return self.queues.stats() if self.queues is not None else []

    def update(self, name: str, *, concurrency: int | None, max_size: int | None) -> dict[str, Any]:
        """Change the limits given (not `KEEP`) of queue `name`; its stats after the change."""
        changes = {k: v for k, v in (("concurrency", concurrency), ("max_size", max_size)) if v is not KEEP}
        if self.queues is None:
            raise UnknownQueue(f"no queue named {name!r} (no queue is declared)")
        return self.queues.update(name, changes)
