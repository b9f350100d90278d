"""What every workload script shares: flags, the in-process client, waiting, memory and GC probes, output.

A workload script measures one system once and writes one JSON object (`--out`), so the runner can
start it in any virtual environment and take medians over fresh processes.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from _sut import SYSTEMS, Sut, version_of


def parser(description: str) -> argparse.ArgumentParser:
    """The flags every workload takes; scripts add their own."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--system", choices=SYSTEMS, required=True)
    p.add_argument("--out", type=Path, help="write the JSON result here (default: stdout)")
    p.add_argument(
        "--tiny", action="store_true", help="tiny counts: proves the workload runs, measures nothing"
    )
    return p


def emit(args: argparse.Namespace, result: dict[str, Any]) -> None:
    """Write the result, with the facts that make it comparable (versions, interpreter)."""
    result.setdefault("system", args.system)
    result["version"] = version_of(args.system)
    result["python"] = platform.python_version()
    text = json.dumps(result, indent=1, default=str)
    if args.out is None:
        print(text)
    else:
        args.out.write_text(text)


@asynccontextmanager
async def client_for(sut: Sut, app: Any = None) -> AsyncIterator[Any]:
    """An httpx client wired to the app through ASGITransport, with the app's lifespan running.

    `app` wraps `sut.app` when a workload needs to watch the ASGI messages (workload 3's probe).
    """
    import httpx
    from asgi_lifespan import LifespanManager

    async with LifespanManager(app or sut.app, startup_timeout=30, shutdown_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            yield client


async def add(client: Any, name: str, n: int, start: int) -> dict[str, Any]:
    """One request that adds `n` tasks; fails loudly on a non-200 (a broken system is not a fast one)."""
    response = await client.get(f"/add/{name}", params={"n": n, "start": start})
    if response.status_code != 200:
        raise RuntimeError(f"/add/{name} answered {response.status_code}: {response.text[:300]}")
    return response.json()  # type: ignore[no-any-return]


async def wait_until(done: Callable[[], bool], within: float, poll: float = 0.0005) -> bool:
    """Poll `done()` until it holds or `within` seconds pass; True when it held.

    Polling, not an Event: the conditions are counters bumped from worker threads and from the
    systems' own records, which have no hook to wait on (0.5 ms of poll is noise next to the runs).
    """
    with anyio.move_on_after(within):
        while not done():  # noqa: ASYNC110  (see the docstring)
            await anyio.sleep(poll)
        return True
    return done()


def rss_bytes() -> int:
    """The current resident set size, from /proc/self/status (VmRSS)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def peak_rss_bytes() -> int:
    """The peak resident set size of this process (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class GcPauses:
    """Times every garbage-collector run through `gc.callbacks` (the pause the event loop sees)."""

    def __init__(self) -> None:
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self._start = 0.0

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.pauses[info["generation"]].append(time.perf_counter() - self._start)

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)

    def summary(self) -> dict[str, Any]:
        """Count, total and max pause per generation, in milliseconds."""
        out: dict[str, Any] = {}
        every = [p for ps in self.pauses.values() for p in ps]
        for gen, ps in self.pauses.items():
            out[f"gen{gen}_count"] = len(ps)
            out[f"gen{gen}_max_ms"] = round(max(ps) * 1e3, 3) if ps else 0.0
        out["total_ms"] = round(sum(every) * 1e3, 3)
        out["max_ms"] = round(max(every) * 1e3, 3) if every else 0.0
        return out


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (bench servers never listen anywhere else)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SERVERS = ("uvicorn", "hypercorn-asyncio", "hypercorn-trio")


def serve(app: Any, port: int, server: str = "uvicorn") -> None:
    """Run `server` on 127.0.0.1 in this process until SIGTERM, with the same stack in every venv.

    uvicorn runs asyncio with httptools (h11 when it is missing); hypercorn runs its asyncio or its trio
    worker (h11), the lifespan on, so the same app is measured on both event loops."""
    if server == "uvicorn":
        _serve_uvicorn(app, port)
        return
    if server not in SERVERS:
        raise SystemExit(f"unknown server {server!r}; pick one of {', '.join(SERVERS)}")
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.loglevel = "WARNING"
    os.environ["BENCH_HTTP"] = server
    if server == "hypercorn-asyncio":
        import asyncio

        from hypercorn.asyncio import serve as serve_asyncio

        async def main_asyncio() -> None:
            stop = asyncio.Event()
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
            await serve_asyncio(app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]

        asyncio.run(main_asyncio())
        return
    import trio
    from hypercorn.trio import serve as serve_trio

    async def stop_on_sigterm() -> None:
        with trio.open_signal_receiver(signal.SIGTERM) as signals:
            async for _ in signals:
                return

    async def main_trio() -> None:
        await serve_trio(app, config, shutdown_trigger=stop_on_sigterm)  # type: ignore[arg-type]

    trio.run(main_trio)


def _serve_uvicorn(app: Any, port: int) -> None:
    import uvicorn

    try:
        import httptools  # noqa: F401

        http = "httptools"
    except ImportError:
        http = "h11"
    os.environ["BENCH_HTTP"] = http
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="asyncio",
        http=http,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )


def wait_for_port(port: int, timeout: float, proc: Any = None) -> None:
    """Block until something accepts connections on 127.0.0.1:port (or fail after `timeout`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited early with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listened on 127.0.0.1:{port} within {timeout} s")


def script_command(script: str, *extra: str) -> list[str]:
    """This interpreter running a sibling script (servers run in the same venv as their driver)."""
    return [sys.executable, str(Path(__file__).with_name(script)), *extra]
