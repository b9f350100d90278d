"""The stored stack trace is the standard one (minus position markers), made without the traceback module."""

from __future__ import annotations

import re
import traceback

import pytest

from taskflow._traceback import format_traceback


def _standard(error: BaseException) -> str:
    """`traceback.format_exception`, with the lines of `^^^`/`~~~` position markers removed."""
    text = "".join(traceback.format_exception(error))
    return "".join(line for line in text.splitlines(keepends=True) if not re.fullmatch(r"\s*[\^~]+\s*", line))


def _raise(factory: object) -> BaseException:
    try:
        factory()  # type: ignore[operator]
    except BaseException as error:  # what is raised is what is compared
        return error
    raise AssertionError("nothing was raised")


def plain() -> None:
    values = {"a": 1}
    values["missing"]


def chained() -> None:
    try:
        plain()
    except KeyError as error:
        raise RuntimeError("wrapped") from error


def during_handling() -> None:
    try:
        plain()
    except KeyError:
        raise ValueError("while handling")  # noqa: B904  (an implicit context is the point)


def suppressed() -> None:
    try:
        plain()
    except KeyError:
        raise ValueError("no context") from None


def recursive(n: int = 0) -> None:
    recursive(n + 1) if n < 30 else plain()


def with_note() -> None:
    error = ValueError("noted")
    error.add_note("a note for the reader")
    raise error


def empty_message() -> None:
    raise ValueError


@pytest.mark.parametrize(
    "factory", [plain, chained, during_handling, suppressed, recursive, with_note, empty_message]
)
def test_the_trace_is_the_standard_one_without_position_markers(factory: object) -> None:
    error = _raise(factory)
    assert format_traceback(error) == _standard(error)


def test_an_exception_group_is_formatted_by_the_standard_formatter() -> None:
    def group() -> None:
        raise ExceptionGroup("several", [ValueError("one"), KeyError("two")])

    text = format_traceback(_raise(group))
    assert "ExceptionGroup: several (2 sub-exceptions)" in text and "ValueError: one" in text
