"""Exact decoding of blocklist answers: a listing only when the zone documents that answer as one.

Rules for every zone, before its own codes:

* an answer outside 127.0.0.0/8 is an error (``not_loopback``): a resolver that rewrites NXDOMAIN to an
  address of its own (NXDOMAIN hijacking), or a broken zone;
* an answer the zone lists as an error (Spamhaus 127.255.255.252/254/255, DBL 127.0.1.255, URIBL bit 1 ...)
  is that error, never a listing;
* 127.0.0.1 is never a listing (RFC 5782 section 5: the point that must never be listed);
* any other answer the zone does not document is an error (``undocumented``), never a listing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from .catalogue import ErrorCode, Zone

_LOOPBACK = ipaddress.IPv4Network('127.0.0.0/8')
_BITMASK_NETWORK = ipaddress.IPv4Network('127.0.0.0/24')

Verdict = Literal['listed', 'clean', 'error', 'score', 'allowlisted']


@dataclass(frozen=True)
class Code:
    """A decoded answer: a listing (``code``, ``meaning``) or an error (``id``, ``meaning``)."""

    code: str
    meaning: str


@dataclass(frozen=True)
class Decoded:
    verdict: Verdict
    listings: tuple[Code, ...] = ()
    """Listing answers with their meaning (``listed``), or allowlist entries (``allowlisted``)."""
    errors: tuple[Code, ...] = ()
    """Error answers: ``code`` is the short error id."""
    score: int | None = None
    score_meaning: str = ''


def _error(error_id: str, meaning: str) -> Code:
    return Code(error_id, meaning)


def _parse(answer: str) -> ipaddress.IPv4Address | None:
    try:
        return ipaddress.IPv4Address(answer)
    except ValueError:
        return None


def decode(zone: Zone, answers: Iterable[str]) -> Decoded:
    """Decode the A records one query returned (empty: NXDOMAIN or no records, i.e. not listed)."""
    values = sorted(set(answers), key=lambda text: (_parse(text) is None, _parse(text) or 0, text))
    if not values:
        return Decoded('clean')
    listings: list[Code] = []
    errors: list[Code] = []
    scores: list[tuple[int, str]] = []
    for value in values:
        address = _parse(value)
        if address is None:
            errors.append(_error('malformed', f'{value!r} is not an IPv4 address'))
            continue
        if address not in _LOOPBACK:
            errors.append(
                _error(
                    'not_loopback',
                    f'{value} is outside 127.0.0.0/8: the resolver rewrites NXDOMAIN (hijacking) or the zone is broken',
                )
            )
            continue
        error = zone.errors.get(value) or _network_error(zone, address)
        if error is not None:
            errors.append(_error(error.id, f'{value}: {error.meaning}'))
            continue
        if zone.decoder == 'bitmask':
            _decode_bits(zone, address, value, listings, errors)
        elif zone.decoder == 'score':
            _decode_score(zone, address, value, scores, errors)
        elif value == '127.0.0.1':
            errors.append(_error('localhost', '127.0.0.1 is never a listing (RFC 5782): refused or misconfigured'))
        elif value in zone.codes:
            listings.append(Code(value, zone.codes[value]))
        else:
            errors.append(_error('undocumented', f'{value} is not a code {zone.zone} documents: not read as a listing'))
    if errors:
        return Decoded('error', tuple(listings), tuple(errors))
    if zone.decoder == 'score':
        score, meaning = min(scores)
        verdict: Verdict = 'allowlisted' if zone.section == 'allowlist' else 'score'
        return Decoded(verdict, score=score, score_meaning=meaning)
    if zone.section == 'allowlist':
        return Decoded('allowlisted', tuple(listings))
    return Decoded('listed', tuple(listings))


def _network_error(zone: Zone, address: ipaddress.IPv4Address) -> ErrorCode | None:
    for key, error in zone.errors.items():
        if '/' in key and address in ipaddress.IPv4Network(key):
            return error
    return None


def _decode_bits(
    zone: Zone, address: ipaddress.IPv4Address, value: str, listings: list[Code], errors: list[Code]
) -> None:
    if address not in _BITMASK_NETWORK:
        errors.append(_error('undocumented', f'{value} is not a 127.0.0.x bitmask answer of {zone.zone}'))
        return
    last = int(address) & 0xFF
    bits = [bit for bit in (1, 2, 4, 8, 16, 32, 64, 128) if last & bit]
    bad = [str(bit) for bit in bits if str(bit) in zone.errors]
    if bad or last == 1:
        for bit in bad or ['1']:
            error = zone.errors.get(bit)
            meaning = error.meaning if error else 'bit 1 (127.0.0.1) is never a listing'
            errors.append(_error(error.id if error else 'localhost', f'{value}: {meaning}'))
        return
    unknown = [str(bit) for bit in bits if str(bit) not in zone.codes]
    if unknown or not bits:
        errors.append(
            _error('undocumented', f'{value}: bit(s) {", ".join(unknown) or "none"} not documented by {zone.zone}')
        )
        return
    listings.extend(Code(value, f'{zone.codes[str(bit)]} (bit {bit})') for bit in bits)


def _decode_score(
    zone: Zone, address: ipaddress.IPv4Address, value: str, scores: list[tuple[int, str]], errors: list[Code]
) -> None:
    assert zone.score is not None
    last = int(address) & 0xFF
    if address not in ipaddress.IPv4Network(zone.score.network) or not zone.score.minimum <= last <= zone.score.maximum:
        errors.append(
            _error(
                'undocumented',
                f'{value} is outside {zone.zone} score range {zone.score.network} '
                f'({zone.score.minimum}-{zone.score.maximum})',
            )
        )
        return
    scores.append((last, zone.codes.get(value, f'score {last}')))


def answers_as_documented(zone: Zone, answers: Iterable[str]) -> str | None:
    """Why the test point's answers are not what the zone documents, or None when they are."""
    values = tuple(answers)
    if not values:
        return 'the test point is not listed (NXDOMAIN or no records)'
    decoded = decode(zone, values)
    if decoded.errors:
        return 'the test point answered ' + '; '.join(e.meaning for e in decoded.errors)
    missing = [answer for answer in zone.test_answers if answer not in values]
    if missing:
        return f'the test point answered {", ".join(values)}, expected {", ".join(zone.test_answers)}'
    return None
