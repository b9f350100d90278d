"""The exported store contract (`taskflow.testing.StoreContract`) run against RedisStore on a real server."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from taskflow.stores import RedisStore, TaskStore
from taskflow.testing import StoreContract
from tests.redis_service import REDIS_URL, redis_prefix

pytestmark = pytest.mark.services


class TestRedisStore(StoreContract):
    """RedisStore meets the contract; each handle is its own client onto one prefix of db 13."""

    @pytest.fixture
    def store_factory(self) -> Iterator[Callable[[], TaskStore]]:
        """A new RedisStore (own connection pool) on one fresh prefix per test."""
        with redis_prefix() as prefix:
            yield lambda: RedisStore(REDIS_URL, prefix=prefix)
