"""The result of one DNS check on one subject, and the catalogue of check ids."""

from __future__ import annotations

from typing import Literal, NamedTuple

Status = Literal['pass', 'warn', 'fail', 'skip', 'unchecked']
STATUSES: tuple[Status, ...] = ('pass', 'warn', 'fail', 'skip', 'unchecked')
"""``skip``: not run because a check it depends on did not pass (the reason says which); ``unchecked``:
could not be checked (a name outside the deployment's zones and no resolver, an address Terraform has
not allocated yet, a key the key store lacks). Unchecked results fail the run unless allowed."""

CHECKS: dict[str, str] = {
    'fcrdns': 'The PTR of each sending address names the host whose A record holds the address; HELO uses that name.',
    'spf-present': 'Exactly one syntactically valid v=spf1 TXT record at each sending and return-path domain.',
    'spf-authorises-ips': 'The SPF record gives "pass" for every sending address of the streams using the domain.',
    'spf-lookups': 'At most 10 DNS-querying terms and 2 void lookups, counted through include: and redirect=.',
    'spf-matches-spec': 'The served SPF record is the rendered one (terms compared; spacing and "+" aside).',
    'dkim-present': 'Exactly one well-formed DKIM key record at each active selector, usable for our signatures '
    '(h= allows sha256, s= allows email).',
    'dkim-key-matches': 'The served record is the rendered one: the key in the key store (key bytes compared) and '
    'the same tags (spacing, tag order and chunking aside).',
    'dkim-key-size': 'RSA keys of at least 2048 bits (RFC 8301).',
    'dkim-not-revoked': 'The served key record is not revoked (empty p=).',
    'dmarc-present': 'Exactly one valid v=DMARC1 record at _dmarc.<domain>.',
    'dmarc-policy': 'A valid p= policy, the one the spec asks for.',
    'dmarc-rua': 'Aggregate reports requested (rua=mailto:...).',
    'dmarc-report-authorised': 'Report destinations on other domains publish <domain>._report._dmarc.<dest> v=DMARC1.',
    'dmarc-matches-spec': 'The served DMARC record is the rendered one (tags compared, defaults filled in).',
    'mx': 'Each return-path (and feedback-loop) domain has MX records pointing at the inbound hosts, which resolve '
    '(a null MX, RFC 7505, is reported as such).',
    'mta-sts': 'An _mta-sts TXT record (v=STSv1) with a policy id.',
    'tls-rpt': 'An _smtp._tls TXT record (v=TLSRPTv1) with rua.',
    'zone-text': 'Zone files given with --zone-file: no TXT character-string over 255 bytes (RFC 1035 3.3; BIND '
    'refuses the zone, some servers split it silently).',
}
"""Every check id, in report order, with what it verifies."""

_ORDER = {check: index for index, check in enumerate(CHECKS)}


class CheckResult(NamedTuple):
    """One check on one subject (an address, a domain, a record name) as one server answers it.

    A named tuple rather than a frozen dataclass: a check of 1,000 addresses makes about 10,000, and
    this is the cheapest immutable record. Check ids are verified when results are put in report
    order (:func:`report_order`).
    """

    check: str
    subject: str
    status: Status
    reason: str
    server: str = ''

    @property
    def failed(self) -> bool:
        return self.status == 'fail'

    @property
    def unchecked(self) -> bool:
        return self.status == 'unchecked'

    def as_dict(self) -> dict[str, str]:
        return {
            'check': self.check,
            'subject': self.subject,
            'server': self.server,
            'status': self.status,
            'reason': self.reason,
        }

    def __str__(self) -> str:
        return f'{self.status}: {self.check} {self.subject}: {self.reason}'


def report_order(results: list[CheckResult], servers: list[str]) -> list[CheckResult]:
    """Sorted by server (in the order given), then check (catalogue order); subjects keep their spec order."""
    # Equal to a stable sort on (server position, check position) without a key computed per result:
    # each result goes into the list of its key in the order given, the lists are joined in key order.
    position = {server: index for index, server in enumerate(servers)}
    keyed: dict[tuple[int, int], list[CheckResult]] = {}
    lists: dict[tuple[str, str], list[CheckResult]] = {}  # (server, check) -> the list of its key
    for result in results:
        found = lists.get((result.server, result.check))
        if found is None:
            if result.check not in _ORDER:
                raise ValueError(f"unknown DNS check id '{result.check}'")
            key = (position.get(result.server, len(position)), _ORDER[result.check])
            found = lists[(result.server, result.check)] = keyed.setdefault(key, [])
        found.append(result)
    return [result for key in sorted(keyed) for result in keyed[key]]


def summary(results: list[CheckResult]) -> dict[str, int]:
    counts: dict[str, int] = dict.fromkeys(STATUSES, 0)
    for result in results:
        counts[result.status] += 1
    return counts


NOT_ASKED = "outside the deployment's zones: not checked (give --resolver to check it)"


def skipped(check: str, subject: str, server: str, because: str) -> CheckResult:
    """A dependent check that was not run, so that every run reports the same checks."""
    return CheckResult(check, subject, 'skip', f'not run: {because}', server)


def shorten(items: list[str], limit: int = 3) -> str:
    """``a, b, c and 4 more``: keeps reasons on one line."""
    shown = ', '.join(items[:limit])
    return shown + (f' and {len(items) - limit} more' if len(items) > limit else '')


def mx_exchange(value: str) -> str:
    """The host of an MX value ``"<preference> <host>"``; ``''`` for the null MX's root name (RFC 7505).

    The engines write the root differently (the fast one ``"0 "``, dnspython ``"0 ."``): both give ``''``.
    """
    _, _, host = value.strip().partition(' ')
    return host.strip().rstrip('.').lower()
