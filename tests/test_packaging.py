"""What a user installs is what the code imports: every third-party import is declared, with a lower bound.

The `test` extra installs far more than a user has (trio brings sniffio, for one), so a green suite alone
cannot prove that `pip install anyio-taskflow` imports. These tests check the declarations against the
source, and import and run the package in a subprocess where only the base dependencies (and what they
depend on) can be imported. `.ci/run` proves the rest in a fresh venv.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
import threading
import tomllib
from pathlib import Path

import anyio
from packaging.markers import default_environment
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
OWN = {"taskflow", "supervisors"}
# Import name -> distribution name, where they differ (kept explicit so a new one is noticed).
DISTRIBUTION_OF: dict[str, str] = {"prometheus_client": "prometheus-client"}


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level module -> the files importing it, over taskflow/ and supervisors/ (lazy imports too)."""
    found: dict[str, set[str]] = {}
    for path in sorted(ROOT.glob("taskflow/**/*.py")) + sorted(ROOT.glob("supervisors/**/*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in OWN:
                    found.setdefault(top, set()).add(path.relative_to(ROOT).as_posix())
    return found


def _declared() -> dict[str, Requirement]:
    """Distribution name -> requirement, over the dependencies and every extra (the project's own
    self-references excluded)."""
    requirements = [Requirement(r) for r in PYPROJECT["dependencies"]]
    for extra in PYPROJECT["optional-dependencies"].values():
        requirements += [Requirement(r) for r in extra]
    return {r.name.lower(): r for r in requirements if r.name != PYPROJECT["name"]}


def _has_lower_bound(requirement: Requirement) -> bool:
    return any(spec.operator in {">=", "==", "~="} for spec in requirement.specifier)


def test_every_imported_module_is_declared_with_a_lower_bound() -> None:
    """Each third-party module the packages import (lazily or not) is a declared dependency with a bound."""
    imports = _third_party_imports()
    assert {"anyio", "fastapi"} <= set(imports), "the import scan found too little to mean anything"
    declared = _declared()
    undeclared = {
        module: sorted(files)
        for module, files in imports.items()
        if DISTRIBUTION_OF.get(module, module).lower() not in declared
    }
    unbounded = [str(r) for r in declared.values() if not _has_lower_bound(r)]
    assert undeclared == {}
    assert unbounded == []


def _base_closure() -> set[str]:
    """The distributions a bare `pip install anyio-taskflow` brings: the base dependencies, recursively."""
    environment = {**default_environment(), "extra": ""}
    todo = [Requirement(r) for r in PYPROJECT["dependencies"]]
    seen: set[str] = set()
    while todo:
        requirement = todo.pop()
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        if name in seen or (requirement.marker is not None and not requirement.marker.evaluate(environment)):
            continue
        seen.add(name)
        for child in importlib.metadata.requires(requirement.name) or []:
            todo.append(Requirement(child))
    return seen


def _modules_outside_the_closure() -> set[str]:
    allowed = _base_closure()
    blocked = set()
    for module, distributions in importlib.metadata.packages_distributions().items():
        normalized = {re.sub(r"[-_.]+", "-", d).lower() for d in distributions}
        if module not in OWN and module not in sys.stdlib_module_names and not normalized & allowed:
            blocked.add(module)
    return blocked


_BARE_RUN = """
import sys

BLOCKED = set(sys.argv[1].split(","))
BEFORE = set(sys.modules)  # what site imported at startup (a .pth hook), before the block


class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (not a base dependency)", name=name)
        return None


sys.meta_path.insert(0, Block())

import anyio
import supervisors
import taskflow
from fastapi import FastAPI
from taskflow import TaskAdmin, TaskManager

tm = TaskManager()
done = []


@tm.task()
async def job() -> None:
    done.append(1)


async def main() -> None:
    app = FastAPI()
    TaskAdmin(app, tm)  # the dashboard's change stream needs the loop's thread-safe caller
    async with app.router.lifespan_context(app):
        task_id, _ = tm.launcher.submit(job, (), {})
        await tm.launcher.start(task_id)
        with anyio.fail_after(10):
            while not done:
                await anyio.sleep(0.01)
    await tm.startup()  # fastapi-taskflow's startup()/shutdown() host the runtime on the loop itself
    await tm.shutdown()
    print("ran", sorted(m for m in BLOCKED if m in sys.modules and m not in BEFORE))


anyio.run(main)
"""


def test_the_package_imports_and_runs_with_only_its_base_dependencies() -> None:
    """`import taskflow` and an app's lifespan work when nothing outside the base dependencies imports."""
    blocked = _modules_outside_the_closure()
    assert "trio" in blocked and "sniffio" in blocked, "the test venv must have what a bare install lacks"
    result = subprocess.run(
        [sys.executable, "-c", _BARE_RUN, ",".join(sorted(blocked))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ran []"


async def test_current_backend_and_threadsafe_caller_follow_the_running_loop(anyio_backend: str) -> None:
    """The loop is told by anyio's public token: its name, and a caller that works from another thread."""
    from taskflow._eventloop import current_backend, threadsafe_caller

    assert current_backend() == anyio_backend
    call_soon = threadsafe_caller()
    called = anyio.Event()
    thread = threading.Thread(target=call_soon, args=(called.set,))
    thread.start()
    with anyio.fail_after(10):
        await called.wait()
    thread.join()


def test_the_starlette_testclient_warning_is_filtered(tmp_path: Path) -> None:
    """The pyproject filter matches what Starlette really emits when its TestClient is imported with httpx."""
    (tmp_path / "test_import.py").write_text(
        "def test_import():\n    import fastapi.testclient  # noqa: F401\n", encoding="utf-8"
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", str(ROOT / "pyproject.toml"),
         "--rootdir", str(tmp_path), str(tmp_path / "test_import.py")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout
    assert "1 passed" in result.stdout and "warning" not in result.stdout, result.stdout
