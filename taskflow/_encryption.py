"""Fernet encryption of task arguments (`encrypt_args_key=`), over the type-faithful JSON of `_codec`.

The plaintext is `encode_call()`'s JSON, never a pickle, so a stolen or forged store cannot run code on
decrypt. A list of keys enables rotation: the first key encrypts, every key decrypts, and `rotate()`
re-encrypts an old token with the first key. `cryptography` is imported here, lazily, and only here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._codec import decode_call, encode_call
from ._exceptions import ConfigurationError, PayloadError

__all__ = ["ArgsCipher"]

_INSTALL = "argument encryption needs the cryptography package: pip install 'anyio-taskflow[encryption]'"
_GENERATE = (
    "a valid key is 32 url-safe base64-encoded bytes (44 characters); generate one with "
    "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
)


def _fernet_module() -> Any:
    try:
        # The parent first: a test (or a deployment) that blocks `cryptography` in sys.modules must win
        # even when `cryptography.fernet` is already imported.
        import cryptography  # noqa: F401
        from cryptography import fernet
    except ImportError as exc:
        raise ImportError(_INSTALL) from exc
    return fernet


class ArgsCipher:
    """Encrypts `(args, kwargs)` for storage and decrypts them just before the call.

    `key` is one Fernet key (str or bytes) or a non-empty sequence of keys for rotation. An invalid key
    raises `ConfigurationError`; a missing `cryptography` raises `ImportError` naming the extra.
    """

    __slots__ = ("_fernet", "_invalid_token", "_key_count", "_module")

    def __init__(self, key: str | bytes | Sequence[str | bytes]) -> None:
        self._key_count = 0
        self._module = _fernet_module()
        self._invalid_token: type[Exception] = self._module.InvalidToken
        keys: list[object] = list(key) if isinstance(key, list | tuple) else [key]
        if not keys:
            raise ConfigurationError(f"encrypt_args_key is an empty list; {_GENERATE}")
        fernets = [self._load_key(k, i if len(keys) > 1 else None) for i, k in enumerate(keys)]
        self._key_count = len(fernets)
        self._fernet: Any = fernets[0] if len(fernets) == 1 else self._module.MultiFernet(fernets)

    def _load_key(self, key: object, index: int | None) -> Any:
        which = "encrypt_args_key" if index is None else f"encrypt_args_key[{index}]"
        if not isinstance(key, str | bytes):
            raise ConfigurationError(f"{which} must be a str or bytes, not {type(key).__name__}; {_GENERATE}")
        try:
            return self._module.Fernet(key)
        except (ValueError, TypeError):  # binascii.Error is a ValueError
            raise ConfigurationError(f"{which} is not a valid Fernet key; {_GENERATE}") from None

    @property
    def fernet(self) -> Any:
        """The `cryptography` Fernet that encrypts (a MultiFernet when several keys are given)."""
        return self._fernet

    @staticmethod
    def generate_key() -> str:
        """A fresh random key, as text (what `encrypt_args_key=` accepts)."""
        return str(_fernet_module().Fernet.generate_key().decode("ascii"))

    def encrypt_call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
        """Encrypt the call's arguments; an argument that cannot be stored raises the codec's `TypeError`."""
        return bytes(self._fernet.encrypt(encode_call(args, kwargs).encode("utf-8")))

    def decrypt_call(self, token: bytes | str) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Decrypt what `encrypt_call()` produced; a tampered or foreign token raises `PayloadError`."""
        return decode_call(self._decrypt(token))

    def encrypt(self, data: bytes) -> bytes:
        """Encrypt other data of a task (its checkpoint) with the first key."""
        return bytes(self._fernet.encrypt(data))

    def decrypt(self, token: bytes | str) -> bytes:
        """Decrypt what `encrypt()` produced; a tampered or foreign token raises `PayloadError`."""
        return self._decrypt(token)

    def rotate(self, token: bytes | str) -> bytes:
        """Re-encrypt a token (made with any of the keys) with the first key, keeping its timestamp."""
        if self._key_count == 1:
            self._decrypt(token)  # still verify it
            return token.encode("ascii") if isinstance(token, str) else bytes(token)
        try:
            return bytes(self._fernet.rotate(token))
        except (self._invalid_token, TypeError, ValueError):
            raise self._tampered() from None

    def _decrypt(self, token: bytes | str) -> bytes:
        try:
            return bytes(self._fernet.decrypt(token))
        except (self._invalid_token, TypeError, ValueError):
            raise self._tampered() from None

    @staticmethod
    def _tampered() -> PayloadError:
        return PayloadError(
            "cannot decrypt task arguments: the payload was tampered with or encrypted with another key"
        )

    def __repr__(self) -> str:
        # Never the key itself: reprs end up in logs and tracebacks.
        return f"ArgsCipher(key='***', keys={self._key_count})"
