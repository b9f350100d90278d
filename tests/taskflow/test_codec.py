"""The argument codec: exact round-trips, clear errors for what cannot be stored, and no imports on decode."""

from __future__ import annotations

import builtins
import dataclasses
import datetime as dt
import enum
import importlib
import json
import math
import pathlib
import socket
import sys
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, NamedTuple

import pydantic
import pytest

from taskflow import _codec
from taskflow._codec import _registry, decode_call, dumps, encode_call, loads, register_type
from taskflow._exceptions import PayloadError


class Color(enum.Enum):
    RED = "red"
    BLUE = (1, 2)


class Level(enum.IntEnum):
    LOW = 1


class Perm(enum.Flag):
    R = 1
    W = 2


@dataclasses.dataclass
class Point:
    x: int
    y: tuple[int, int] = (0, 0)
    label: str = dataclasses.field(default="", init=False)


@dataclasses.dataclass(frozen=True)
class Frozen:
    when: dt.date
    tags: frozenset[str]


class Pair(NamedTuple):
    a: int
    b: Any


class Order(pydantic.BaseModel):
    id: uuid.UUID
    items: list[tuple[str, int]]
    placed: dt.datetime


class Money:
    def __init__(self, cents: int, currency: str) -> None:
        self.cents, self.currency = cents, currency

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Money) and (self.cents, self.currency) == (other.cents, other.currency)

    __hash__ = None  # type: ignore[assignment]


@pytest.fixture
def registry() -> Iterator[None]:
    """Leave the codec's type registry as it was."""
    by_class, by_name = dict(_registry._by_class), dict(_registry._by_name)
    yield
    _registry._by_class.clear()
    _registry._by_class.update(by_class)
    _registry._by_name.clear()
    _registry._by_name.update(by_name)


def _labelled_point() -> Point:
    p = Point(1, (2, 3))
    p.label = "kept"
    return p


CEST = dt.timezone(dt.timedelta(hours=2))
VALUES: list[Any] = [
    None, True, False, 0, -(2**70), 1.5, -0.0, math.inf, -math.inf, "", "héllo\n\x00",
    [], [1, [2, [3]]], (), (1, "a", (2,)), {}, {"a": {"b": [1]}}, {1: "int key", (1, 2): "tuple key"},
    {"__tf__": "tuple", "v": [1]}, {None: 1, True: 2}, {1, 2, 3}, frozenset({"a", (1, 2)}), set(),
    b"\x00\xffbytes", bytearray(b"ba"), dt.datetime(2026, 1, 2, 3, 4, 5, 678901),
    dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC), dt.datetime(2026, 1, 2, 3, 4, tzinfo=CEST),
    dt.datetime(2026, 10, 25, 2, 30, fold=1), dt.date(2026, 2, 28), dt.time(23, 59, 59, 1),
    dt.time(8, 0, tzinfo=CEST), dt.timedelta(days=-1, seconds=5, microseconds=7),
    uuid.UUID("12345678-1234-5678-1234-567812345678"), Decimal("3.14159265358979323846"),
    Decimal("-Infinity"), pathlib.Path("/tmp/x.txt"), pathlib.PurePosixPath("a/b"),
    pathlib.PureWindowsPath("C:\\x"), Color.RED, Color.BLUE, Level.LOW, Perm.R | Perm.W, _labelled_point(),
    Frozen(dt.date(2026, 1, 1), frozenset({"x"})), Pair(1, {"n": (1,)}),
    Order(id=uuid.UUID(int=7), items=[("a", 1)], placed=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)),
    [Color.RED, {"deep": [(dt.date(2026, 1, 1), {b"k"})]}],
]  # fmt: skip


def _same(a: Any, b: Any) -> bool:
    """Equal, of exactly the same type all the way down (and nan equal to nan)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, list | tuple) and not hasattr(a, "_fields"):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, dt.datetime | dt.time):
        return a == b and a.utcoffset() == b.utcoffset() and a.fold == b.fold
    if dataclasses.is_dataclass(a):
        return all(_same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    return bool(a == b)


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_value_round_trips_with_its_type(value: Any) -> None:
    """Every supported value comes back equal and of the same type, nested types included."""
    assert _same(loads(dumps(value)), value)
    args, kwargs = decode_call(encode_call((value,), {"kw": value}))
    assert _same(args[0], value)
    assert _same(kwargs["kw"], value)


def test_nan_round_trips_and_output_is_strict_json() -> None:
    """nan survives, and the text is standard JSON (no NaN literal other readers reject)."""
    text = dumps([math.nan, math.inf])
    assert "NaN" not in text
    assert "Infinity" not in text
    assert math.isnan(loads(text)[0])
    assert loads(dumps(Decimal("NaN"))).is_nan()


def test_call_round_trips_args_as_tuple_and_kwargs_as_dict() -> None:
    """`encode_call`/`decode_call` give back a tuple and a dict, even a kwarg named like the tag."""
    args, kwargs = decode_call(encode_call((1, (2,)), {"__tf__": "x", "b": {3}}))
    assert args == (1, (2,))
    assert type(args) is tuple
    assert kwargs == {"__tf__": "x", "b": {3}}


def test_plain_arguments_are_stored_as_plain_json() -> None:
    """The common all-primitive call is stored without tags (readable, and cheap to encode)."""
    body = json.loads(encode_call((1, "a", [1.5, None]), {"n": {"k": True}}))
    assert body["a"] == [1, "a", [1.5, None]]
    assert body["k"] == {"n": {"k": True}}


def test_unencodable_positional_argument_names_index_and_type() -> None:
    """An object without a JSON form raises TypeError naming its position, its type and the way out."""
    with socket.socket() as conn, pytest.raises(TypeError) as info:
        encode_call(("ok", conn), {})
    message = str(info.value)
    assert "positional argument 1 (a socket.socket)" in message
    assert "taskflow.register_type()" in message


def test_unencodable_keyword_argument_names_it_even_when_nested() -> None:
    """A keyword argument is named by its keyword, and a nested offender by its type."""
    with pytest.raises(TypeError, match=r"argument 'conn' \(a object\) cannot be stored as JSON"):
        encode_call((), {"conn": object()})
    with pytest.raises(TypeError, match=r"argument 'cfg' cannot be stored as JSON: it contains a function"):
        encode_call((), {"cfg": {"hook": [lambda: None]}})


def test_never_falls_back_to_repr() -> None:
    """dumps() refuses, rather than storing repr() text that would come back as a string."""
    with pytest.raises(TypeError, match="cannot be stored as JSON"):
        dumps(object())


def test_recursive_structure_is_a_type_error() -> None:
    """A list containing itself is refused with TypeError naming the argument, not a RecursionError."""
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(TypeError, match=r"positional argument 0 .*contains itself"):
        encode_call((loop,), {})


def test_local_class_is_refused_at_encode_time() -> None:
    """A dataclass defined inside a function cannot be found again, so encoding fails early."""

    @dataclasses.dataclass
    class Local:
        x: int

    with pytest.raises(TypeError, match="define it at module level"):
        encode_call((Local(1),), {})


def test_registered_type_round_trips(registry: None) -> None:
    """register_type() teaches the codec a new type, stored under the given name."""
    register_type(
        Money, name="test.Money", encode=lambda m: [m.cents, m.currency], decode=lambda v: Money(*v)
    )
    text = dumps({"price": Money(150, "EUR")})
    assert '"test.Money"' in text
    assert loads(text) == {"price": Money(150, "EUR")}


def test_register_type_rejects_bad_input(registry: None) -> None:
    """Native types, empty names and names already taken are refused."""
    with pytest.raises(ValueError, match="stored natively"):
        register_type(tuple, name="t", encode=list, decode=tuple)
    with pytest.raises(ValueError, match="non-empty"):
        register_type(Money, name="", encode=vars, decode=dict)
    register_type(Money, name="m", encode=vars, decode=dict)
    with pytest.raises(ValueError, match="already registered"):
        register_type(socket.socket, name="m", encode=vars, decode=dict)


def test_unregistered_name_is_a_payload_error() -> None:
    """A payload naming a registered type this process does not know fails clearly."""
    with pytest.raises(PayloadError, match="not registered"):
        loads('{"__tf__": "ext", "n": "nowhere.Type", "v": 1}')


def test_class_of_unimported_module_is_a_payload_error_and_is_not_imported() -> None:
    """Decoding never imports the module a payload names (that would run its code)."""
    name = "json.tool"  # a real, importable module, normally not imported
    sys.modules.pop(name, None)
    payload = json.dumps({"__tf__": "dataclass", "c": f"{name}:main", "v": {}})
    with pytest.raises(PayloadError, match="not imported"):
        loads(payload)
    assert name not in sys.modules


@pytest.mark.parametrize(
    "payload",
    [
        {"__tf__": "enum", "c": "os:system", "v": "ls"},  # not a class
        {"__tf__": "dataclass", "c": f"{__name__}:Color", "v": {}},  # a class, but not a dataclass
        {"__tf__": "model", "c": f"{__name__}:Missing", "v": {}},
    ],
    ids=["function", "wrong-kind", "missing"],
)
def test_named_object_must_be_a_class_of_the_right_kind(payload: dict[str, Any]) -> None:
    """A payload cannot make the decoder call arbitrary functions or classes of another kind."""
    with pytest.raises(PayloadError):
        loads(json.dumps(payload))


def test_decoding_calls_no_import_machinery(monkeypatch: pytest.MonkeyPatch) -> None:
    """A payload with every tagged type decodes without a single call to `__import__`/`import_module`."""
    text = encode_call(tuple(VALUES), {})
    seen: list[object] = []
    real_import, real_import_module = builtins.__import__, importlib.import_module

    def spy_import(name: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(name)
        return real_import(name, *args, **kwargs)

    def spy_import_module(name: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(name)
        return real_import_module(name, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(builtins, "__import__", spy_import)
        patch.setattr(importlib, "import_module", spy_import_module)
        seen.clear()  # monkeypatch itself imports while patching
        args, _ = decode_call(text)
    assert seen == []
    assert all(_same(a, v) for a, v in zip(args, VALUES, strict=True))


@pytest.mark.parametrize(
    "text",
    ["not json", "[1, 2]", '{"tf": 99, "a": [], "k": {}}', '{"tf": 1, "a": {}, "k": {}}',
     '{"__tf__": "martian", "v": 1}', '{"__tf__": "tuple"}', '{"__tf__": "bytes", "v": "!!"}'],
)  # fmt: skip
def test_corrupt_payload_is_a_payload_error(text: str) -> None:
    """Malformed JSON, a foreign envelope, unknown tags and broken tagged values raise PayloadError."""
    with pytest.raises(PayloadError):
        decode_call(text)


def test_unstored_argument_is_a_tagged_display_form_that_reads_back_marked() -> None:
    """An UnstoredArgument encodes under its own tag and decodes to an UnstoredArgument, never a string."""
    shown = _codec.UnstoredArgument("app.Session", "Session(id=1)")
    redacted = _codec.UnstoredArgument("app.Session", None)
    text = encode_call((shown,), {"s": redacted})
    assert json.loads(text)["a"] == [{"__tf__": "unstored", "t": "app.Session", "v": "Session(id=1)"}]
    assert decode_call(text) == ((shown,), {"s": redacted})
    assert repr(shown) == "<not stored: Session(id=1)>"
    assert repr(redacted) == "<not stored: a app.Session, redacted (argument encryption is on)>"
    with pytest.raises(ValueError, match="stored natively"):
        register_type(_codec.UnstoredArgument, name="x", encode=str, decode=str)


def test_unstored_call_args_encode_as_the_display_form_they_carry() -> None:
    """encode_call writes what UnstoredCallArgs carry in `stored`, not the objects the task runs with."""
    conn = object()
    call = _codec.UnstoredCallArgs((conn, 2))
    call.stored = ((_codec.UnstoredArgument("object", "<object>"), 2), {"k": 1})
    assert decode_call(encode_call(call, {"k": conn})) == call.stored
    assert not _codec.storable(conn) and _codec.storable([1, (2, 3)])
