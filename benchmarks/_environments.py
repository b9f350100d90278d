"""The interpreters the systems run in: this one for taskflow and the baselines, one venv per competitor.

Each fastapi-taskflow release gets its own virtual environment under `benchmarks/.venvs/` (git-ignored),
made with `python -m venv` and pip. The shared stack (fastapi, starlette, anyio, httpx, uvicorn, ...) is
pinned to the versions of this environment when pip can satisfy that, so the comparison is between
task systems, not framework versions; what was really installed is recorded with every result.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import venv
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

VENVS = Path(__file__).resolve().parent / ".venvs"
SHARED_STACK = ("fastapi", "starlette", "anyio", "httpx", "asgi-lifespan", "uvicorn", "httptools", "pydantic")
MARKER = "bench-env.json"


@dataclass(frozen=True)
class Environment:
    """Where one system runs: an interpreter and what it reports about itself."""

    python: str
    info: dict[str, object]


def _local_pins() -> list[str]:
    """The shared stack as installed here; what is missing here is left out there too (httptools, say,
    changes uvicorn's HTTP parser, so one side having it would skew the HTTP workload)."""
    pins = []
    for dist in SHARED_STACK:
        with contextlib.suppress(PackageNotFoundError):
            pins.append(f"{dist}=={version(dist)}")
    return pins


def _pip(python: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _installed(python: Path) -> dict[str, str]:
    code = (
        "import json, importlib.metadata as m\n"
        f"names = {['fastapi-taskflow', *SHARED_STACK]!r}\n"
        "out = {}\n"
        "for n in names:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))\n"
    )
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def competitor(spec: str, *, refresh: bool = False, log: object = print) -> Environment:
    """The venv for `fastapi-taskflow` at `spec` ("0.5.0" or "latest"), made on first use.

    "latest" is whatever PyPI serves when the venv is made; `refresh=True` remakes it (and upgrades).
    """
    home = VENVS / f"fastapi-taskflow-{spec}"
    python = home / "bin" / "python"
    marker = home / MARKER
    if marker.exists() and python.exists() and not refresh:
        return Environment(str(python), json.loads(marker.read_text()))
    log(f"making {home.relative_to(VENVS.parent.parent)} (python -m venv + pip; once)")  # type: ignore[operator]
    venv.EnvBuilder(with_pip=True, clear=True).create(home)
    requirement = "fastapi-taskflow" if spec == "latest" else f"fastapi-taskflow=={spec}"
    pinned = _pip(python, "--upgrade", requirement, *_local_pins())
    pinning = "matched to this environment"
    if pinned.returncode != 0:  # the release cannot live with our versions: let pip choose
        pinning = "chosen by pip (pins could not be satisfied)"
        loose = _pip(python, "--upgrade", requirement, *SHARED_STACK)
        if loose.returncode != 0:
            raise RuntimeError(f"could not install {requirement}:\n{loose.stderr[-2000:]}")
    info: dict[str, object] = {"spec": spec, "pinning": pinning, "installed": _installed(python)}
    marker.write_text(json.dumps(info, indent=1))
    return Environment(str(python), info)


def this_environment() -> Environment:
    """This interpreter: taskflow (editable) and the baselines run here."""
    installed = {}
    for dist in ("anyio-taskflow", *SHARED_STACK, "trio"):
        with contextlib.suppress(PackageNotFoundError):
            installed[dist] = version(dist)
    return Environment(sys.executable, {"spec": "local", "installed": installed})
