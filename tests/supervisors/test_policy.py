"""Policy validation, the backoff formula and retry classification: pure functions, no event loop."""

from __future__ import annotations

import math

import pytest

from supervisors import Policy, Restart


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", ""),
        ("retries", -1),
        ("retries", True),
        ("retries", 1.5),
        ("delay", -0.1),
        ("delay", math.nan),
        ("delay", math.inf),
        ("backoff", 0.5),
        ("backoff", math.nan),
        ("max_delay", -1.0),
        ("jitter", 1.5),
        ("jitter", -0.1),
        ("timeout", 0),
        ("timeout", math.inf),
        ("retry_on", int),
        ("retry_on", ()),
        ("retry_on", (ValueError, str)),
        ("retry_on", "ValueError"),
        ("max_concurrency", 0),
        ("max_concurrency", False),
        ("max_threads", 0),
        ("max_threads", 2.0),
    ],
)
def test_invalid_field_raises_value_error_naming_it(field: str, value: object) -> None:
    """Every invalid value raises ValueError whose message names the field."""
    with pytest.raises(ValueError, match=rf"Policy\.{field} must"):
        Policy(**{field: value})  # type: ignore[arg-type]


def test_policy_is_frozen_and_keyword_only() -> None:
    """Policies are immutable and take keyword arguments only."""
    policy = Policy(retries=2)
    with pytest.raises(AttributeError):
        policy.retries = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        Policy("x")  # type: ignore[misc]


def test_defaults_are_one_attempt_without_limits() -> None:
    """The default policy makes one attempt, retries any Exception and sets no limits."""
    policy = Policy()
    assert policy.attempts == 1
    assert (policy.max_concurrency, policy.max_threads, policy.timeout) == (None, None, None)


def test_attempts_is_retries_plus_one() -> None:
    """`attempts` counts the first attempt plus the retries."""
    assert Policy(retries=4).attempts == 5


def test_backoff_without_cap_or_jitter_is_exponential() -> None:
    """delay * backoff ** (retry - 1) for retries 1, 2, 3, 4."""
    policy = Policy(delay=0.5, backoff=2.0)
    assert [policy.backoff_delay(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]


def test_backoff_is_capped_by_max_delay() -> None:
    """max_delay caps each delay."""
    policy = Policy(delay=1.0, backoff=3.0, max_delay=5.0)
    assert [policy.backoff_delay(n) for n in (1, 2, 3, 10)] == [1.0, 3.0, 5.0, 5.0]


def test_backoff_jitter_only_shortens_the_delay() -> None:
    """base * (1 - jitter * rand): rand=0 keeps the base, rand=0.5 removes half the jitter share."""
    policy = Policy(delay=2.0, backoff=2.0, max_delay=3.0, jitter=0.5)
    assert policy.backoff_delay(1, rand=0.0) == 2.0
    assert policy.backoff_delay(1, rand=0.5) == pytest.approx(1.5)
    assert policy.backoff_delay(3, rand=0.5) == pytest.approx(2.25)  # capped at 3 first, then jittered
    for _ in range(100):
        assert 1.0 < policy.backoff_delay(1) <= 2.0


def test_backoff_survives_huge_retry_numbers() -> None:
    """An overflowing exponent falls back to the cap instead of raising."""
    assert Policy(delay=1.0, backoff=10.0, max_delay=60.0).backoff_delay(10_000) == 60.0


@pytest.mark.parametrize("retry", [0, -1, True])
def test_backoff_rejects_retry_numbers_below_one(retry: int) -> None:
    """retry is 1-based: 0, negatives and bools are rejected."""
    with pytest.raises(ValueError, match="retry must be an int >= 1"):
        Policy().backoff_delay(retry)


def test_should_retry_with_a_type_and_a_tuple() -> None:
    """retry_on given as a type or a tuple of types matches by isinstance."""
    assert Policy(retry_on=OSError).should_retry(ConnectionError())
    assert not Policy(retry_on=OSError).should_retry(ValueError())
    policy = Policy(retry_on=(KeyError, ValueError))
    assert policy.should_retry(KeyError())
    assert policy.should_retry(ValueError())
    assert not policy.should_retry(TypeError())


def test_should_retry_with_a_predicate() -> None:
    """retry_on given as a callable decides per error."""
    policy = Policy(retry_on=lambda e: "again" in str(e))
    assert policy.should_retry(RuntimeError("try again"))
    assert not policy.should_retry(RuntimeError("fatal"))


def test_restart_values() -> None:
    """Restart modes have stable string values."""
    assert [r.value for r in Restart] == ["permanent", "transient", "temporary"]
