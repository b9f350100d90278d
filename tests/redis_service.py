"""The Redis server the tests use: db 13 on 127.0.0.1:6379, one fresh key prefix per test, keys deleted after;
and a server of a test's own (`own_redis`) for the tests that kill, restart or pause it.

A missing server skips the test, unless `TASKFLOW_REQUIRE_SERVICES=1` (CI), where it fails it.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from tests.conftest import services_required

REDIS_URL = "redis://127.0.0.1:6379/13"


def client(url: str = REDIS_URL) -> redis.Redis:
    """A plain client onto the test database."""
    return redis.Redis.from_url(url, socket_timeout=5.0, socket_connect_timeout=2.0)


def require_redis(url: str = REDIS_URL) -> None:
    """Skip (or fail, when services are required) unless the server answers."""
    try:
        with client(url) as c:
            c.ping()
    except redis.exceptions.ConnectionError as exc:
        if services_required():
            raise
        pytest.skip(f"no Redis server at {url}: {exc}")


def purge(prefix: str, url: str = REDIS_URL) -> None:
    """Delete every key under `prefix` (tests only: SCAN is never used by the store)."""
    with client(url) as c:
        keys = list(c.scan_iter(match=f"{prefix}:*", count=1000))
        for start in range(0, len(keys), 1000):
            c.delete(*keys[start : start + 1000])


@contextmanager
def redis_prefix() -> Iterator[str]:
    """A fresh key prefix on the test database, its keys deleted afterwards."""
    require_redis()
    prefix = f"taskflow-test:{uuid.uuid4().hex[:12]}"
    try:
        yield prefix
    finally:
        purge(prefix)


class OwnRedis:
    """A redis-server of the test's own on a free port (AOF with fsync always, in `directory`), so killing,
    restarting or pausing it touches no other test. `kill()` is a `kill -9`; `start()` restarts it on the
    same port and data (the AOF is replayed)."""

    def __init__(self, directory: Path) -> None:
        from tests.helpers import free_port

        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server and wait (bounded) until it answers PING."""
        command = [
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.directory),
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                with client(self.url) as c:
                    c.ping()
                return
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"redis-server on port {self.port} did not start") from None
                time.sleep(0.05)

    def kill(self) -> None:
        """`kill -9` the server (its clients see refused connections until `start()`)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@contextmanager
def own_redis(directory: Path) -> Iterator[OwnRedis]:
    """A running `OwnRedis`, killed on the way out; skips when redis-server is not installed."""
    if shutil.which("redis-server") is None:
        if services_required():
            raise RuntimeError("redis-server is not installed")
        pytest.skip("redis-server is not installed")
    server = OwnRedis(directory)
    server.start()
    try:
        yield server
    finally:
        server.kill()
