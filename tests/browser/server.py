"""Runs `tests.browser.app` under a real uvicorn on 127.0.0.1 (a free port) in a child process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def uvicorn_server(**env: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Start the test app; yield (base URL, process); stop it with SIGTERM (then SIGKILL after 10 s)."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "tests.browser.app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    proc = subprocess.Popen(
        [*command, "--log-level", "warning"], cwd=ROOT, env={**os.environ, **env}, stdin=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the test server did not start (exit code {proc.poll()})")
            time.sleep(0.05)
        yield base, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
