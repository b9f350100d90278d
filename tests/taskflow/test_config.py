"""Named policies in configuration: discovery, validation, environment overrides, `@task(policy=...)`."""

from __future__ import annotations

import smtplib
from pathlib import Path
from typing import Any

import anyio
import pytest

from supervisors import Policy
from supervisors.testing import FakeClock
from taskflow import ConfigurationError, TaskManager, TaskStatus
from taskflow._config import describe_config, env_name, load_config

EMAILS = """
[policies.emails]
retries = 4
delay = 0.5
backoff = 2.0
max_delay = 30
jitter = 0.1
timeout = 20
retry_on = ["smtplib.SMTPException", "ConnectionError"]
max_concurrency = 3
max_threads = 2
max_restarts = 5
restart_window = 120
"""


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_taskflow_toml_declares_every_key(tmp_path: Path) -> None:
    """Every key of a named policy reaches the Policy (and the restart intensity), with its source."""
    config = load_config(_write(tmp_path / "taskflow.toml", EMAILS), environ={})
    emails = config.policy("emails")
    assert emails.policy == Policy(
        name="emails", retries=4, delay=0.5, backoff=2.0, max_delay=30, jitter=0.1, timeout=20,
        retry_on=(smtplib.SMTPException, ConnectionError), max_concurrency=3, max_threads=2,
    )  # fmt: skip
    assert (emails.max_restarts, emails.restart_window) == (5, 120.0)
    assert emails.sources["retries"] == f"{tmp_path / 'taskflow.toml'} [policies.emails]"


def test_found_in_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a path, taskflow.toml in the working directory is read, and wins over pyproject.toml."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TASKFLOW_CONFIG", raising=False)
    _write(tmp_path / "pyproject.toml", "[tool.taskflow.policies.other]\nretries = 1\n")
    assert set(load_config(environ={}).policies) == {"other"}
    _write(tmp_path / "taskflow.toml", EMAILS)
    assert set(load_config(environ={}).policies) == {"emails"}


def test_pyproject_tool_table(tmp_path: Path) -> None:
    """pyproject.toml is read from [tool.taskflow]; its errors name that table."""
    path = _write(tmp_path / "pyproject.toml", "[tool.taskflow.policies.emails]\nretries = -1\n")
    with pytest.raises(ConfigurationError) as info:
        load_config(path, environ={})
    assert str(info.value) == (
        f"{path}: [tool.taskflow.policies.emails] retries: must be an int >= 0, got -1"
    )


def test_pyproject_without_tool_table_is_no_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pyproject.toml without [tool.taskflow] in the working directory means no configuration."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TASKFLOW_CONFIG", raising=False)
    _write(tmp_path / "pyproject.toml", "[project]\nname = 'x'\n")
    assert load_config(environ={}).source is None


def test_taskflow_config_variable_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """TASKFLOW_CONFIG names the file to read when no config is passed."""
    path = _write(tmp_path / "deploy.toml", EMAILS)
    monkeypatch.setenv("TASKFLOW_CONFIG", str(path))
    assert load_config(environ={}).source == str(path)


BAD_VALUES = [
    ("retries", "-1", "must be an int >= 0, got -1"),
    ("retries", "1.5", "must be an int >= 0, got 1.5"),
    ("delay", '"soon"', "must be a finite number >= 0.0, got 'soon'"),
    ("backoff", "0.5", "must be a finite number >= 1.0, got 0.5"),
    ("max_delay", "-2", "must be a finite number >= 0.0, got -2"),
    ("jitter", "2", "must be a finite number between 0.0 and 1.0, got 2"),
    ("timeout", "0", "must be a finite number > 0.0, got 0"),
    (
        "retry_on",
        '"nosuchmodule.Error"',
        "cannot import 'nosuchmodule.Error': No module named 'nosuchmodule'",
    ),
    (
        "retry_on",
        '"smtplib.NoSuchError"',
        "cannot import 'smtplib.NoSuchError': smtplib has no 'NoSuchError'",
    ),
    ("retry_on", '"smtplib.SMTP"', "'smtplib.SMTP' is not an exception class"),
    ("retry_on", '"NoSuchBuiltin"', "'NoSuchBuiltin' is not a builtin exception; give its module too"),
    ("retry_on", "[]", "must name at least one exception class"),
    ("retry_on", "[3]", "exception names must be non-empty strings, got 3"),
    ("max_concurrency", "0", "must be an int >= 1, got 0"),
    ("max_threads", "true", "must be an int >= 1, got True"),
    ("max_restarts", "-1", "must be an int >= 0, got -1"),
    ("restart_window", "0", "must be a finite number > 0, got 0"),
    ("color", '"red"', "unknown key (known: retries, delay, backoff"),
]


@pytest.mark.parametrize(("key", "value", "reason"), BAD_VALUES, ids=[f"{k}={v}" for k, v, _ in BAD_VALUES])
def test_bad_value_names_file_table_and_key(tmp_path: Path, key: str, value: str, reason: str) -> None:
    """A bad value stops TaskManager() with one message naming the file, the table and the key."""
    path = _write(tmp_path / "taskflow.toml", f"[policies.emails]\n{key} = {value}\n")
    with pytest.raises(ConfigurationError) as info:
        TaskManager(config=path)
    assert str(info.value).startswith(f"{path}: [policies.emails] {key}: {reason}")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("workers = 3\n", "[top level] workers: unknown key (known: policies, queues)"),
        ("policies = 3\n", "[policies]: must be a table of named policies"),
        ("[policies]\nemails = 3\n", "[policies.emails]: must be a table of policy keys"),
        ("[policies\n", "not valid TOML"),
    ],
    ids=["unknown-top-key", "policies-not-table", "policy-not-table", "bad-toml"],
)
def test_bad_structure_names_the_table(tmp_path: Path, text: str, message: str) -> None:
    """A wrong shape names the file and the table."""
    path = _write(tmp_path / "taskflow.toml", text)
    with pytest.raises(ConfigurationError) as info:
        load_config(path, environ={})
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    """A path that does not exist is named in the error."""
    with pytest.raises(ConfigurationError, match=r"nope\.toml: cannot read the configuration file"):
        load_config(tmp_path / "nope.toml", environ={})


def test_config_of_a_wrong_type_is_refused() -> None:
    """config= takes a path, a dict, None or False."""
    with pytest.raises(ConfigurationError, match="config must be a path, a dict, None or False, got 3"):
        TaskManager(config=3)  # type: ignore[arg-type]


def test_dict_config_and_its_errors() -> None:
    """A dict is the table itself; its errors say it came from TaskManager(config=...)."""
    manager = TaskManager(config={"policies": {"fast": {"retries": 1}}})
    assert manager.config.policy("fast").policy.retries == 1
    with pytest.raises(ConfigurationError) as info:
        TaskManager(config={"policies": {"fast": {"delay": -1}}})
    assert str(info.value) == (
        "TaskManager(config=...): [policies.fast] delay: must be a finite number >= 0.0, got -1"
    )


def test_environment_overrides_win_and_say_so() -> None:
    """TASKFLOW_POLICY_<NAME>_<KEY> overrides a declared key; the source names the variable."""
    environ = {
        "TASKFLOW_POLICY_EMAILS_RETRIES": "7",
        "TASKFLOW_POLICY_EMAILS_MAX_DELAY": "none",
        "TASKFLOW_POLICY_EMAILS_RETRY_ON": "TimeoutError, smtplib.SMTPException",
        "TASKFLOW_POLICY_EMAILS_RESTART_WINDOW": "9.5",
    }
    config = load_config({"policies": {"emails": {"retries": 1, "max_delay": 5}}}, environ=environ)
    emails = config.policy("emails")
    assert emails.policy.retries == 7
    assert emails.policy.max_delay is None
    assert emails.policy.retry_on == (TimeoutError, smtplib.SMTPException)
    assert emails.restart_window == 9.5
    assert emails.sources["retries"] == "environment TASKFLOW_POLICY_EMAILS_RETRIES"
    assert emails.sources["delay"] == "default"


def test_environment_name_of_a_dashed_policy() -> None:
    """Policy names with '-' or '.' use '_' in the variable name."""
    assert env_name("bulk-mail.v2", "max_delay") == "TASKFLOW_POLICY_BULK_MAIL_V2_MAX_DELAY"
    config = load_config({"policies": {"bulk-mail": {}}}, environ={"TASKFLOW_POLICY_BULK_MAIL_JITTER": "0.5"})
    assert config.policy("bulk-mail").policy.jitter == 0.5


def test_environment_bad_value_names_the_variable() -> None:
    """A bad override names the variable, the table and the key."""
    with pytest.raises(ConfigurationError) as info:
        load_config({"policies": {"emails": {}}}, environ={"TASKFLOW_POLICY_EMAILS_RETRIES": "many"})
    assert str(info.value) == (
        "environment variable TASKFLOW_POLICY_EMAILS_RETRIES: [policies.emails] retries: "
        "must be a number, got 'many'"
    )


def test_environment_variable_for_no_declared_key_is_refused() -> None:
    """A TASKFLOW_POLICY_ variable that matches no declared policy and key is an error, not ignored."""
    with pytest.raises(ConfigurationError, match="TASKFLOW_POLICY_EMAIL_RETRIES: names no key of a declared"):
        load_config({"policies": {"emails": {}}}, environ={"TASKFLOW_POLICY_EMAIL_RETRIES": "1"})


def test_task_with_unknown_policy_name_is_refused() -> None:
    """@task(policy="name") with no such policy names the known ones."""
    manager = TaskManager(config={"policies": {"emails": {}}})
    with pytest.raises(ConfigurationError, match=r"no policy named 'sms' .*known policies: emails"):
        manager.task(policy="sms")(lambda: None)


def test_inline_keywords_override_named_values() -> None:
    """Inline keywords replace the named values for that task; the supervisor keeps the named policy."""
    manager = TaskManager(config={"policies": {"emails": {"retries": 2, "delay": 1.0, "max_concurrency": 2}}})

    @manager.task(policy="emails", retries=5)
    async def send() -> None: ...

    @manager.task(policy="emails")
    async def send_plain() -> None: ...

    definition = manager.registry.get("send")
    assert (definition.policy.retries, definition.policy.delay) == (5, 1.0)
    assert definition.supervisor_policy == manager.config.policy("emails").policy
    assert manager.get_config(send).retries == 5  # type: ignore[union-attr]
    assert manager.registry.get("send_plain").policy is manager.config.policy("emails").policy


def test_inline_override_with_a_bad_value_names_the_task() -> None:
    """A bad inline value on a named policy names the task and the policy."""
    manager = TaskManager(config={"policies": {"emails": {}}})

    def send() -> None: ...

    with pytest.raises(ConfigurationError, match=r"@task\('send', policy='emails'\): .*retries must be"):
        manager.task(policy="emails", retries=-1)(send)


def test_describe_lists_values_and_sources() -> None:
    """The policies listing shows each effective value and where it came from."""
    config = load_config(
        {"policies": {"emails": {"retries": 3}}}, environ={"TASKFLOW_POLICY_EMAILS_DELAY": "2"}
    )
    text = describe_config(config)
    assert "[policies.emails]" in text
    assert "retries         = 3" in text and "# TaskManager(config=...) [policies.emails]" in text
    assert "delay           = 2" in text and "# environment TASKFLOW_POLICY_EMAILS_DELAY" in text
    assert "retry_on        = Exception" in text


async def test_named_policy_retries_a_task(tmp_path: Path) -> None:
    """A task declared with a named policy is retried per the file, with its backoff on the given clock."""
    clock = FakeClock()
    path = _write(
        tmp_path / "taskflow.toml",
        '[policies.flaky]\nretries = 3\ndelay = 2\nbackoff = 3\nretry_on = "ConnectionError"\n',
    )
    manager = TaskManager(config=path, clock=clock)
    calls: list[int] = []

    @manager.task(policy="flaky")
    async def fetch() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("down")
        return "ok"

    async with manager.running():
        task_id, _ = manager.launcher.submit(fetch, (), {})
        await manager.launcher.start(task_id)
        with anyio.fail_after(10):
            while not manager.get(task_id).status.is_terminal:
                await anyio.sleep(0.01)
    record: Any = manager.get(task_id)
    assert record.status is TaskStatus.SUCCESS
    assert clock.sleeps == [2.0, 6.0]
