"""The layering rules of the project, checked by reading every import (module level and inside functions).

- supervisors/ imports only the standard library and anyio.
- nothing outside taskflow/web/ imports fastapi or starlette.
- the core (taskflow/ but web/ and the package __init__) never imports taskflow.web, not even lazily.
- the fastapi-taskflow 0.5.0 compatibility modules (COMPAT_MODULES: re-exports at 0.5.0's import paths,
  each marked by its docstring) are faces for users, like the package __init__: they may import taskflow.web,
  and no project module imports them.
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
        face = rel == "taskflow/__init__.py" or rel in COMPAT_MODULES
        for line, module in _imports(path):
            if module in compat:
                bad.append(f"{rel}:{line}: imports the compatibility module {module}")
            top = module.split(".")[0]
            if rel.startswith("supervisors/"):
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
        ("taskflow/_x.py", "from starlette.requests import Request\n", "imported outside taskflow/web/"),
        ("taskflow/_x.py", "from .web import _api\n", "the core imports taskflow.web"),
        ("taskflow/stores/_x.py", "from ..web._api import x\n", "the core imports taskflow.web"),
        ("taskflow/_x.py", "from .models import TaskRecord\n", "imports the compatibility module"),
        ("taskflow/web/_x.py", "from ..store import TaskStore\n", "imports the compatibility module"),
        ("taskflow/__init__.py", "from .loggers import base\n", "imports the compatibility module"),
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
        ("taskflow/_x.py", "from supervisors._runner import Site\n", "private to supervisors"),
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
