"""Systems under test: one FastAPI app shape for every system, so only the task machinery differs.

Every workload script builds its app here. The route is the same everywhere, `GET /add/{name}?n=&start=`
adds `n` tasks `funcs[name](start + i)`; what changes is who runs them:

- `b0`: the route adds nothing (the cost of the request alone);
- `b1`: FastAPI's plain `BackgroundTasks` (Starlette runs them one after another after the response);
- `b2`: the backend's native spawn, the floor (no tracking, no retries): asyncio's `loop.create_task`, a
  trio nursery's `start_soon`; sync bodies go to `loop.run_in_executor` / `trio.to_thread.run_sync`;
- `b2-anyio`: the same spawn through anyio (`TaskGroup.start_soon`, `anyio.to_thread.run_sync`), kept as a
  reference row: what anyio's portable layer costs on top of the native spawn;
- `taskflow` / `fastapi_taskflow`: a `TaskManager` with `TaskAdmin`, either injection style.

This file runs inside the competitors' virtual environments too, so it imports `taskflow` or
`fastapi_taskflow` only when asked for that system, and nothing from the `benchmarks` package.
No `from __future__ import annotations` here: FastAPI must see the route closures' real annotations.
"""

import asyncio
import concurrent.futures
import importlib
import threading
from collections import Counter as _Tally
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

import anyio
from fastapi import BackgroundTasks, Depends, FastAPI

SYSTEMS = ("b0", "b1", "b2", "b2-anyio", "taskflow", "fastapi_taskflow")
MANAGED = ("taskflow", "fastapi_taskflow")


class Progress:
    """Counts task bodies that started and finished; safe from worker threads (sync bodies)."""

    def __init__(self) -> None:
        self.started = 0
        self.done = 0
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            self.started += 1

    def finish(self) -> None:
        with self._lock:
            self.done += 1


@dataclass
class Sut:
    """A built app and what a workload needs to check it afterwards."""

    system: str
    app: FastAPI
    manager: Any = None
    accepted: int = 0
    ids: list[str] = field(default_factory=list)
    keep_ids: bool = False

    def statuses(self) -> dict[str, int]:
        """Records per status, counted by the system itself (empty for the baselines)."""
        if self.system == "taskflow":
            stats = self.manager.statistics()
            return {
                name: getattr(stats, name)
                for name in ("pending", "running", "success", "failed", "interrupted", "cancelled")
            }
        if self.system == "fastapi_taskflow":
            tally = _Tally(str(getattr(r.status, "value", r.status)) for r in self.manager.store.list())
            return dict(tally)
        return {}

    def settled(self) -> bool:
        """True when the system holds no pending or running task (its records are all final)."""
        if self.system == "taskflow":
            counts = self.manager.table.counts()
            return sum(n for status, n in counts.items() if not status.is_terminal) == 0
        if self.system == "fastapi_taskflow":
            live = ("pending", "running")
            return not any(
                str(getattr(r.status, "value", r.status)) in live for r in self.manager.store.list()
            )
        return True

    def retained_records(self) -> int | None:
        """How many task records the system keeps in memory (None for the baselines)."""
        if self.system == "taskflow":
            return len(self.manager.table)
        if self.system == "fastapi_taskflow":
            return len(self.manager.store.list())
        return None


def version_of(system: str) -> str | None:
    """The installed version of the package behind `system` (None for the baselines)."""
    from importlib.metadata import PackageNotFoundError, version

    dist = {"taskflow": "anyio-taskflow", "fastapi_taskflow": "fastapi-taskflow"}.get(system)
    if dist is None:
        return None
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _anyio_spawner(sync_threads: int | None) -> tuple[Callable[..., None], Callable[[], AsyncIterator[None]]]:
    """b2-anyio: spawn each call into an anyio task group the lifespan opened; sync bodies go to a thread."""
    state: dict[str, Any] = {}
    limiter_size = sync_threads or 40  # anyio's default thread limiter

    async def in_thread(func: Callable[..., Any], *args: Any) -> None:
        await anyio.to_thread.run_sync(func, *args, limiter=state["limiter"])

    def spawn(func: Callable[..., Any], *args: Any) -> None:
        if getattr(func, "is_sync", False):
            state["tg"].start_soon(in_thread, func, *args)
        else:
            state["tg"].start_soon(func, *args)

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        state["limiter"] = anyio.CapacityLimiter(limiter_size)
        async with anyio.create_task_group() as tg:
            state["tg"] = tg
            yield
            tg.cancel_scope.cancel()  # the floor keeps nothing: whatever still runs is dropped

    return spawn, lifespan


def _native_spawner(
    sync_threads: int | None,
) -> tuple[Callable[..., None], Callable[[], AsyncIterator[None]]]:
    """b2: the backend's own spawn, no anyio in between (asyncio tasks or a trio nursery).

    Sync bodies run on a pool of `sync_threads` threads (40, anyio's default, when unset): asyncio's
    `run_in_executor` on a `ThreadPoolExecutor`, trio's `to_thread.run_sync` under a `CapacityLimiter`."""
    state: dict[str, Any] = {}
    threads = sync_threads or 40

    def spawn(func: Callable[..., Any], *args: Any) -> None:
        state["spawn"](func, *args)

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:
            tasks: set[asyncio.Future[Any]] = set()  # strong references, as asyncio's docs ask
            pool = concurrent.futures.ThreadPoolExecutor(max_workers=threads)

            def spawn_asyncio(func: Callable[..., Any], *args: Any) -> None:
                if getattr(func, "is_sync", False):
                    future: asyncio.Future[Any] = loop.run_in_executor(pool, func, *args)
                else:
                    future = loop.create_task(func(*args))
                tasks.add(future)
                future.add_done_callback(tasks.discard)

            state["spawn"] = spawn_asyncio
            try:
                yield
            finally:
                for future in list(tasks):  # the floor keeps nothing: whatever still runs is dropped
                    future.cancel()
                pool.shutdown(wait=False, cancel_futures=True)
            return
        import trio

        limiter = trio.CapacityLimiter(threads)

        async def in_thread(func: Callable[..., Any], *args: Any) -> None:
            await trio.to_thread.run_sync(func, *args, limiter=limiter)

        async with trio.open_nursery() as nursery:

            def spawn_trio(func: Callable[..., Any], *args: Any) -> None:
                if getattr(func, "is_sync", False):
                    nursery.start_soon(in_thread, func, *args)
                else:
                    nursery.start_soon(func, *args)

            state["spawn"] = spawn_trio
            yield
            nursery.cancel_scope.cancel()

    return spawn, lifespan


def build(
    system: str,
    funcs: dict[str, Callable[..., Any]],
    *,
    injection: str = "depends",
    manager_kwargs: dict[str, Any] | None = None,
    task_kwargs: dict[str, Any] | None = None,
    keep_ids: bool = False,
) -> Sut:
    """Build the app for `system`; `funcs` are registered as tasks (with `task_kwargs`) when managed.

    Sync task functions must carry `is_sync = True` (set by the workload scripts), so that the
    bare spawn (b2) knows to run them in a thread.
    """
    if system not in SYSTEMS:
        raise SystemExit(f"unknown system {system!r}; pick one of {', '.join(SYSTEMS)}")
    if injection not in ("depends", "annotation"):
        raise SystemExit(f"unknown injection {injection!r}")
    manager_kwargs = dict(manager_kwargs or {})
    if system not in MANAGED:
        return _build_baseline(system, funcs, manager_kwargs.get("max_sync_threads"), keep_ids)

    lib = importlib.import_module(system)
    if system == "fastapi_taskflow":
        # Options only taskflow has; fastapi-taskflow runs with its own defaults instead.
        for option in ("shutdown_grace", "max_terminal_records", "checkpoint_timeout"):
            manager_kwargs.pop(option, None)
    manager = lib.TaskManager(**manager_kwargs)
    for func in funcs.values():
        manager.task(**(task_kwargs or {}))(func)
    app = FastAPI()
    sut = Sut(system, app, manager, keep_ids=keep_ids)
    lib.TaskAdmin(app, manager, auto_install=injection == "annotation")

    def add_all(tasks: Any, name: str, n: int, start: int) -> dict[str, Any]:
        func = funcs[name]
        last = None
        ids = []
        for i in range(start, start + n):
            last = tasks.add_task(func, i)
            if keep_ids:
                ids.append(last)
        sut.accepted += n
        if keep_ids:  # workload 3 checks each returned id against the database
            sut.ids.extend(ids)
            return {"n": n, "last": last, "ids": ids}
        return {"n": n, "last": last}

    if injection == "depends":

        @app.get("/add/{name}")
        async def add_depends(
            name: str, tasks: Annotated[Any, Depends(manager.get_tasks)], n: int = 1, start: int = 0
        ) -> Any:
            return add_all(tasks, name, n, start)

    else:

        @app.get("/add/{name}")
        async def add_annotation(
            name: str, background_tasks: BackgroundTasks, n: int = 1, start: int = 0
        ) -> Any:
            return add_all(background_tasks, name, n, start)

    _add_health(app)
    return sut


def _build_baseline(
    system: str, funcs: dict[str, Callable[..., Any]], sync_threads: int | None, keep_ids: bool
) -> Sut:
    spawner = _native_spawner if system == "b2" else _anyio_spawner
    spawn, lifespan = spawner(sync_threads)
    app = FastAPI(lifespan=lifespan) if system in ("b2", "b2-anyio") else FastAPI()
    sut = Sut(system, app, keep_ids=keep_ids)

    if system == "b0":

        @app.get("/add/{name}")
        async def add_nothing(name: str, n: int = 1, start: int = 0) -> Any:
            sut.accepted += 0  # b0 adds no task: the request alone
            return {"n": 0, "last": None}

    elif system == "b1":

        @app.get("/add/{name}")
        async def add_plain(name: str, background_tasks: BackgroundTasks, n: int = 1, start: int = 0) -> Any:
            func = funcs[name]
            for i in range(start, start + n):
                background_tasks.add_task(func, i)
            sut.accepted += n
            return {"n": n, "last": None}

    else:

        @app.get("/add/{name}")
        async def add_spawned(name: str, n: int = 1, start: int = 0) -> Any:
            func = funcs[name]
            for i in range(start, start + n):
                spawn(func, i)
            sut.accepted += n
            return {"n": n, "last": None}

    _add_health(app)
    return sut


def _add_health(app: FastAPI) -> None:
    @app.get("/bench/health")
    async def health() -> dict[str, bool]:
        return {"ok": True}
