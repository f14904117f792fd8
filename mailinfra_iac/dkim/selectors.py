"""Selector names derived from the rotation period.

One new selector per key, named after the calendar period the key is generated in:

============  ==============  ========================
period        RSA selector    Ed25519 selector
============  ==============  ========================
yearly        ``s2026``       ``s2026e``
half-yearly   ``s2026h2``     ``s2026h2e``
quarterly     ``s2026q4``     ``s2026q4e``
monthly       ``s202611``     ``s202611e``
============  ==============  ========================

* The Ed25519 key of a dual-signed pair takes the RSA selector plus the suffix ``e``, so the two
  keys generated together sort and read together.
* A second rotation inside the same period (after a suspected compromise, or to replace an
  abandoned key) takes a revision ``r<N>`` (N >= 2) before the suffix: ``s2026q4r2``,
  ``s2026q4r2e``. Selectors are never reused.
* A rotation period given in days picks the longest named period that is not longer than it:
  at least 365 days yearly, 180 half-yearly, 90 quarterly, 28 monthly. Shorter periods are
  refused. Rotation is then due when the calendar period changes.
* Dates are calendar dates in UTC; a timezone-aware datetime is converted to UTC first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from .errors import SelectorError
from .keys import KeyAlgorithm, parse_algorithm

__all__ = [
    'DEFAULT_PERIOD',
    'DEFAULT_PREFIX',
    'ED25519_SUFFIX',
    'RotationPeriod',
    'SelectorInfo',
    'parse_period',
    'parse_selector',
    'period_bounds',
    'selector_for',
]

DEFAULT_PREFIX = 's'
ED25519_SUFFIX = 'e'
_PREFIX = re.compile(r'^[a-z]{1,16}$')
_MAX_LABEL = 63


class RotationPeriod(StrEnum):
    """Calendar period a selector is named after."""

    YEARLY = 'yearly'
    HALF_YEARLY = 'half-yearly'
    QUARTERLY = 'quarterly'
    MONTHLY = 'monthly'


DEFAULT_PERIOD = RotationPeriod.HALF_YEARLY
"""Every 6 months, the interval most often quoted from the M3AAWG key rotation BCP."""

# Longest first: a number of days picks the first period whose threshold it reaches.
_THRESHOLD_DAYS: tuple[tuple[int, RotationPeriod], ...] = (
    (365, RotationPeriod.YEARLY),
    (180, RotationPeriod.HALF_YEARLY),
    (90, RotationPeriod.QUARTERLY),
    (28, RotationPeriod.MONTHLY),
)

_ALIASES: dict[str, RotationPeriod] = {
    'year': RotationPeriod.YEARLY,
    'annual': RotationPeriod.YEARLY,
    'annually': RotationPeriod.YEARLY,
    'half': RotationPeriod.HALF_YEARLY,
    'half-year': RotationPeriod.HALF_YEARLY,
    'half_yearly': RotationPeriod.HALF_YEARLY,
    'semiannual': RotationPeriod.HALF_YEARLY,
    'quarter': RotationPeriod.QUARTERLY,
    'month': RotationPeriod.MONTHLY,
}


def parse_period(period: RotationPeriod | str | int | timedelta) -> RotationPeriod:
    """Turn a named period, a number of days or a :class:`~datetime.timedelta` into a period.

    Strings are a period name (``"quarterly"``, ``"half-yearly"``...) or a number of days
    (``"90"`` or ``"90d"``).
    """
    if isinstance(period, RotationPeriod):
        return period
    if isinstance(period, timedelta):
        return _period_from_days(period.days, f'{period.total_seconds() / 86400:g} days')
    if isinstance(period, bool):
        raise SelectorError(f'invalid rotation period {period!r}')
    if isinstance(period, int):
        return _period_from_days(period, f'{period} days')
    text = period.strip().lower()
    digits = text.removesuffix('d')
    if digits.isascii() and digits.isdigit():
        return _period_from_days(int(digits), f'{digits} days')
    if text in _ALIASES:
        return _ALIASES[text]
    try:
        return RotationPeriod(text)
    except ValueError:
        names = ', '.join(p.value for p in RotationPeriod)
        raise SelectorError(
            f'invalid rotation period "{period}", expected one of: {names}, or a number of days'
        ) from None


def _period_from_days(days: int, shown: str) -> RotationPeriod:
    for threshold, named in _THRESHOLD_DAYS:
        if days >= threshold:
            return named
    raise SelectorError(f'rotation period of {shown} is too short: the shortest supported period is monthly (28 days)')


def _utc_date(day: date) -> date:
    if isinstance(day, datetime):
        if day.tzinfo is None or day.utcoffset() is None:
            raise SelectorError(f'naive datetime {day.isoformat()}: give a date or a timezone-aware datetime')
        return day.astimezone(UTC).date()
    return day


def _check_prefix(prefix: str) -> str:
    if not _PREFIX.match(prefix):
        raise SelectorError(f'invalid selector prefix "{prefix}", expected 1 to 16 lower-case letters')
    return prefix


def _period_tag(day: date, period: RotationPeriod) -> str:
    if period is RotationPeriod.YEARLY:
        return f'{day.year:04d}'
    if period is RotationPeriod.HALF_YEARLY:
        return f'{day.year:04d}h{1 if day.month <= 6 else 2}'
    if period is RotationPeriod.QUARTERLY:
        return f'{day.year:04d}q{(day.month - 1) // 3 + 1}'
    return f'{day.year:04d}{day.month:02d}'


def selector_for(
    day: date,
    period: RotationPeriod | str | int | timedelta,
    *,
    algorithm: KeyAlgorithm | str = KeyAlgorithm.RSA,
    revision: int = 1,
    prefix: str = DEFAULT_PREFIX,
) -> str:
    """The selector of a key generated on ``day`` under the given rotation period.

    Args:
        day: calendar date (UTC), or a timezone-aware datetime.
        period: named period, days (int or ``"90d"``) or a timedelta; see :func:`parse_period`.
        algorithm: ``"ed25519"`` adds the suffix ``e``.
        revision: 1 for the period's first key; 2, 3... add ``r2``, ``r3``...
        prefix: leading letters, ``s`` by default.

    >>> selector_for(date(2026, 11, 5), 'quarterly', algorithm='ed25519')
    's2026q4e'
    """
    named = parse_period(period)
    day = _utc_date(day)
    if isinstance(revision, bool) or not isinstance(revision, int) or revision < 1:
        raise SelectorError(f'invalid selector revision {revision!r}, expected 1 or more')
    name = _check_prefix(prefix) + _period_tag(day, named)
    if revision > 1:
        name += f'r{revision}'
    if parse_algorithm(algorithm) is KeyAlgorithm.ED25519:
        name += ED25519_SUFFIX
    return name


def period_bounds(day: date, period: RotationPeriod | str | int | timedelta) -> tuple[date, date]:
    """First day of the period containing ``day``, and first day of the next period."""
    named = parse_period(period)
    day = _utc_date(day)
    months = {
        RotationPeriod.YEARLY: 12,
        RotationPeriod.HALF_YEARLY: 6,
        RotationPeriod.QUARTERLY: 3,
        RotationPeriod.MONTHLY: 1,
    }[named]
    first_month = (day.month - 1) // months * months + 1
    start = date(day.year, first_month, 1)
    next_index = first_month - 1 + months
    end = date(day.year + next_index // 12, next_index % 12 + 1, 1)
    return start, end


@dataclass(frozen=True)
class SelectorInfo:
    """What a selector name following this convention says."""

    selector: str
    period: RotationPeriod
    start: date
    """First day of the period the selector is named after."""
    algorithm: KeyAlgorithm
    revision: int
    prefix: str


def _selector_pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(
        rf'^{re.escape(prefix)}(?P<year>[1-9]\d{{3}})'
        r'(?:(?P<month>\d{2})|h(?P<half>[12])|q(?P<quarter>[1-4]))?'
        r'(?:r(?P<revision>[2-9]|[1-9]\d{1,3}))?'
        rf'(?P<ed25519>{ED25519_SUFFIX})?$'
    )


def parse_selector(selector: str, *, prefix: str = DEFAULT_PREFIX) -> SelectorInfo:
    """Read period, start date, algorithm and revision back from a selector name.

    Raises :class:`SelectorError` for a name that does not follow the convention.
    """
    match = _selector_pattern(_check_prefix(prefix)).match(selector)
    month = int(match['month']) if match and match['month'] else None
    if not match or (month is not None and not 1 <= month <= 12) or len(selector) > _MAX_LABEL:
        raise SelectorError(
            f'selector "{selector}" does not follow the naming convention, expected e.g. '
            f'"{prefix}2026q4", "{prefix}2026q4e" or "{prefix}2026q4r2"'
        )
    year = int(match['year'])
    if month is not None:
        period, start = RotationPeriod.MONTHLY, date(year, month, 1)
    elif match['quarter']:
        period, start = RotationPeriod.QUARTERLY, date(year, (int(match['quarter']) - 1) * 3 + 1, 1)
    elif match['half']:
        period, start = RotationPeriod.HALF_YEARLY, date(year, 1 if match['half'] == '1' else 7, 1)
    else:
        period, start = RotationPeriod.YEARLY, date(year, 1, 1)
    return SelectorInfo(
        selector=selector,
        period=period,
        start=start,
        algorithm=KeyAlgorithm.ED25519 if match['ed25519'] else KeyAlgorithm.RSA,
        revision=int(match['revision']) if match['revision'] else 1,
        prefix=prefix,
    )
