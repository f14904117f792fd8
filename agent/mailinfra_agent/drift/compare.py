"""Does one answer match one expected record set?"""

from __future__ import annotations

from dataclasses import dataclass

from ..contract import DnsExpectation
from ..dns.client import Answer

CHECKS = ('spf', 'dkim', 'dmarc', 'ptr', 'mx', 'a', 'mta_sts', 'tls_rpt', 'other')
"""Values of the ``check`` label; anything else in a contract is reported as ``other``."""

_NAME_TYPES = frozenset({'CNAME', 'NS', 'PTR'})


@dataclass(frozen=True)
class Outcome:
    ok: bool
    reason: str
    """Empty when ok; otherwise what differs (values, not secrets: these are public records)."""


def normalise(rtype: str, value: str) -> str:
    """Names compare case-insensitively and without the trailing dot; TXT and addresses as they are."""
    if rtype in _NAME_TYPES:
        return value.rstrip('.').lower()
    if rtype == 'MX':
        preference, _, host = value.strip().partition(' ')
        return f'{preference} {host.strip().rstrip(".").lower()}'
    return value


def _tag(value: str) -> str:
    """The version tag a TXT record starts with (``v=spf1``, ``v=DMARC1``...), lower case; '' if none."""
    head = value.strip().split(';', 1)[0].split(' ', 1)[0].strip().lower()
    return head if head.startswith('v=') else ''


def compare(expected: DnsExpectation, answer: Answer) -> Outcome:
    """Whether ``answer`` still publishes ``expected``.

    TXT record sets are compared among the records that carry the same version tag (``v=spf1``...),
    so a site-verification TXT next to SPF is no drift, while a second SPF record or a changed one is.
    Other types compare as sets.
    """
    if answer.error is not None:
        return Outcome(False, f'no answer: {answer.error}')
    if answer.unchecked:
        return Outcome(False, 'not asked')
    want = {normalise(expected.type, value) for value in expected.values}
    got = {normalise(expected.type, value) for value in answer.values}
    if expected.type == 'TXT':
        tags = {_tag(value) for value in want}
        if '' not in tags:
            got = {value for value in got if _tag(value) in tags}
    if want == got:
        return Outcome(True, '')
    if not got:
        return Outcome(False, 'NXDOMAIN' if answer.rcode == 'NXDOMAIN' else 'no records')
    missing = sorted(want - got)
    extra = sorted(got - want)
    parts = []
    if missing:
        parts.append('missing ' + ', '.join(_short(value) for value in missing))
    if extra:
        parts.append('unexpected ' + ', '.join(_short(value) for value in extra))
    return Outcome(False, '; '.join(parts))


def _short(value: str, limit: int = 80) -> str:
    return repr(value if len(value) <= limit else value[: limit - 3] + '...')
