"""Calls that cannot be stored as they are: which tasks may keep them, and what their history holds instead.

A task's arguments are encoded for the store (and for encryption) when it is added. An argument the codec
cannot encode (an `UploadFile`, a database session, a client object) is fine for a task that is not
persisted: it runs with the very objects it was given, and its stored history holds an `UnstoredArgument`
(the argument's `repr()`, marked as a display form) in that argument's place. Such a call can never be run
again from the store, so it is never requeued (whatever `requeue_pending` or `requeue_on_interrupt` say),
recovery after a crash marks it INTERRUPTED saying why, and retry refuses it. A `persist=True` task exists
to be re-run from the store: one with such an argument is refused at `add_task` with a `TypeError`.

With argument encryption on, nothing of such a call is stored in clear text: every argument is stored as
an `UnstoredArgument` with only its type name (the call cannot be encrypted, since it cannot be encoded).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._codec import UnstoredArgument, UnstoredCallArgs, encode_call, storable, type_name

if TYPE_CHECKING:
    from ._encryption import ArgsCipher

__all__ = ["call_to_store", "has_unstored", "unstored_call"]

DISPLAY_LIMIT = 500
"""Characters of an argument's `repr()` kept in its display form."""

NOT_RERUNNABLE = "its arguments were not stored (only their display forms), so it cannot be re-run"


def _display(value: object) -> str:
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not break add_task
        text = f"<{type_name(value)} object (its repr() failed)>"
    return text if len(text) <= DISPLAY_LIMIT else text[: DISPLAY_LIMIT - 1] + "\u2026"


def _shown(value: Any, redact: bool) -> Any:
    """The value itself when it can be stored (and not `redact`), else its `UnstoredArgument`."""
    if redact:
        return UnstoredArgument(type_name(value), None)
    return value if storable(value) else UnstoredArgument(type_name(value), _display(value))


def unstored_call(args: tuple[Any, ...], kwargs: dict[str, Any], *, redact: bool) -> UnstoredCallArgs:
    """`args` as `UnstoredCallArgs`, carrying what is stored for a call that cannot be encoded as it is.

    Each argument is kept whole or replaced whole by its `UnstoredArgument`; with `redact`, all of them
    are, and without their repr.
    """
    call = UnstoredCallArgs(args)
    call.stored = (
        tuple(_shown(x, redact) for x in args),
        {n: _shown(v, redact) for n, v in kwargs.items()},
    )
    return call


def has_unstored(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Whether a call (read back from a store) holds display forms, so it must never be run."""
    return any(type(x) is UnstoredArgument for x in args) or any(
        type(v) is UnstoredArgument for v in kwargs.values()
    )


_SCALARS = frozenset({str, float, bool, type(None)})
_INT_LIMIT = 10**18  # far below the digits limit of int-to-text conversion (sys.get_int_max_str_digits)


def _plain(value: object) -> bool:
    """A value every encoding of the codec takes as it is: no need to try encoding it to know."""
    kind = type(value)
    return kind in _SCALARS or (kind is int and -_INT_LIMIT < value < _INT_LIMIT)  # type: ignore[operator]


def call_to_store(
    args: tuple[Any, ...], kwargs: dict[str, Any], *, persist: bool, cipher: ArgsCipher | None
) -> tuple[tuple[Any, ...], dict[str, Any], bytes | None]:
    """The `(args, kwargs, encrypted_payload)` a new record holds, its call checked against the store.

    Called by `add_task` when a store or encryption is configured. An argument that cannot be encoded
    refuses a `persist=True` task with a `TypeError` naming it and `register_type()`; any other task keeps
    its objects, as `UnstoredCallArgs` (redacted when `cipher` is set), and is not encrypted.
    """
    try:
        if cipher is not None:
            return (), {}, cipher.encrypt_call(args, kwargs)
        if all(map(_plain, args)) and all(map(_plain, kwargs.values())):
            return (
                args,
                kwargs,
                None,
            )  # the common call: nothing that could fail to encode (the store encodes it)
        encode_call(args, kwargs)  # a TypeError naming the argument now, not a failing write later
        return args, kwargs, None
    except TypeError as exc:
        if persist:
            raise TypeError(
                f"{exc} (a persist=True task keeps its arguments in the store to run them after a restart)"
            ) from None
    return unstored_call(args, kwargs, redact=cipher is not None), kwargs, None
