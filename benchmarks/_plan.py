"""What runs: the eight workloads (seven of cost, one of overload), and for each the cases
(system x variant) side by side.

A case is one system under one variant (body, injection, backend, mode...). Systems:
`b0` (no task), `b1` (plain BackgroundTasks), `b2` (the backend's native spawn, the floor), `b2-anyio`
(the same spawn through anyio, a reference), `taskflow` (this repo),
`ft-0.5.0` and `ft-latest` (fastapi-taskflow from PyPI, each in its own venv). Ratios are taken against
the b1 case with the same variant (keys that b1 has no use for, like the injection style, are ignored).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import product

SYSTEMS = ("b0", "b1", "b2", "b2-anyio", "taskflow", "ft-0.5.0", "ft-latest")
COMPETITORS = {"ft-0.5.0": "0.5.0", "ft-latest": "latest"}


@dataclass(frozen=True)
class Case:
    """One system under one variant of a workload."""

    workload: str
    system: str
    variant: tuple[tuple[str, str], ...] = ()

    @property
    def label(self) -> str:
        return " ".join(v for _, v in self.variant) or "-"

    @property
    def script_system(self) -> str:
        """The `--system` the workload script takes (both fastapi-taskflow venvs run `fastapi_taskflow`)."""
        return "fastapi_taskflow" if self.system in COMPETITORS else self.system

    def argv(self) -> list[str]:
        args = ["--system", self.script_system]
        for key, value in self.variant:
            args += [f"--{key}", value]
        return args


@dataclass(frozen=True)
class Workload:
    """A workload script, how to read its result, and which cases it runs."""

    key: str
    title: str
    script: str
    primary: str
    unit: str
    lower_is_better: bool
    columns: tuple[str, ...] = ()
    quick_args: tuple[str, ...] = ()
    timeout: float = 600.0
    cases: tuple[Case, ...] = field(default=(), compare=False)


def _cases(workload: str, systems: dict[str, list[dict[str, str]]]) -> tuple[Case, ...]:
    out = []
    for system, variants in systems.items():
        for variant in variants:
            out.append(Case(workload, system, tuple(variant.items())))
    return tuple(out)


def _grid(**axes: tuple[str, ...]) -> list[dict[str, str]]:
    keys = list(axes)
    return [dict(zip(keys, values, strict=True)) for values in product(*axes.values())]


def _ft(variants: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    return {name: variants for name in COMPETITORS}


W1 = Workload(
    "1",
    "in-process overhead: 200 requests x 100 no-op tasks, ASGI transport, lifespan running",
    "w1_overhead.py",
    "us_per_task",
    "µs/task",
    True,
    ("elapsed_s",),
    cases=_cases(
        "1",
        {
            "b0": _grid(body=("async",), backend=("asyncio", "trio")),
            "b1": _grid(body=("async", "sync"), backend=("asyncio", "trio")),
            "b2": _grid(body=("async", "sync"), backend=("asyncio", "trio")),
            "b2-anyio": _grid(body=("async", "sync"), backend=("asyncio", "trio")),
            "taskflow": _grid(
                body=("async", "sync"), injection=("depends", "annotation"), backend=("asyncio", "trio")
            )
            # what structlog's bindings and OpenTelemetry's spans add per attempt when the app has them
            + _grid(
                body=("async", "sync"),
                injection=("depends",),
                backend=("asyncio", "trio"),
                observability=("structlog", "otel", "both"),
            ),
            **_ft(_grid(body=("async", "sync"), injection=("depends", "annotation"), backend=("asyncio",))),
        },
    ),
)
_SERVERS = ("uvicorn", "hypercorn-asyncio", "hypercorn-trio")
W2 = Workload(
    "2",
    "HTTP load: uvicorn or hypercorn (asyncio / trio worker) on 127.0.0.1, wrk 16 connections, "
    "one small async task a request",
    "w2_http.py",
    "requests_per_s",
    "req/s",
    False,
    ("p50_ms", "p99_ms"),
    quick_args=("--duration", "3", "--warmup", "1"),
    timeout=120,
    cases=_cases(
        "2",
        {
            **{s: _grid(server=_SERVERS) for s in ("b0", "b1", "b2", "taskflow")},
            **_ft(_grid(server=("uvicorn",))),  # hypercorn is not installed in their environments
        },
    ),
)
W3 = Workload(
    "3",
    "persisted tasks on SQLite (persist=True): 100 requests x 20 tasks, from 1 or 16 concurrent clients",
    "w3_persist.py",
    "tasks_per_s",
    "tasks/s",
    False,
    ("durable_before_response", "persisted_after_shutdown"),
    cases=_cases(
        "3",
        {
            **{s: _grid(clients=("1", "16")) for s in SYSTEMS if s not in ("b0", "b2-anyio", "taskflow")},
            # The targets are on FULL (the default); NORMAL is the documented opt-in, shown beside it.
            "taskflow": _grid(clients=("1", "16"), synchronous=("FULL", "NORMAL")),
        },
    ),
)
W4 = Workload(
    "4",
    "2,000 sync tasks of 2 ms on 8 threads, 20 requests of 100 (ideal 0.5 s)",
    "w4_threads.py",
    "wall_s",
    "s",
    True,
    ("x_ideal",),
    cases=_cases("4", {s: _grid(mode=("sequential", "concurrent")) for s in SYSTEMS if s != "b0"}),
)
_MEMORY_ALL = _grid(variant=("retain", "capped", "traced"))
W5 = Workload(
    "5",
    "memory: 100,000 completed tasks (traced: 20,000)",
    "w5_memory.py",
    "peak_rss_mb",
    "MB peak",
    True,
    (
        "rss_bytes_per_task",
        "traced_bytes_per_record",
        "bytes_per_task_past_cap",
        "gc_max_ms",
        "gc_gen2_count",
        "gc_total_ms",
        "elapsed_s",
    ),
    quick_args=("--tasks", "20000"),
    cases=_cases(
        "5",
        {
            "b1": _grid(variant=("retain",)),  # the baselines keep no records: one run shows their footprint
            "b2": _grid(variant=("retain",)),
            "taskflow": _MEMORY_ALL,
            **_ft(_grid(variant=("retain", "traced"))),  # fastapi-taskflow has no cap: "capped" = "retain"
        },
    ),
)
W6 = Workload(
    "6",
    "retry storm: 5,000 always-failing tasks, retries=3, delay=0",
    "w6_retry.py",
    "us_per_attempt",
    "µs/attempt",
    True,
    ("elapsed_s",),
    cases=_cases("6", {s: [{}] for s in SYSTEMS if s != "b0"}),
)
W7 = Workload(
    "7",
    "shutdown: SIGTERM with 1,000 running tasks, shutdown_grace=2 (deadline 10 s, then kill)",
    "w7_shutdown.py",
    "exit_s",
    "s to exit",
    True,
    ("lost_tasks", "running_at_sigterm"),
    timeout=120,
    cases=_cases("7", {s: [{}] for s in SYSTEMS if s not in ("b0", "b2-anyio")}),
)

W8 = Workload(
    "8",
    "overload: 200 clients send 20,000 tasks in 5 bursts (20 a request) to uvicorn on 127.0.0.1 while a "
    "probe calls a plain route every 10 ms",
    "w8_overload.py",
    "probe_p99_ms",
    "ms probe p99",
    True,
    ("probe_p50_ms", "peak_rss_mb", "peak_fds", "accepted", "rejected", "lost", "ran_twice"),
    quick_args=("--clients", "50"),
    timeout=400,
    cases=_cases(
        "8",
        {
            "b0": [{}],  # the route adds nothing: the server's own floor under the flood
            "b1": [{}],
            "taskflow": _grid(variant=("defaults", "bounded")),
            **_ft([{}]),
        },
    ),
)

WORKLOADS = {w.key: w for w in (W1, W2, W3, W4, W5, W6, W7, W8)}


def reference_for(case: Case, cases: tuple[Case, ...]) -> Case | None:
    """The b1 case to compare `case` with: same variant, ignoring keys b1 does not have.

    When b1 runs a single case (workload 5 runs it once), every case is compared with that one.
    """
    plain = [c for c in cases if c.system == "b1"]
    for candidate in plain:
        mine = dict(case.variant)
        if all(mine.get(k, v) == v for k, v in candidate.variant):
            return candidate
    return plain[0] if len(plain) == 1 else None
