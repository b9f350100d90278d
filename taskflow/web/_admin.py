"""`TaskAdmin`: mounts the task API on an app and ties the task manager to the app's lifespan."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from .._exceptions import ConfigurationError
from ._api import build_api_router
from ._manager import TaskManager


class TaskAdmin:
    """Mount the task API at `path` and run `task_manager` for the app's lifetime.

    The parameters are fastapi-taskflow 0.5.0's. `auto_install=True` also makes plain `BackgroundTasks`
    parameters managed (in this app only).
    """

    def __init__(
        self,
        app: FastAPI,
        task_manager: TaskManager,
        path: str = "/tasks",
        display_func_args: bool = False,
        auto_install: bool = False,
        auth: Any = None,
        token_expiry: int = 86400,
        secret_key: str | None = None,
        poll_interval: float = 30.0,
        title: str = "taskflow",
    ) -> None:
        if not isinstance(path, str) or not path.startswith("/") or path.endswith("/"):
            raise ConfigurationError(f"path must start with '/' and not end with one, got {path!r}")
        if auth is not None:
            raise ConfigurationError("auth is not available yet in this version of taskflow")
        self.app = app
        self.task_manager = task_manager
        self.path = path
        self.display_func_args = display_func_args
        self.token_expiry = token_expiry
        self.secret_key = secret_key
        self.poll_interval = poll_interval
        self.title = title
        app.include_router(
            build_api_router(task_manager, display_func_args=display_func_args), prefix=path
        )
        if auto_install:
            task_manager.install(app)
        task_manager.init_app(app)
