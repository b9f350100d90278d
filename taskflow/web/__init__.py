"""The FastAPI side of taskflow: the only package that imports FastAPI or Starlette."""

from ._admin import TaskAdmin as TaskAdmin
from ._auth import TaskAuthBackend as TaskAuthBackend
from ._background import ManagedBackgroundTasks as ManagedBackgroundTasks
from ._manager import TaskManager as TaskManager

__all__ = ["ManagedBackgroundTasks", "TaskAdmin", "TaskAuthBackend", "TaskManager", "cli_main"]


def cli_main() -> int:
    """The `taskflow` command line (its own imports are made only when it runs)."""
    from ._cli import main

    return main()
