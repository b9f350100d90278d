"""Named policies declared in configuration: finding the file, reading it, environment overrides, validation.

Where the configuration comes from (`load_config(config)`):

- a path (`str` or `os.PathLike`): that TOML file; a file named `pyproject.toml` is read from its
  `[tool.taskflow]` table, any other from its top level;
- a dict (`Mapping`): the table itself (`{"policies": {"emails": {...}}}`);
- `None`: the file named by the `TASKFLOW_CONFIG` environment variable, else `taskflow.toml` in the
  working directory, else `[tool.taskflow]` of `pyproject.toml` there, else nothing;
- `False`: no configuration (environment overrides still apply to nothing).

Then `TASKFLOW_POLICY_<NAME>_<KEY>=value` overrides one key of a declared policy (`<NAME>` is the policy's
name in capitals, `-` and `.` written `_`), and `TASKFLOW_QUEUE_<NAME>_<KEY>=value` one key of a queue
declared in `[queues.<name>]` (`concurrency`, `max_size`; `none` for no limit). Every value is validated:
the first problem raises one `ConfigurationError` naming where it came from, the table and the key.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from supervisors import Policy

from . import _config_values as values
from ._exceptions import ConfigurationError
from ._queues import QueueConfig

ENV_PREFIX = "TASKFLOW_POLICY_"
QUEUE_ENV_PREFIX = "TASKFLOW_QUEUE_"
CONFIG_ENV = "TASKFLOW_CONFIG"
_TOP_KEYS = ("policies", "queues")

ConfigSource = str | os.PathLike[str] | Mapping[str, Any] | bool | None
"""What `TaskManager(config=...)` accepts (see `load_config`)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class PolicyConfig:
    """One named policy as configured: the `Policy`, its restart intensity, and where each value came from."""

    name: str
    policy: Policy
    max_restarts: int
    restart_window: float
    #: key -> where its value came from: `"default"`, `"taskflow.toml [policies.emails]"`, an env var name.
    sources: Mapping[str, str] = field(default_factory=dict)

    def value(self, key: str) -> Any:
        """The effective value of one key (see `_config_values.KEYS`)."""
        if key in values.INTENSITY_KEYS:
            return getattr(self, key)
        return getattr(self.policy, key)

    def with_overrides(self, overrides: Mapping[str, Any]) -> Policy:
        """The policy with some keys given inline (`@task(policy="emails", retries=5)`); same name."""
        return dataclasses.replace(self.policy, **overrides) if overrides else self.policy


@dataclass(frozen=True, kw_only=True, slots=True)
class TaskflowConfig:
    """The validated configuration: named policies, and where the configuration was read from."""

    source: str | None = None
    policies: Mapping[str, PolicyConfig] = field(default_factory=dict)
    queues: Mapping[str, QueueConfig] = field(default_factory=dict)

    def policy(self, name: str) -> PolicyConfig:
        """The named policy; ConfigurationError naming the known ones when there is none."""
        found = self.policies.get(name)
        if found is None:
            known = ", ".join(sorted(self.policies)) or "none"
            where = self.source or "no configuration file"
            raise ConfigurationError(f"no policy named {name!r} ({where}; known policies: {known})")
        return found


def _fail(where: str, table: str, key: str | None, reason: str) -> ConfigurationError:
    location = f"[{table}] {key}" if key else f"[{table}]"
    return ConfigurationError(f"{where}: {location}: {reason}")


def _read_toml(path: Path) -> tuple[Mapping[str, Any], str, str]:
    """(the taskflow table, a name for messages, the table's prefix in messages)."""
    try:
        with path.open("rb") as file:
            data = tomllib.load(file)
    except OSError as exc:
        raise ConfigurationError(
            f"{path}: cannot read the configuration file: {exc.strerror or exc}"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path}: not valid TOML: {exc}") from None
    if path.name == "pyproject.toml":
        tool = data.get("tool", {})
        table = tool.get("taskflow", {}) if isinstance(tool, dict) else {}
        return table, str(path), "tool.taskflow."
    return data, str(path), ""


def _discover() -> Path | None:
    named = os.environ.get(CONFIG_ENV)
    if named:
        return Path(named)
    cwd = Path.cwd()
    if (cwd / "taskflow.toml").is_file():
        return cwd / "taskflow.toml"
    pyproject = cwd / "pyproject.toml"
    if pyproject.is_file():
        try:
            with pyproject.open("rb") as file:
                tool = tomllib.load(file).get("tool", {})
        except (OSError, tomllib.TOMLDecodeError):
            return None  # not ours to judge when it has no [tool.taskflow]: the build tools will say
        if isinstance(tool, dict) and "taskflow" in tool:
            return pyproject
    return None


def load_config(config: ConfigSource = None, *, environ: Mapping[str, str] | None = None) -> TaskflowConfig:
    """Find, read and validate the configuration (see the module docstring); ConfigurationError if bad."""
    environ = os.environ if environ is None else environ
    if config is False:
        table: Mapping[str, Any] = {}
        where, prefix = None, ""
    elif isinstance(config, Mapping):
        table, where, prefix = config, "TaskManager(config=...)", ""
    elif config is None or config is True:
        path = _discover()
        table, where, prefix = _read_toml(path) if path is not None else ({}, None, "")
    elif isinstance(config, str | os.PathLike):
        table, where, prefix = _read_toml(Path(config))
    else:
        raise ConfigurationError(f"config must be a path, a dict, None or False, got {config!r}")
    return _build(table, where, prefix, environ)


def _build(
    table: Mapping[str, Any], where: str | None, prefix: str, environ: Mapping[str, str]
) -> TaskflowConfig:
    label = where or "configuration"
    if not isinstance(table, Mapping):
        raise _fail(label, prefix.rstrip(".") or "taskflow", None, "must be a table")
    for key in table:
        if key not in _TOP_KEYS:
            raise _fail(
                label, prefix.rstrip(".") or "top level", key, f"unknown key (known: {', '.join(_TOP_KEYS)})"
            )
    declared = table.get("policies", {})
    if not isinstance(declared, Mapping):
        raise _fail(label, f"{prefix}policies", None, "must be a table of named policies")
    raw: dict[str, dict[str, tuple[Any, str]]] = {}
    for name, body in declared.items():
        section = f"{prefix}policies.{name}"
        if not isinstance(body, Mapping):
            raise _fail(label, section, None, "must be a table of policy keys")
        origin = f"{label} [{section}]"
        checked: dict[str, tuple[Any, str]] = {}
        for key, value in body.items():
            if key not in values.KEYS:
                raise _fail(label, section, key, f"unknown key (known: {', '.join(values.KEYS)})")
            try:
                checked[key] = (values.check(key, value), origin)
            except ValueError as exc:
                raise _fail(label, section, key, str(exc)) from None
        raw[name] = checked
    _apply_environment(raw, environ, prefix)
    policies = {name: _policy(name, keys, label, f"{prefix}policies.{name}") for name, keys in raw.items()}
    queues = _queues(table.get("queues", {}), label, prefix, environ)
    return TaskflowConfig(source=where, policies=policies, queues=queues)


def queue_env_name(queue: str, key: str) -> str:
    """The environment variable that overrides `key` of the queue named `queue`."""
    return f"{QUEUE_ENV_PREFIX}{queue.upper().replace('-', '_').replace('.', '_')}_{key.upper()}"


def _queues(declared: object, label: str, prefix: str, environ: Mapping[str, str]) -> dict[str, QueueConfig]:
    """`[queues.<name>]` tables (`concurrency`, `max_size`), then `TASKFLOW_QUEUE_<NAME>_<KEY>` overrides."""
    if not isinstance(declared, Mapping):
        raise _fail(label, f"{prefix}queues", None, "must be a table of named queues")
    raw: dict[str, dict[str, int | None]] = {}
    for name, body in declared.items():
        section = f"{prefix}queues.{name}"
        if not isinstance(body, Mapping):
            raise _fail(label, section, None, "must be a table of queue keys")
        raw[name] = {}
        for key, value in body.items():
            if key not in values.QUEUE_KEYS:
                raise _fail(label, section, key, f"unknown key (known: {', '.join(values.QUEUE_KEYS)})")
            try:
                raw[name][key] = values.check_queue_limit(value)
            except ValueError as exc:
                raise _fail(label, section, key, str(exc)) from None
    wanted = {queue_env_name(name, key): (name, key) for name in raw for key in values.QUEUE_KEYS}
    for variable in sorted(environ):
        if not variable.startswith(QUEUE_ENV_PREFIX):
            continue
        target = wanted.get(variable)
        if target is None:
            known = ", ".join(sorted(raw)) or "none"
            keys = ", ".join(values.QUEUE_KEYS)
            raise ConfigurationError(
                f"environment variable {variable}: names no key of a declared queue "
                f"(TASKFLOW_QUEUE_<NAME>_<KEY>; declared queues: {known}; keys: {keys})"
            )
        name, key = target
        try:
            raw[name][key] = values.queue_limit_from_text(environ[variable])
        except ValueError as exc:
            raise _fail(f"environment variable {variable}", f"{prefix}queues.{name}", key, str(exc)) from None
    out = {}
    for name, limits in raw.items():
        try:
            out[name] = QueueConfig(**limits)
        except ConfigurationError as exc:  # already checked key by key: kept as a safety net
            raise _fail(label, f"{prefix}queues.{name}", None, str(exc)) from None
    return out


def env_name(policy: str, key: str) -> str:
    """The environment variable that overrides `key` of the policy named `policy`."""
    return f"{ENV_PREFIX}{policy.upper().replace('-', '_').replace('.', '_')}_{key.upper()}"


def _apply_environment(
    raw: dict[str, dict[str, tuple[Any, str]]], environ: Mapping[str, str], prefix: str
) -> None:
    wanted = {env_name(name, key): (name, key) for name in raw for key in values.KEYS}
    for variable in sorted(environ):
        if not variable.startswith(ENV_PREFIX):
            continue
        target = wanted.get(variable)
        if target is None:
            known = ", ".join(sorted(raw)) or "none"
            raise ConfigurationError(
                f"environment variable {variable}: names no key of a declared policy "
                f"(TASKFLOW_POLICY_<NAME>_<KEY>; declared policies: {known}; keys: {', '.join(values.KEYS)})"
            )
        name, key = target
        try:
            raw[name][key] = (values.from_text(key, environ[variable]), f"environment {variable}")
        except ValueError as exc:
            raise _fail(
                f"environment variable {variable}", f"{prefix}policies.{name}", key, str(exc)
            ) from None


def _policy(name: str, keys: Mapping[str, tuple[Any, str]], label: str, section: str) -> PolicyConfig:
    policy_args = {k: v for k, (v, _) in keys.items() if k in values.POLICY_KEYS}
    try:
        policy = Policy(name=name, **policy_args)
    except ValueError as exc:  # each value was checked alone: what remains is the name
        raise _fail(label, section, None, str(exc)) from None
    sources = {key: keys[key][1] if key in keys else "default" for key in values.KEYS}
    intensity = {k: keys[k][0] if k in keys else values.INTENSITY_DEFAULTS[k] for k in values.INTENSITY_KEYS}
    return PolicyConfig(name=name, policy=policy, sources=sources, **intensity)


def describe_config(config: TaskflowConfig) -> str:
    """The effective policies and where each value came from (what `python -m taskflow policies` prints)."""
    lines = [f"configuration: {config.source or 'none found'}"]
    if not config.policies:
        lines.append("no named policies")
    for name, policy in sorted(config.policies.items()):
        lines.append(f"\n[policies.{name}]")
        width = max(len(k) for k in values.KEYS)
        for key in values.KEYS:
            shown = values.describe(key, policy.value(key))
            lines.append(f"  {key:<{width}} = {shown:<24} # {policy.sources[key]}")
    return "\n".join(lines)


class _Unset:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<default>"


UNSET: Any = _Unset()
"""The default of `@task(...)`'s policy keywords: "not given", so a named policy's value stays."""


def named_task_policy(
    config: TaskflowConfig, name: str, inline: Mapping[str, Any], task: str
) -> tuple[Policy, Policy | None]:
    """(the task's policy, its group) for `@task(policy=name, **inline)`: the named policy with the keys
    given inline in place (then the named one is the group whose supervisor and limits run the task)."""
    named = config.policy(name)
    given = {key: value for key, value in inline.items() if value is not UNSET}
    try:
        policy = named.with_overrides(given)
    except ValueError as exc:
        raise ConfigurationError(f"@task({task!r}, policy={name!r}): {exc}") from exc
    return policy, (named.policy if given else None)
