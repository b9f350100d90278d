"""Fernet encryption of task arguments: round-trips, tamper and wrong-key detection, key errors, rotation."""

from __future__ import annotations

import datetime as dt
import json
import sys

import pytest
from cryptography.fernet import Fernet

from taskflow._encryption import ArgsCipher
from taskflow._exceptions import ConfigurationError, PayloadError

KEY = Fernet.generate_key()
TAMPERED = "cannot decrypt task arguments: the payload was tampered with or encrypted with another key"


def test_round_trip_keeps_types() -> None:
    """What goes in comes out, tuples, sets and dates included."""
    cipher = ArgsCipher(KEY)
    token = cipher.encrypt_call((1, (2, 3)), {"when": dt.date(2026, 1, 1), "ids": {4}})
    assert isinstance(token, bytes)
    assert cipher.decrypt_call(token) == ((1, (2, 3)), {"when": dt.date(2026, 1, 1), "ids": {4}})


def test_str_key_and_str_token_are_accepted() -> None:
    """Keys from settings are usually text, and backends may hand tokens back as text."""
    cipher = ArgsCipher(KEY.decode())
    token = cipher.encrypt_call(("a",), {})
    assert cipher.decrypt_call(token.decode()) == (("a",), {})


def test_plaintext_is_not_visible_and_not_a_pickle() -> None:
    """The stored token hides the arguments; the plaintext inside is the codec's JSON."""
    cipher = ArgsCipher(KEY)
    token = cipher.encrypt_call(("secret-value",), {})
    assert b"secret-value" not in token
    assert json.loads(Fernet(KEY).decrypt(token))["a"] == ["secret-value"]


def test_tampered_token_is_a_payload_error() -> None:
    """Flipping one character of the token is detected."""
    cipher = ArgsCipher(KEY)
    token = bytearray(cipher.encrypt_call((1,), {}))
    token[20] = ord("A") if token[20] != ord("A") else ord("B")
    with pytest.raises(PayloadError, match=TAMPERED):
        cipher.decrypt_call(bytes(token))
    with pytest.raises(PayloadError, match=TAMPERED):
        cipher.decrypt_call(b"not a token at all")


def test_token_from_another_key_is_a_payload_error() -> None:
    """A token encrypted with a different key cannot be read."""
    token = ArgsCipher(Fernet.generate_key()).encrypt_call((1,), {})
    with pytest.raises(PayloadError, match=TAMPERED):
        ArgsCipher(KEY).decrypt_call(token)


@pytest.mark.parametrize("key", ["short", b"x" * 44, 12345, []], ids=["short", "not-base64", "int", "empty"])
def test_invalid_key_is_a_configuration_error(key: object) -> None:
    """A bad key fails at construction, saying what a key is and how to make one."""
    with pytest.raises(ConfigurationError, match="encrypt_args_key") as info:
        ArgsCipher(key)  # type: ignore[arg-type]
    if key != []:
        assert "Fernet.generate_key()" in str(info.value)


def test_unencodable_argument_raises_the_codec_type_error() -> None:
    """Encryption does not hide the codec's error naming the argument."""
    with pytest.raises(TypeError, match="argument 'lock'"):
        ArgsCipher(KEY).encrypt_call((), {"lock": object()})


def test_repr_masks_the_key() -> None:
    """The key never shows up in a repr (reprs end up in logs)."""
    text = repr(ArgsCipher([KEY, Fernet.generate_key()]))
    assert KEY.decode() not in text
    assert text == "ArgsCipher(key='***', keys=2)"


def test_key_rotation_first_encrypts_all_decrypt() -> None:
    """With a list of keys, old tokens still decrypt and rotate() re-encrypts them with the new key."""
    old, new = Fernet.generate_key(), Fernet.generate_key()
    old_token = ArgsCipher(old).encrypt_call((1,), {"k": "v"})
    rotating = ArgsCipher([new, old])
    assert rotating.decrypt_call(old_token) == ((1,), {"k": "v"})
    assert ArgsCipher(new).decrypt_call(rotating.encrypt_call((2,), {})) == ((2,), {})
    assert ArgsCipher(new).decrypt_call(rotating.rotate(old_token)) == ((1,), {"k": "v"})
    with pytest.raises(ConfigurationError, match=r"encrypt_args_key\[1\]"):
        ArgsCipher([new, "bad"])


def test_generate_key_makes_a_usable_key() -> None:
    """generate_key() returns text that ArgsCipher accepts."""
    key = ArgsCipher.generate_key()
    assert isinstance(key, str)
    ArgsCipher(key)


def test_missing_cryptography_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without cryptography installed, the error says which extra to install."""
    monkeypatch.setitem(sys.modules, "cryptography", None)
    with pytest.raises(ImportError, match=r"pip install 'anyio-taskflow\[encryption\]'"):
        ArgsCipher(KEY)
