"""Selector names by rotation period, tested at period boundaries."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from mailinfra_iac.dkim import (
    KeyAlgorithm,
    RotationPeriod,
    SelectorError,
    parse_period,
    parse_selector,
    period_bounds,
    selector_for,
)

Q = RotationPeriod.QUARTERLY
M = RotationPeriod.MONTHLY
H = RotationPeriod.HALF_YEARLY
Y = RotationPeriod.YEARLY


@pytest.mark.parametrize(
    ('day', 'expected'),
    [
        (date(2026, 1, 1), 's2026q1'),
        (date(2026, 3, 31), 's2026q1'),
        (date(2026, 4, 1), 's2026q2'),
        (date(2026, 6, 30), 's2026q2'),
        (date(2026, 7, 1), 's2026q3'),
        (date(2026, 9, 30), 's2026q3'),
        (date(2026, 10, 1), 's2026q4'),
        (date(2026, 12, 31), 's2026q4'),
        (date(2027, 1, 1), 's2027q1'),
    ],
)
def test_quarterly_boundaries(day: date, expected: str) -> None:
    assert selector_for(day, Q) == expected


@pytest.mark.parametrize(
    ('day', 'expected'),
    [
        (date(2026, 1, 1), 's202601'),
        (date(2026, 1, 31), 's202601'),
        (date(2026, 2, 1), 's202602'),
        (date(2028, 2, 29), 's202802'),
        (date(2028, 3, 1), 's202803'),
        (date(2026, 11, 30), 's202611'),
        (date(2026, 12, 1), 's202612'),
        (date(2026, 12, 31), 's202612'),
    ],
)
def test_monthly_boundaries(day: date, expected: str) -> None:
    assert selector_for(day, M) == expected


@pytest.mark.parametrize(
    ('day', 'expected'),
    [
        (date(2026, 1, 1), 's2026h1'),
        (date(2026, 6, 30), 's2026h1'),
        (date(2026, 7, 1), 's2026h2'),
        (date(2026, 12, 31), 's2026h2'),
        (date(2027, 1, 1), 's2027h1'),
    ],
)
def test_half_yearly_boundaries(day: date, expected: str) -> None:
    assert selector_for(day, H) == expected


@pytest.mark.parametrize(
    ('day', 'expected'),
    [(date(2026, 1, 1), 's2026'), (date(2026, 12, 31), 's2026'), (date(2027, 1, 1), 's2027')],
)
def test_yearly_boundaries(day: date, expected: str) -> None:
    assert selector_for(day, Y) == expected


def test_ed25519_suffix_and_revision() -> None:
    day = date(2026, 11, 5)
    assert selector_for(day, Q, algorithm='ed25519') == 's2026q4e'
    assert selector_for(day, M, algorithm=KeyAlgorithm.ED25519) == 's202611e'
    assert selector_for(day, Y, algorithm='ed25519') == 's2026e'
    assert selector_for(day, Q, revision=2) == 's2026q4r2'
    assert selector_for(day, Q, revision=12, algorithm='ed25519') == 's2026q4r12e'
    assert selector_for(day, H, prefix='mail') == 'mail2026h2'


@pytest.mark.parametrize('revision', [0, -1, True])
def test_bad_revision_refused(revision: int) -> None:
    with pytest.raises(SelectorError, match='invalid selector revision'):
        selector_for(date(2026, 1, 1), Q, revision=revision)


@pytest.mark.parametrize('prefix', ['', 'S', 's1', 'dkim-', 'a' * 17])
def test_bad_prefix_refused(prefix: str) -> None:
    with pytest.raises(SelectorError, match='invalid selector prefix'):
        selector_for(date(2026, 1, 1), Q, prefix=prefix)


def test_aware_datetime_converted_to_utc() -> None:
    new_york = timezone(timedelta(hours=-5))
    late = datetime(2026, 12, 31, 20, 0, tzinfo=new_york)  # 2027-01-01T01:00Z
    assert selector_for(late, Q) == 's2027q1'
    assert selector_for(datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC), Q) == 's2026q4'


def test_naive_datetime_refused() -> None:
    with pytest.raises(SelectorError, match='naive datetime'):
        selector_for(datetime(2026, 12, 31, 23, 0), Q)


@pytest.mark.parametrize(
    ('value', 'expected'),
    [
        (28, M),
        (31, M),
        (89, M),
        (90, Q),
        (92, Q),
        (179, Q),
        (180, H),
        (184, H),
        (364, H),
        (365, Y),
        (730, Y),
        (timedelta(days=90), Q),
        (timedelta(seconds=180 * 86400), H),
        ('90d', Q),
        ('180', H),
        ('quarterly', Q),
        ('Quarter', Q),
        ('half-yearly', H),
        ('semiannual', H),
        ('monthly', M),
        ('annual', Y),
        (Y, Y),
    ],
)
def test_parse_period(value: object, expected: RotationPeriod) -> None:
    assert parse_period(value) is expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ('value', 'message'),
    [
        (27, 'rotation period of 27 days is too short'),
        (0, 'too short'),
        (timedelta(hours=36), 'too short'),
        ('7d', 'too short'),
        ('weekly', 'invalid rotation period "weekly", expected one of: yearly, half-yearly'),
        (True, 'invalid rotation period'),
        ('9\u00b2d', 'invalid rotation period "9\u00b2d"'),  # digits to str.isdigit(), not to int()
    ],
)
def test_parse_period_refused(value: object, message: str) -> None:
    with pytest.raises(SelectorError, match=message):
        parse_period(value)  # type: ignore[arg-type]


def test_days_map_to_named_periods() -> None:
    assert selector_for(date(2026, 11, 5), 90) == 's2026q4'
    assert selector_for(date(2026, 11, 5), timedelta(days=180)) == 's2026h2'


@pytest.mark.parametrize(
    ('day', 'period', 'bounds'),
    [
        (date(2026, 11, 5), Q, (date(2026, 10, 1), date(2027, 1, 1))),
        (date(2026, 3, 31), Q, (date(2026, 1, 1), date(2026, 4, 1))),
        (date(2026, 12, 31), M, (date(2026, 12, 1), date(2027, 1, 1))),
        (date(2028, 2, 29), M, (date(2028, 2, 1), date(2028, 3, 1))),
        (date(2026, 6, 30), H, (date(2026, 1, 1), date(2026, 7, 1))),
        (date(2026, 7, 1), H, (date(2026, 7, 1), date(2027, 1, 1))),
        (date(2026, 7, 1), Y, (date(2026, 1, 1), date(2027, 1, 1))),
    ],
)
def test_period_bounds(day: date, period: RotationPeriod, bounds: tuple[date, date]) -> None:
    assert period_bounds(day, period) == bounds


@pytest.mark.parametrize('period', list(RotationPeriod))
@pytest.mark.parametrize('algorithm', list(KeyAlgorithm))
@pytest.mark.parametrize('revision', [1, 2, 10])
def test_parse_selector_round_trip(period: RotationPeriod, algorithm: KeyAlgorithm, revision: int) -> None:
    day = date(2026, 11, 5)
    name = selector_for(day, period, algorithm=algorithm, revision=revision)
    info = parse_selector(name)
    assert (info.selector, info.period, info.algorithm, info.revision) == (name, period, algorithm, revision)
    assert info.start == period_bounds(day, period)[0]


@pytest.mark.parametrize(
    'name',
    ['s2026q5', 's202613', 's202600', 's2026h3', 'x2026q4', 's26q4', 's2026q4r1', 's2026q4ee', 's0999', 'mail'],
)
def test_parse_selector_refuses_other_names(name: str) -> None:
    with pytest.raises(SelectorError, match='does not follow the naming convention'):
        parse_selector(name)


def test_parse_selector_with_prefix() -> None:
    assert parse_selector('mail2026h1e', prefix='mail').algorithm is KeyAlgorithm.ED25519
    with pytest.raises(SelectorError):
        parse_selector('mail2026h1e')


def test_selectors_are_deterministic_and_unique_per_period() -> None:
    day = date(2026, 1, 1)
    names = set()
    while day.year == 2026:
        names.add(selector_for(day, Q))
        day += timedelta(days=1)
    assert names == {'s2026q1', 's2026q2', 's2026q3', 's2026q4'}
