"""fastapi-taskflow 0.5.0 names kept for migration: `fernet`, `SnapshotScheduler`, and the settings that no
longer do anything (`snapshot_interval`, `merged_list_ttl`), which say so with a DeprecationWarning."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from cryptography.fernet import Fernet, MultiFernet

from taskflow import ConfigurationError, SnapshotScheduler, SqliteBackend, TaskManager
from taskflow.stores import MemoryStore


@pytest.mark.parametrize(
    ("setting", "value"), [("snapshot_interval", 30.0), ("merged_list_ttl", 1.0), ("snapshot_interval", 0)]
)
def test_a_setting_without_effect_warns_at_the_callers_line(setting: str, value: float) -> None:
    """A non-default `snapshot_interval` or `merged_list_ttl` warns it has no effect, at the caller."""
    with pytest.warns(DeprecationWarning, match=rf"{setting}=.*has no effect") as caught:
        TaskManager(**{setting: value})  # type: ignore[arg-type]
    assert len(caught) == 1 and caught[0].filename == __file__


def test_default_settings_do_not_warn() -> None:
    """Leaving the settings out, or passing fastapi-taskflow's defaults, emits no warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        TaskManager()
        TaskManager(snapshot_interval=60.0, merged_list_ttl=5.0)


def test_an_invalid_value_is_still_refused_before_any_warning() -> None:
    """Validation comes first: a negative interval is a ConfigurationError, as before."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ConfigurationError, match="snapshot_interval"):
            TaskManager(snapshot_interval=-1)


def test_fernet_is_the_cipher_of_encrypt_args_key_and_read_only() -> None:
    """`task_manager.fernet` is a working Fernet for the key (None without one), and cannot be replaced."""
    key = Fernet.generate_key()
    manager = TaskManager(encrypt_args_key=key)
    assert isinstance(manager.fernet, Fernet)
    assert Fernet(key).decrypt(manager.fernet.encrypt(b"payload")) == b"payload"
    assert TaskManager().fernet is None
    with pytest.raises(AttributeError):
        manager.fernet = None  # type: ignore[misc]


def test_fernet_with_a_key_list_decrypts_with_every_key() -> None:
    """With rotation keys, `fernet` is a MultiFernet that encrypts with the first key."""
    new, old = Fernet.generate_key(), Fernet.generate_key()
    fernet = TaskManager(encrypt_args_key=[new, old]).fernet
    assert isinstance(fernet, MultiFernet)
    assert fernet.decrypt(Fernet(old).encrypt(b"x")) == b"x"
    assert Fernet(new).decrypt(fernet.encrypt(b"y")) == b"y"


def test_snapshot_scheduler_keeps_the_050_constructor_and_warns(tmp_path: Path) -> None:
    """0.5.0's positional signature constructs, with a DeprecationWarning naming its replacement."""
    manager = TaskManager()
    store = MemoryStore()
    with pytest.warns(DeprecationWarning, match="group-commit writer") as caught:
        scheduler = SnapshotScheduler(manager, store, 30.0, True)
    assert caught[0].filename == __file__
    assert (scheduler.task_manager, scheduler.backend, scheduler.interval, scheduler.requeue_pending) == (
        manager, store, 30.0, True,
    )  # fmt: skip
    with pytest.warns(DeprecationWarning, match="superseded"):
        from_path = SnapshotScheduler(manager, db_path=str(tmp_path / "t.db"))
    assert isinstance(from_path.backend, SqliteBackend) and from_path.backend.path == str(tmp_path / "t.db")


def test_snapshot_scheduler_without_a_backend_is_a_value_error() -> None:
    """Neither `backend` nor `db_path`: a ValueError, as in 0.5.0 (taskflow's ConfigurationError is one)."""
    manager = TaskManager()
    with (
        pytest.warns(DeprecationWarning, match="superseded"),
        pytest.raises(ValueError, match="backend or a db_path"),
    ):
        SnapshotScheduler(manager)
