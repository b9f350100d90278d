"""The configured policies and the app's actors as `GET {path}/supervision` shows them (JSON-safe)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._config_values import KEYS, describe
from .._models import isoformat

if TYPE_CHECKING:
    from .._runtime import TaskRuntime


def _json_value(key: str, value: object) -> object:
    # Numbers stay numbers; exception classes (retry_on) become their names.
    return describe(key, value) if key == "retry_on" else value


def policies_payload(manager: TaskRuntime) -> dict[str, Any]:
    """The named policies of the configuration: each key's effective value and where it came from."""
    config = manager.config
    return {
        "source": config.source,
        "policies": [
            {
                "name": name,
                "values": {key: _json_value(key, policy.value(key)) for key in KEYS},
                "sources": dict(policy.sources),
            }
            for name, policy in sorted(config.policies.items())
        ],
    }


def actors_payload(manager: TaskRuntime) -> list[dict[str, Any]]:
    """Each declared actor: state, restart mode, policy, restarts, intensity and last error."""
    return [
        {
            "name": s.name,
            "state": s.state,
            "restart": s.restart,
            "policy": s.policy,
            "restarts": s.restarts,
            "failures_in_row": s.failures_in_row,
            "max_restarts": s.max_restarts,
            "restart_window": s.restart_window,
            "last_error": s.last_error,
            "last_error_at": isoformat(s.last_error_at),
            "started_at": isoformat(s.started_at),
        }
        for s in manager.actor_statistics()
    ]
