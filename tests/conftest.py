"""Shared fixtures: every async test runs on asyncio and on trio.

The `anyio_backend` fixture is explicit (not anyio's default, which only runs what is installed) so the
matrix cannot shrink silently: trio is a hard dependency of the `test` extra and importing it here fails
loudly when it is missing.
"""

from __future__ import annotations

import os

import pytest
import trio  # noqa: F401  (a missing trio must fail the suite, not shrink it)


@pytest.fixture(params=[pytest.param("asyncio", id="asyncio"), pytest.param("trio", id="trio")])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run each async test once per backend."""
    return str(request.param)


def services_required() -> bool:
    """True when a missing service must fail the test instead of skipping it (CI sets this)."""
    return os.environ.get("TASKFLOW_REQUIRE_SERVICES") == "1"
