"""The dashboard stream's memory: the last `RING_SIZE` task events, numbered, and each client's place in it.

Apart from the bus because this is what bounds a client's memory and decides how a client resumes: every
event has a position (`seq`), an SSE id names the bus's epoch and a position, a client reads from its own
position and gets one event per task (a slow client is not sent every intermediate state), and a client
that fell behind the ring, or resumes from an id it no longer holds, gets a fresh snapshot instead.
"""

from __future__ import annotations

import secrets

import anyio

RING_SIZE = 4096


class Subscription:
    """One connected client: its position in the ring and a wake-up event."""

    def __init__(self) -> None:
        self.seq = 0
        self.metrics_version = -1
        self._event = anyio.Event()

    def notify(self) -> None:
        """Wake the client's stream (event loop thread only)."""
        self._event.set()

    async def wait(self, seconds: float) -> bool:
        """Wait for news; False after `seconds` without any."""
        with anyio.move_on_after(seconds):
            await self._event.wait()
        woke = self._event.is_set()
        self._event = anyio.Event()
        return woke


class EventRing:
    """A fixed-size ring of `(seq, task id, JSON payload)`, written and read on the event loop thread."""

    def __init__(self) -> None:
        self.epoch = secrets.token_hex(4)  # event ids of another process (or bus) never resume here
        self.seq = 0
        self.entries: list[tuple[int, str, str] | None] = [None] * RING_SIZE
        self._skipped_after: int | None = None

    def append(self, task_id: str, payload: str) -> None:
        """Keep one event at the next position."""
        self.seq += 1
        self.entries[self.seq % RING_SIZE] = (self.seq, task_id, payload)

    def skip(self) -> None:
        """Note that changes after the current position are not kept (nobody was watching)."""
        self._skipped_after = self.seq

    def behind(self, seq: int) -> bool:
        """Whether the events after position `seq` are no longer all in the ring."""
        return self.seq - seq >= RING_SIZE

    def event_id(self, seq: int) -> str:
        """The SSE id of position `seq`."""
        return f"{self.epoch}-{seq}"

    def resume_point(self, last_event_id: str | None) -> int | None:
        """The position to resume a client from, or None when it needs a fresh snapshot."""
        if not last_event_id:
            return None
        epoch, _, number = last_event_id.partition("-")
        if epoch != self.epoch or not number.isdigit() or len(number) > 18:
            return None
        seq = int(number)
        if seq > self.seq or self.behind(seq):
            return None
        if self._skipped_after is not None and seq <= self._skipped_after:
            return None  # changes after it were not kept in the ring (nobody was subscribed)
        return seq

    def latest_since(self, seq: int) -> list[tuple[int, str]]:
        """`(seq, payload)` of the last event of each task after position `seq`, in order of those events
        (the caller checks `behind(seq)` first)."""
        latest: dict[str, tuple[int, str]] = {}
        entries = self.entries
        for position in range(seq + 1, self.seq + 1):
            entry = entries[position % RING_SIZE]
            assert entry is not None  # positions within RING_SIZE of the head are always filled
            latest.pop(entry[1], None)  # re-insert, so events go out in order of their latest change
            latest[entry[1]] = (position, entry[2])
        return list(latest.values())
