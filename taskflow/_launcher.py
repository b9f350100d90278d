"""Starting tasks: after the response, `start_after_response` starts a request's tasks, each handed over to
its policy's supervisor while the lifespan runs (`hand_over`), or run inline, here and now, when none does
(`run_inline`); a task of a queue starts when its queue gives it a slot.

The launcher holds the supervision tree while the lifespan runs (`attach` / `detach`). Admitting a task is
`Admission`'s (`_admission.py`), waiting on the store `StoreGate`'s (`_store_gate.py`): the launcher takes
both and answers for them too (`submit`, `accept`, `make_durable`, `refuse`, `is_persistent`), because
`launcher` is the package-internal contract `taskflow.web`, the schedules and the tests use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

from supervisors import Clock, Supervisor, SupervisorClosed, run_supervised

from ._models import TaskRecord, TaskStatus

if TYPE_CHECKING:
    from ._actor import Actor
    from ._admission import Admission
    from ._queues import Queues
    from ._store_gate import StoreGate
    from ._table import TaskTable
    from ._tracker import Tracker
    from .observers import ObserverDispatcher


class Launcher:
    """Starts admitted tasks (see the module docstring)."""

    def __init__(
        self,
        *,
        table: TaskTable,
        actors: dict[str, Actor],
        admission: Admission,
        gate: StoreGate,
        tracker: Tracker,
        dispatcher: ObserverDispatcher,
        clock: Clock | None = None,
        queues: Queues | None = None,
    ) -> None:
        self.table = table
        self.actors = actors  # tasks not settled yet
        self.admission = admission
        self.gate = gate
        self.tracker = tracker
        self.dispatcher = dispatcher
        self.clock = clock  # for tasks run inline (the lifespan's supervisors have it too)
        self.root: Supervisor | None = None  # the supervision tree, while the lifespan runs
        self.supervisors: dict[str, Supervisor] = {}  # one per policy, children of the root
        self.queues = queues  # None when no queue is declared: tasks then start as soon as they may
        if queues is not None:
            queues.on_start = self._start_queued_now
        # The package-internal contract (`launcher.submit`, ...) answers with the owners' own methods.
        self.submit = admission.submit
        self.accept = admission.accept
        self.make_durable = gate.make_durable
        self.refuse = gate.refuse

    # -- the lifespan's supervision tree ---------------------------------------------------------------

    def attach(self, root: Supervisor) -> None:
        """Hand tasks to `root` from now on (the lifespan started)."""
        self.root = root

    def detach(self) -> None:
        """Run tasks inline again (the lifespan is ending)."""
        self.root = None
        self.supervisors.clear()

    @property
    def is_persistent(self) -> bool:
        """True while a store is open (between the start and the end of the lifespan)."""
        return self.gate.is_persistent

    # -- starting --------------------------------------------------------------------------------------

    async def start_after_response(self, task_ids: list[str]) -> None:
        """`start` each task, in order (what a request's background item does after the response)."""
        claims_keys = self.gate.is_persistent
        for task_id in task_ids:
            actor = self.actors.get(task_id)
            if actor is None or actor.context is None:
                continue  # settled (e.g. cancelled) before it started, or already started
            record = actor.record
            if self.root is not None and not (claims_keys and record.idempotency_key is not None):
                if record.status is TaskStatus.PENDING:
                    queues = self.queues
                    if queues is not None and task_id in queues:
                        queues.ready(task_id)  # started when its queue has a free slot
                    else:
                        self.hand_over(record, actor)  # the common case: nothing to wait for
            else:
                await self.start(task_id)

    async def start(self, task_id: str) -> None:
        """Start a PENDING task: as a supervised actor when the lifespan runs, else inline, here and now."""
        actor = self.actors.get(task_id)
        record = self.table.get(task_id)
        if (
            actor is None
            or record is None
            or record.status is not TaskStatus.PENDING
            or actor.context is None  # its context went with it when it was started
        ):
            return  # cancelled before it started, unknown, or already started
        if record.idempotency_key is not None and self.gate.is_persistent:
            holder = await self.gate.claim_key(record)
            if holder is not None:
                self.gate.cancel_duplicate(record, holder)
                return
            if record.status is not TaskStatus.PENDING:
                return  # cancelled while the key was being claimed
        queues = self.queues
        if queues is not None and task_id in queues:
            await self._start_queued(queues, record, actor)
        elif self.root is None:
            await self.run_inline(record, actor)
        else:
            self.hand_over(record, actor)

    async def _start_queued(self, queues: Queues, record: TaskRecord, actor: Actor) -> None:
        """Let a task of a queue start when the queue has a slot: handed over then while the lifespan runs;
        inline (none runs), waited for here, then run here."""
        if self.root is not None:
            queues.ready(record.task_id)
            return
        wait = queues.ready(record.task_id, inline=True)
        if wait is None:
            return  # settled meanwhile
        try:
            await wait()
        except BaseException:  # cancelled while waiting (the server stops): settled, never left PENDING
            self.tracker.interrupted(record, "shutdown")
            raise
        if record.status is TaskStatus.PENDING and actor.context is not None:
            await self.run_inline(record, actor)

    def _start_queued_now(self, task_id: str) -> None:
        """A task of a queue got its slot while the lifespan runs: hand it to its policy's supervisor."""
        actor = self.actors.get(task_id)
        if actor is None or actor.context is None or actor.record.status is not TaskStatus.PENDING:
            return  # settled meanwhile: its slot is freed by its settlement
        if self.root is None:
            self.tracker.interrupted(actor.record, "shutdown")
        else:
            self.hand_over(actor.record, actor)

    def enqueue(self, record: TaskRecord, actor: Actor) -> None:
        """Start an accepted task taken over from the store (adopted, requeued) through its function's
        queue, if it has one, else at once (the lifespan runs)."""
        self.admission.place(record.task_id, actor.definition)
        queues = self.queues
        if queues is not None and record.task_id in queues:
            queues.ready(record.task_id)
        else:
            self.hand_over(record, actor)

    def hand_over(self, record: TaskRecord, actor: Actor) -> None:
        """Give a PENDING record to its policy's supervisor (the lifespan is running)."""
        root = self.root
        assert root is not None
        definition = actor.definition
        group = definition.supervisor_policy
        supervisor = self.supervisors.get(group.name)
        if supervisor is None:
            supervisor = self.supervisors[group.name] = root.child(group)
        try:
            actor.handle = supervisor.start_soon(
                actor,
                name=definition.name,
                key=record.task_id,
                context=actor.take_context(),
                policy=definition.policy if definition.group is not None else None,
            )
        except SupervisorClosed:
            self.tracker.interrupted(record, "shutdown")

    async def run_inline(self, record: TaskRecord, actor: Actor) -> None:
        """Run a task to its end in this coroutine, supervised alone (no lifespan is running)."""
        definition = actor.definition

        async def run() -> None:
            await run_supervised(
                actor,
                policy=definition.policy,
                name=definition.name,
                key=record.task_id,
                observers=[self.tracker],
                clock=self.clock,
            )

        # A task group of one, so the child runs in (a copy of) the context captured by add_task.
        async with anyio.create_task_group() as tg:
            actor.take_context().run(tg.start_soon, run)
        await self.dispatcher.drain()
