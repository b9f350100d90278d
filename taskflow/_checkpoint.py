"""A task's checkpoint: its saved progress, encoded for the record (and the store) and decoded back.

`get_task_context().checkpoint(state)` saves a JSON-encodable value; `get_task_context().last_checkpoint`
reads the last one saved, by this run or by the run before a restart (a `requeue_on_interrupt` task keeps
it in its stored record when shutdown cancels it). In the record it is JSON text, or, when the task
manager encrypts arguments, `"fernet:"` followed by a Fernet token of that JSON: never plain text then.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ._exceptions import PayloadError

if TYPE_CHECKING:
    from ._encryption import ArgsCipher

ENCRYPTED_PREFIX = "fernet:"
# Strict JSON: NaN and infinities would not read back in other languages' parsers.
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def encode_checkpoint(state: Any, cipher: ArgsCipher | None) -> str:
    """The record's form of `state`; TypeError (naming the problem) when it is not JSON-encodable."""
    try:
        text = _encode(state)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"a checkpoint must be JSON-encodable (dicts, lists, str, numbers, bool, None): {exc}"
        ) from None
    if cipher is None:
        return text
    return ENCRYPTED_PREFIX + cipher.encrypt(text.encode("utf-8")).decode("ascii")


def decode_checkpoint(stored: str | None, cipher: ArgsCipher | None) -> Any:
    """The state a record's checkpoint holds (None when there is none); PayloadError when unreadable."""
    if stored is None:
        return None
    if stored.startswith(ENCRYPTED_PREFIX):
        if cipher is None:
            raise PayloadError("the task's checkpoint is encrypted but no encrypt_args_key is configured")
        text = cipher.decrypt(stored[len(ENCRYPTED_PREFIX) :]).decode("utf-8")
    else:
        text = stored
    try:
        return json.loads(text)
    except ValueError as exc:
        raise PayloadError(f"the task's checkpoint is not valid JSON: {exc}") from None
