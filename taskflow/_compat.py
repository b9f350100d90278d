"""fastapi-taskflow 0.5.0 settings that taskflow accepts but that no longer do anything, and the warning.

`TaskManager(snapshot_interval=..., merged_list_ttl=...)` keeps working so that migrating is the import line,
but a value someone chose on purpose deserves a word: the warning says it has no effect and why. It is a
`DeprecationWarning` (shown by test runners, `python -W default` and `-X dev`) rather than a `UserWarning`:
nothing goes wrong by keeping the argument, since what it tuned is now done on every change, so it is a
clean-up notice for the developer, not something to print in every production start.
"""

from __future__ import annotations

import warnings

__all__ = ["warn_ignored_settings"]

# name -> (fastapi-taskflow's default, why the setting has no effect)
_IGNORED: dict[str, tuple[float, str]] = {
    "snapshot_interval": (
        60.0,
        "there is no periodic snapshot: the group-commit writer stores every change as it happens",
    ),
    "merged_list_ttl": (
        5.0,
        "there is no cached merged list to expire: listings are served by the store's queries",
    ),
}


def warn_ignored_settings(*, stacklevel: int = 3, **values: float) -> None:
    """Warn once per setting passed with a value other than fastapi-taskflow's default.

    `stacklevel` 3 points at the code that called `TaskManager(...)` (this function is called from the
    constructor).
    """
    for name, value in values.items():
        default, why = _IGNORED[name]
        if value != default:
            warnings.warn(
                f"TaskManager({name}={value!r}) has no effect in taskflow ({why}); remove the argument",
                DeprecationWarning,
                stacklevel=stacklevel,
            )
