"""The layering rules of the project, checked by reading every import (module level and inside functions).

- supervisors/ imports only the standard library and anyio (and trio, in the one module loaded only on trio).
- supervisors/ gives each piece of state one owner: no module reads or writes another module's private
  attributes, imports another module's private names, or imports another package's private modules.
- nothing outside taskflow/web/ imports fastapi or starlette.
- the core (taskflow/ but web/ and the package __init__) never imports taskflow.web, not even lazily.
- the fastapi-taskflow 0.5.0 compatibility modules (COMPAT_MODULES: re-exports at 0.5.0's import paths,
  each marked by its docstring) re-export from the public faces (`taskflow`, `taskflow.observers`), never
  from taskflow.web itself, and no project module imports them.
- a package's private modules (`P._x`) are imported only from inside P (its own modules and its
  subpackages'): taskflow.stores may import `taskflow._models`, but taskflow may not import
  `taskflow.stores._paging` (it imports `taskflow.stores`), nor `supervisors._runner`.
- the stores import, of taskflow, only the record model, the codec, the encryption and the exceptions:
  never the runtime, the live table or the lifecycle.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STDLIB = set(sys.stdlib_module_names)
SUPERVISORS_ALLOWED = {"anyio", "sniffio", "supervisors"}
COMPAT_MARKER = "fastapi-taskflow 0.5.0 compatibility: re-exports"
COMPAT_MODULES = {
    "taskflow/loggers/__init__.py",
    "taskflow/loggers/base.py",
    "taskflow/loggers/chain.py",
    "taskflow/loggers/file.py",
    "taskflow/loggers/memory.py",
    "taskflow/loggers/stdout.py",
    "taskflow/models.py",
    "taskflow/store.py",
    "taskflow/task_logging.py",
    "taskflow/wrapper.py",
}

# The children of a supervisor on trio are tasks of a trio nursery (trio's public API): that module alone
# imports trio, and is itself imported only when trio is the running backend.
TRIO_MODULE = "supervisors/_trio_tasks.py"


def _module_parts(path: Path) -> list[str]:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """Yield (line, absolute module name) for every import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    here = _module_parts(path)
    package = here if path.name == "__init__.py" else here[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                yield node.lineno, node.module or ""
                continue
            anchor = package[: len(package) - (node.level - 1)]
            base = ".".join(anchor + ([node.module] if node.module else []))
            if node.module is None:
                for alias in node.names:
                    yield node.lineno, f"{base}.{alias.name}"
            else:
                yield node.lineno, base


def _dotted(rel: str) -> str:
    parts = rel.removesuffix(".py").split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _violations() -> list[str]:
    bad = []
    files = sorted(ROOT.glob("supervisors/**/*.py")) + sorted(ROOT.glob("taskflow/**/*.py"))
    assert files, "no source files found: the layering check would pass vacuously"
    compat = {_dotted(rel) for rel in COMPAT_MODULES}
    for path in files:
        rel = path.relative_to(ROOT).as_posix()
        in_web = rel.startswith("taskflow/web/")
        face = rel == "taskflow/__init__.py"  # the one module besides taskflow/web/ that imports it
        for line, module in _imports(path):
            if module in compat:
                bad.append(f"{rel}:{line}: imports the compatibility module {module}")
            top = module.split(".")[0]
            if rel.startswith("supervisors/"):
                if top == "trio" and rel == TRIO_MODULE:
                    continue
                if top not in STDLIB and top not in SUPERVISORS_ALLOWED:
                    bad.append(f"{rel}:{line}: supervisors imports {module}")
                continue
            if top in {"fastapi", "starlette"} and not in_web:
                bad.append(f"{rel}:{line}: {module} imported outside taskflow/web/")
            if module.startswith("taskflow.web") and not in_web and not face:
                bad.append(f"{rel}:{line}: the core imports {module}")
    return bad


def test_layering_holds() -> None:
    """supervisors depends only on anyio; only taskflow/web/ touches FastAPI; the core never imports web."""
    assert _violations() == []


@pytest.mark.parametrize(
    ("rel", "source", "expected"),
    [
        ("supervisors/_x.py", "import fastapi\n", "supervisors imports fastapi"),
        ("supervisors/_x.py", "def f():\n    import taskflow\n", "supervisors imports taskflow"),
        ("supervisors/_x.py", "import trio\n", "supervisors imports trio"),  # only its trio module may
        ("taskflow/_x.py", "from starlette.requests import Request\n", "imported outside taskflow/web/"),
        ("taskflow/_x.py", "from .web import _api\n", "the core imports taskflow.web"),
        ("taskflow/stores/_x.py", "from ..web._api import x\n", "the core imports taskflow.web"),
        ("taskflow/_x.py", "from .models import TaskRecord\n", "imports the compatibility module"),
        ("taskflow/web/_x.py", "from ..store import TaskStore\n", "imports the compatibility module"),
        ("taskflow/__init__.py", "from .loggers import base\n", "imports the compatibility module"),
        ("taskflow/wrapper.py", "from .web import ManagedBackgroundTasks\n", "the core imports taskflow.web"),
        ("taskflow/loggers/_x.py", "from ..web import TaskManager\n", "the core imports taskflow.web"),
    ],
)
def test_layering_check_catches_violations(
    rel: str, source: str, expected: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The checker itself fails on each kind of violation (so a green result means something)."""
    target = tmp_path / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    for parent in [target.parent, *target.parent.parents]:
        if parent == tmp_path:
            break
        (parent / "__init__.py").touch()
    target.write_text(source, encoding="utf-8")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "taskflow").mkdir(exist_ok=True)
    (tmp_path / "taskflow" / "__init__.py").touch()
    assert any(expected in v for v in _violations())


def test_compat_modules_are_exactly_the_marked_ones() -> None:
    """COMPAT_MODULES lists every module whose docstring carries the compatibility marker, and only those."""
    marked = set()
    for path in sorted(ROOT.glob("taskflow/**/*.py")):
        docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"), str(path))) or ""
        if docstring.startswith(COMPAT_MARKER):
            marked.add(path.relative_to(ROOT).as_posix())
    assert marked == COMPAT_MODULES


STORE_MAY_IMPORT = {"taskflow._models", "taskflow._codec", "taskflow._encryption", "taskflow._exceptions"}


def _source_files() -> list[Path]:
    files = sorted(ROOT.glob("supervisors/**/*.py")) + sorted(ROOT.glob("taskflow/**/*.py"))
    assert files, "no source files found: the layering check would pass vacuously"
    return files


def _private_import_violations() -> list[str]:
    bad = []
    for path in _source_files():
        rel = path.relative_to(ROOT).as_posix()
        here = _module_parts(path)
        for line, module in _imports(path):
            parts = module.split(".")
            for i, part in enumerate(parts):
                if part.startswith("_") and not part.startswith("__"):
                    owner = parts[:i]
                    if here[: len(owner)] != owner:
                        bad.append(f"{rel}:{line}: imports {module}, private to {'.'.join(owner)}")
                    break
    return bad


def _store_violations() -> list[str]:
    bad = []
    for path in _source_files():
        rel = path.relative_to(ROOT).as_posix()
        if not rel.startswith("taskflow/stores/"):
            continue
        for line, module in _imports(path):
            if module.split(".")[0] != "taskflow" or module.startswith("taskflow.stores"):
                continue
            if not any(module == m or module.startswith(m + ".") for m in STORE_MAY_IMPORT):
                bad.append(f"{rel}:{line}: a store imports {module}")
    return bad


def test_private_modules_are_imported_only_inside_their_package() -> None:
    """No module imports the private module of a package it is not part of."""
    assert _private_import_violations() == []


def test_stores_depend_only_on_the_record_model() -> None:
    """The stores import neither the runtime, nor the live table, nor the lifecycle."""
    assert _store_violations() == []


@pytest.mark.parametrize(
    ("rel", "source", "expected"),
    [
        ("taskflow/_x.py", "from .stores._paging import Page\n", "private to taskflow.stores"),
        ("taskflow/_x.py", "from supervisors._runner import ChildEnvironment\n", "private to supervisors"),
        ("taskflow/web/_x.py", "from ..observers._base import x\n", "private to taskflow.observers"),
        ("taskflow/stores/_x.py", "from .._table import Page\n", "a store imports taskflow._table"),
        (
            "taskflow/stores/_x.py",
            "def f():\n    from .._runtime import x\n",
            "a store imports taskflow._runtime",
        ),
    ],
)
def test_private_and_store_checks_catch_violations(
    rel: str, source: str, expected: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Each of the two checks fails on its kind of violation, and allows a subpackage its parent's modules."""
    target = tmp_path / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(source, encoding="utf-8")
    allowed = tmp_path / "taskflow" / "stores" / "_ok.py"
    allowed.parent.mkdir(parents=True, exist_ok=True)
    allowed.write_text("from .._models import TaskRecord\nfrom ._paging import Page\n", encoding="utf-8")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    found = _private_import_violations() + _store_violations()
    assert any(expected in v for v in found), found
    assert not any("_ok.py" in v for v in found)


def test_nothing_reads_outside_the_project() -> None:
    """No project file refers to the developers' shared folder, which users do not have."""
    offenders = []
    for path in ROOT.rglob("*"):
        if not path.is_file() or any(p in {".git", ".venv", ".tox", "node_modules"} for p in path.parts):
            continue
        if path.suffix not in {".py", ".md", ".toml", ".ini", ".cfg", ".txt", ".js", ".html", ".css", ""}:
            continue
        text = path.read_text(encoding="utf-8", errors="ignore")
        if "../" + "shared" in text:
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


# -- supervisors: one owner for each piece of state ----------------------------------------------------------
#
# A private attribute (`_name`, not a dunder) belongs to the module whose classes define it: assigned as
# `self._name` / `cls._name`, listed in `__slots__`, or defined as a method or property. Any other module
# may call the package-internal methods and read the properties (`handle._finish(...)`, `handle._finished`:
# the owner changes its own state) but never touches the data itself, and nothing in supervisors reaches into
# private names of anyio, trio or asyncio. Not caught: a module that owns an attribute of the same name in a
# class of its own (the check goes by name, not by type).

ACCESSORS = {"getattr": False, "hasattr": False, "setattr": True, "delattr": True}  # name -> writes


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _class_members(tree: ast.Module) -> tuple[set[str], set[str]]:
    """The private data attributes and the private methods/properties the module's classes define."""
    data: set[str] = set()
    methods: set[str] = set()
    for cls in (node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)):
        for stmt in cls.body:  # class-level `_name = ...` and `__slots__ = (...)`
            if isinstance(stmt, ast.Assign | ast.AnnAssign):
                for target in stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]:
                    if isinstance(target, ast.Name) and _is_private(target.id):
                        data.add(target.id)
                    elif isinstance(target, ast.Name) and target.id == "__slots__":
                        slots = getattr(stmt.value, "elts", ())
                        data.update(str(e.value) for e in slots if isinstance(e, ast.Constant))
        for node in ast.walk(cls):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _is_private(node.name):
                methods.add(node.name)
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.ctx, ast.Store)
                and _is_own_object(node.value)
            ):
                data.add(node.attr)  # `self._name = ...` in a method
    return data, methods


def _is_own_object(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id in {"self", "cls"}
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"


def _private_accesses(tree: ast.Module) -> Iterator[tuple[int, str, str, bool]]:
    """(line, shown expression, private name, whether it writes) of every private access not on self/cls."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _is_private(node.attr) and not _is_own_object(node.value):
            yield node.lineno, ast.unparse(node), node.attr, isinstance(node.ctx, ast.Store | ast.Del)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ACCESSORS
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _is_private(node.args[1].value)
            and not _is_own_object(node.args[0])
        ):
            yield node.lineno, ast.unparse(node), node.args[1].value, ACCESSORS[node.func.id]


def _private_imports(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, message) for each import of a private name, or of another package's private module."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules = [node.module] if node.level == 0 and node.module else []
            for alias in node.names:
                if _is_private(alias.name):
                    yield node.lineno, f"imports the private name {alias.name} from {node.module or '.'}"
        else:
            continue
        for module in modules:
            parts = module.split(".")
            if parts[0] != "supervisors" and any(_is_private(part) for part in parts):
                yield node.lineno, f"imports the private module {module}"


def _ownership_violations() -> list[str]:
    files = sorted(ROOT.glob("supervisors/**/*.py"))
    assert files, "no supervisors source files found: the ownership check would pass vacuously"
    trees = {path: ast.parse(path.read_text(encoding="utf-8"), str(path)) for path in files}
    members = {path: _class_members(tree) for path, tree in trees.items()}
    package_methods = set().union(*(methods for _, methods in members.values()))
    bad = []
    for path, tree in trees.items():
        rel = path.relative_to(ROOT).as_posix()
        own_data, own_methods = members[path]
        for line, shown, name, writes in _private_accesses(tree):
            if name in own_data or name in own_methods:
                continue  # this module's own classes: the owner
            if writes:
                bad.append(f"{rel}:{line}: writes another module's private attribute: {shown}")
            elif name not in package_methods:
                bad.append(f"{rel}:{line}: reads a private attribute it does not own: {shown}")
        bad.extend(f"{rel}:{line}: {message}" for line, message in _private_imports(tree))
    return bad


def _function_level_imports() -> list[str]:
    """Imports inside functions in supervisors/ (they hide import cycles), but the trio module's lazy one."""
    bad = []
    for path in sorted(ROOT.glob("supervisors/**/*.py")):
        rel = path.relative_to(ROOT).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for func in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)):
            for node in ast.walk(func):
                if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module == "_trio_tasks":
                    continue  # trio is optional: its module is loaded only when trio is running
                if isinstance(node, ast.Import | ast.ImportFrom):
                    bad.append(f"{rel}:{node.lineno}: imports inside {func.name}()")
    return bad


def test_supervisors_state_has_one_owner() -> None:
    """No supervisors module touches another's private data, private names, or other packages' privates."""
    assert _ownership_violations() == []


def test_supervisors_imports_at_module_level() -> None:
    """No import hides inside a function in supervisors (a sign of an import cycle), but the lazy trio one."""
    assert _function_level_imports() == []


OWNER = """\
class Owner:
    __slots__ = ("_data",)

    def __init__(self) -> None:
        self._data = 0

    def _finish(self) -> None:
        self._data = 1
"""


def _check_user_module(source: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """What the supervisors checks report about `source`, a module beside one that owns a class."""
    package = tmp_path / "supervisors"
    package.mkdir()
    (package / "_owner.py").write_text(OWNER, encoding="utf-8")
    (package / "_user.py").write_text(source, encoding="utf-8")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    return [v for v in _ownership_violations() + _function_level_imports() if "_user.py" in v]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def f(o):\n    o._data = 1\n", "writes another module's private attribute: o._data"),
        ("def f(o):\n    o._data += 1\n", "writes another module's private attribute: o._data"),
        ("def f(o):\n    setattr(o, '_data', 1)\n", "writes another module's private attribute"),
        ("def f(o):\n    return o._data\n", "reads a private attribute it does not own: o._data"),
        (
            "def f(tg):\n    return getattr(tg, '_nursery', None)\n",
            "reads a private attribute it does not own",
        ),
        ("import asyncio\nasyncio._get_running_loop()\n", "reads a private attribute it does not own"),
        ("from asyncio import _get_running_loop\n", "imports the private name _get_running_loop"),
        ("from ._owner import _helper\n", "imports the private name _helper"),
        ("from anyio._core._eventloop import get_async_backend\n", "imports the private module anyio._core"),
        ("import anyio._backends._trio\n", "imports the private module anyio._backends._trio"),
        ("def f():\n    from ._owner import Owner\n", "imports inside f()"),
    ],
)
def test_ownership_check_catches_violations(
    source: str, expected: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The ownership check fails on each kind of reach into private state (so green means something)."""
    found = _check_user_module(source, monkeypatch, tmp_path)
    assert any(expected in v for v in found), found


@pytest.mark.parametrize(
    "source",
    [
        "def f(o):\n    o._finish()\n",  # a package-internal method: the owner changes its own state
        "class C:\n    def __init__(self):\n        self._x = 1\n\n    def copy(self, other):\n"
        "        other._x = self._x\n",  # the same module's class, on another instance
        "from ._owner import Owner\nimport anyio.lowlevel\nfrom ._config import CONFIG as _CONFIG\n",
        "class D:\n    def m(self):\n        return super()._m()\n",
    ],
)
def test_ownership_check_accepts_the_owner_and_its_methods(
    source: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """What the ownership rule allows is not reported (the check is not noise)."""
    assert _check_user_module(source, monkeypatch, tmp_path) == []
