"""The targets of issue 6, checked against the medians of one run (taskflow's cases only).

Each check returns rows of (target, measured, met); `met` is None when the figure is missing (a
workload not run, a system not available) so a gap never reads as a pass.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Medians = dict[tuple[str, tuple[tuple[str, str], ...]], dict[str, Any]]
Row = dict[str, Any]


def _get(medians: Medians, system: str, metric: str, **variant: str) -> float | None:
    value = medians.get((system, tuple(variant.items())), {}).get(metric)
    return value if isinstance(value, int | float) else None


def _row(target: str, measured: float | None, met: Callable[[float], bool], fmt: str = "{:.1f}") -> Row:
    return {
        "target": target,
        "measured": None if measured is None else fmt.format(measured),
        "met": None if measured is None else bool(met(measured)),
    }


def _ratio(value: float | None, floor: float | None) -> float | None:
    return value / floor if value and floor else None


def w1(m: Medians) -> list[Row]:
    """Against the native spawn (b2) of the same run: async <= 2.5x, sync <= 1.3x; trio within 1.3x."""
    rows = []
    for injection in ("depends", "annotation"):
        for body, limit in (("async", 2.5), ("sync", 1.3)):
            for backend in ("asyncio", "trio"):
                t = _get(m, "taskflow", "us_per_task", body=body, injection=injection, backend=backend)
                floor = _get(m, "b2", "us_per_task", body=body, backend=backend)
                rows.append(
                    _row(
                        f"{body} <= {limit}x native b2 ({injection}, {backend})",
                        _ratio(t, floor),
                        lambda v, limit=limit: v <= limit,
                        "{:.2f}x",
                    )
                )
            t = _get(m, "taskflow", "us_per_task", body=body, injection=injection, backend="trio")
            aio = _get(m, "taskflow", "us_per_task", body=body, injection=injection, backend="asyncio")
            rows.append(
                _row(
                    f"trio within 1.3x of asyncio ({body}, {injection})",
                    _ratio(t, aio),
                    lambda v: v <= 1.3,
                    "{:.2f}x",
                )
            )
    return rows


def w2(m: Medians) -> list[Row]:
    rps = _get(m, "taskflow", "requests_per_s", server="uvicorn")
    b1_rps = _get(m, "b1", "requests_per_s", server="uvicorn")
    p99, b1_p99 = _get(m, "taskflow", "p99_ms", server="uvicorn"), _get(m, "b1", "p99_ms", server="uvicorn")
    on_trio = _get(m, "taskflow", "requests_per_s", server="hypercorn-trio")
    on_asyncio = _get(m, "taskflow", "requests_per_s", server="hypercorn-asyncio")
    return [
        _row("requests/s >= 0.9x plain BackgroundTasks", _ratio(rps, b1_rps), lambda v: v >= 0.9, "{:.2f}x"),
        _row("p99 no worse than plain BackgroundTasks", _ratio(p99, b1_p99), lambda v: v <= 1.0, "{:.2f}x"),
        _row(
            "hypercorn: trio within 1.3x of asyncio (requests/s)",
            _ratio(on_asyncio, on_trio),
            lambda v: v <= 1.3,
            "{:.2f}x",
        ),
    ]


def w3(m: Medians) -> list[Row]:
    return [
        _row(
            ">= 10,000 persisted tasks/s (1 client)",
            _get(m, "taskflow", "tasks_per_s", clients="1", synchronous="FULL"),
            lambda v: v >= 10_000,
            "{:,.0f}",
        ),
        _row(
            ">= 20,000 persisted tasks/s (16 clients)",
            _get(m, "taskflow", "tasks_per_s", clients="16", synchronous="FULL"),
            lambda v: v >= 20_000,
            "{:,.0f}",
        ),
        _row(
            "every task durable before its response",
            _get(m, "taskflow", "durable_before_response", clients="1", synchronous="FULL"),
            lambda v: v >= 1.0,
            "{:.0%}",
        ),
    ]


def w4(m: Medians) -> list[Row]:
    return [
        _row(
            f"within 1.2x of the ideal 0.5 s ({mode})",
            _get(m, "taskflow", "x_ideal", mode=mode),
            lambda v: v <= 1.2,
            "{:.2f}x",
        )
        for mode in ("sequential", "concurrent")
    ]


def w5(m: Medians) -> list[Row]:
    per_record = _get(m, "taskflow", "traced_bytes_per_record", variant="traced")
    rss_per_record = _get(m, "taskflow", "rss_bytes_per_task", variant="retain")
    past_cap = _get(m, "taskflow", "bytes_per_task_past_cap", variant="capped")
    # "Flat" allows allocator noise: past the cap, each task may add at most 5% of what a kept record costs.
    flat_limit = 0.05 * rss_per_record if rss_per_record else 25.0
    return [
        _row("<= 0.5 KB per retained record (tracemalloc)", per_record, lambda v: v <= 512, "{:.0f} B"),
        _row("<= 0.5 KB per retained record (RSS)", rss_per_record, lambda v: v <= 512, "{:.0f} B"),
        _row(
            f"flat past the cap (<= {flat_limit:.0f} B RSS per task past 2x cap)",
            past_cap,
            lambda v: v <= flat_limit,
            "{:.1f} B",
        ),
    ]


def w6(m: Medians) -> list[Row]:
    return [_row("<= 12 µs per attempt", _get(m, "taskflow", "us_per_attempt"), lambda v: v <= 12)]


def w7(m: Medians) -> list[Row]:
    return [
        _row("exit within grace + 1 s (3 s)", _get(m, "taskflow", "exit_s"), lambda v: v <= 3.0, "{:.2f} s"),
        _row("every task accounted for", _get(m, "taskflow", "lost_tasks"), lambda v: v == 0, "{:.0f} lost"),
    ]


def w8(m: Medians) -> list[Row]:
    rows = []
    for variant in ("defaults", "bounded"):
        rows += [
            _row(
                f"probe p99 <= 50 ms during the flood ({variant})",
                _get(m, "taskflow", "probe_p99_ms", variant=variant),
                lambda v: v <= 50,
                "{:.1f} ms",
            ),
            _row(
                f"nothing accepted lost, nothing run twice ({variant})",
                _sum(
                    _get(m, "taskflow", "lost", variant=variant),
                    _get(m, "taskflow", "ran_twice", variant=variant),
                ),
                lambda v: v == 0,
                "{:.0f}",
            ),
        ]
    return rows


def _sum(*values: float | None) -> float | None:
    return None if any(v is None for v in values) else sum(v for v in values if v is not None)


CHECKS: dict[str, Callable[[Medians], list[Row]]] = {
    "1": w1,
    "2": w2,
    "3": w3,
    "4": w4,
    "5": w5,
    "6": w6,
    "7": w7,
    "8": w8,
}
