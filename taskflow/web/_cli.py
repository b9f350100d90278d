"""The `taskflow` command line: `taskflow demo` serves the demo with uvicorn (asyncio) or hypercorn (trio);
`taskflow policies` prints the effective named policies."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Sequence


def _parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(prog="taskflow", description="Supervised background tasks for FastAPI.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, title="commands", help="what to run")
    demo = commands.add_parser(
        "demo",
        help="run the demo app (tasks, simulated traffic, the JSON API and the dashboard)",
        description="Run the demo app: a few kinds of tasks, a light stream of simulated requests, the "
        "JSON API and the live dashboard under /tasks.",
    )
    demo.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    demo.add_argument("--port", type=int, default=8000, help="port to listen on (default: %(default)s)")
    demo.add_argument(
        "--backend",
        choices=["asyncio", "trio"],
        default="asyncio",
        help="event loop: asyncio runs under uvicorn, trio under hypercorn's trio worker "
        "(default: %(default)s)",
    )
    demo.add_argument("--no-traffic", action="store_true", help="do not simulate requests")
    demo.add_argument(
        "--db", default="taskflow-demo.db", help="SQLite file that keeps every task (default: %(default)s)"
    )
    demo.add_argument("--memory", action="store_true", help="keep tasks in memory only (no SQLite file)")
    policies = commands.add_parser(
        "policies",
        help="print the effective named policies and where each value came from",
        description="Print the named policies of taskflow.toml (or [tool.taskflow] in pyproject.toml) in "
        "the working directory, with the TASKFLOW_POLICY_<NAME>_<KEY> environment overrides applied, and "
        "where each value came from. Exits with status 2 and the error when the configuration is invalid.",
    )
    policies.add_argument("--config", default=None, help="the TOML file to read instead of searching")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `taskflow` console script and of `python -m taskflow`."""
    args = _parser().parse_args(argv)
    if args.command == "policies":
        return _print_policies(args.config)
    if args.command == "demo":
        return _run_demo(
            args.host,
            args.port,
            db=None if args.memory else args.db,
            traffic=not args.no_traffic,
            backend=args.backend,
        )
    return 2  # pragma: no cover  (argparse rejects unknown commands)


def _print_policies(path: str | None) -> int:
    from .._config import describe_config, load_config
    from .._exceptions import ConfigurationError

    try:
        config = load_config(path)
    except ConfigurationError as exc:
        print(f"taskflow: invalid configuration: {exc}", file=sys.stderr)
        return 2
    print(describe_config(config))
    return 0


def _run_demo(host: str, port: int, *, db: str | None, traffic: bool, backend: str) -> int:
    server = "hypercorn" if backend == "trio" else "uvicorn"
    needed = ("hypercorn", "trio") if backend == "trio" else ("uvicorn",)
    if any(importlib.util.find_spec(module) is None for module in needed):
        print(f"The demo on {backend} needs {server}: pip install 'anyio-taskflow[demo]'", file=sys.stderr)
        return 1
    from ._demo import build_demo_app

    app = build_demo_app(db=db, traffic=traffic)
    base = f"http://{host}:{port}"
    print(
        f"taskflow demo on {backend} ({server})\n"
        f"  tasks API:   {base}/tasks\n"
        f"  metrics:     {base}/tasks/metrics\n"
        f"  supervision: {base}/tasks/supervision\n"
        f"  dashboard:   {base}/tasks/dashboard\n"
        f"  add a task:  curl -X POST {base}/demo/order?n=42\n"
        f"  tasks kept in: {db or 'memory only'}\n"
        "Press Ctrl-C to stop: running tasks get 2 s to finish; unfinished reports resume on the next start.",
        flush=True,
    )
    if backend == "trio":
        _serve_with_hypercorn(app, host, port)
    else:
        import uvicorn

        uvicorn.run(app, host=host, port=port, log_level="warning")
    return 0


def _serve_with_hypercorn(app: object, host: str, port: int) -> None:
    import signal

    import trio
    from hypercorn.config import Config
    from hypercorn.trio import serve

    config = Config()
    config.bind = [f"{host}:{port}"]
    config.loglevel = "WARNING"
    stop = trio.Event()

    async def main() -> None:
        # Ctrl-C and SIGTERM end the server gracefully: hypercorn then runs the app's lifespan shutdown.
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:

                async def watch() -> None:
                    async for _ in signals:
                        stop.set()
                        return

                nursery.start_soon(watch)
                await serve(app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]
                nursery.cancel_scope.cancel()

    trio.run(main)
