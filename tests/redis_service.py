"""The Redis server the tests use: db 13 on 127.0.0.1:6379, one fresh key prefix per test, keys deleted after.

A missing server skips the test, unless `TASKFLOW_REQUIRE_SERVICES=1` (CI), where it fails it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

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
