"""Receiving side of every return-path (bounce) and feedback-loop domain: MX, MTA-STS and TLS-RPT.

``mx``: the MX records point at exactly the inbound hosts of the spec, and each of them has an
address; a null MX (RFC 7505: one MX of preference 0 naming the root) is reported as such.
``mta-sts``: one ``_mta-sts`` TXT record ``v=STSv1; id=...`` (RFC 8461 3.1); an id other than the
rendered policy's fails (senders keep a cached policy until the id changes).
``tls-rpt``: one ``_smtp._tls`` TXT record ``v=TLSRPTv1; rua=...`` with mailto: or https: URIs
(RFC 8460 3); a value other than the rendered one fails.
"""

from __future__ import annotations

import re

from mailinfra_agent.dns.client import Answer, DnsClient

from .expected import Expectations, ReceivingSubject
from .results import NOT_ASKED, CheckResult, Status, mx_exchange, shorten

_STS_ID = re.compile(r'^[A-Za-z0-9]{1,32}$')


def _unasked(answer: Answer) -> tuple[Status, str]:
    if answer.unchecked:
        return 'unchecked', NOT_ASKED
    return 'fail', f'cannot ask: {answer.error}'


def _tags(value: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for part in value.split(';'):
        name, sep, tag_value = part.partition('=')
        if sep:
            tags.setdefault(name.strip().lower(), tag_value.strip())
    return tags


def _mx(
    subject: ReceivingSubject,
    answer: Answer,
    addresses: dict[str, Answer],
    exchanges: list[str],
    resolved: dict[tuple[str, ...], tuple[Status, str]],
) -> tuple[Status, str]:
    """``exchanges``: the hosts of the answer's values (:func:`mx_exchange`); ``resolved``: :func:`_resolve` by
    hosts, filled as the check goes (the domains of a deployment share their inbound hosts)."""
    if not answer.ok:
        return _unasked(answer)
    if not answer.values:
        return 'fail', f'no MX record ({answer.rcode}): bounces and replies go nowhere we run'
    hosts = sorted(set(exchanges))
    if '' in hosts:
        if len(answer.values) == 1:
            return 'fail', 'null MX (RFC 7505): the domain refuses all mail, bounces and replies included'
        return 'fail', 'a null MX (RFC 7505) among other MX records: senders may treat the domain as undeliverable'
    want = sorted(subject.mx_hosts)
    if hosts != want:
        missing = [host for host in want if host not in hosts]
        extra = [host for host in hosts if host not in want]
        parts = [f'points at {shorten(hosts)}']
        if missing:
            parts.append(f'not at {shorten(missing)}')
        if extra:
            parts.append(f'{shorten(extra)} {"is" if len(extra) == 1 else "are"} not an inbound host')
        return 'fail', '; '.join(parts)
    key = tuple(hosts)
    found = resolved.get(key)
    if found is None:
        found = resolved[key] = _resolve(key, addresses)
    return found


def _resolve(hosts: tuple[str, ...], addresses: dict[str, Answer]) -> tuple[Status, str]:
    """Whether every one of ``hosts`` has an address."""
    for host in hosts:
        found = addresses[host]
        if not found.ok:
            status, reason = _unasked(found)
            return status, f'{host}: {reason}'
        if not found.values:
            return 'fail', f'{host} has no A record ({found.rcode})'
    return 'pass', ', '.join(f'{host} ({", ".join(addresses[host].values)})' for host in hosts)


def _one_record(answer: Answer, prefix: str) -> tuple[Status, str, str | None]:
    if not answer.ok:
        return (*_unasked(answer), None)
    records = [value for value in answer.values if value.lstrip().lower().startswith(prefix.lower())]
    if not records:
        return 'fail', f'no {prefix} record ({answer.rcode})', None
    if len(records) > 1:
        return 'fail', f'{len(records)} {prefix} records: senders treat that as none', None
    return 'pass', records[0], records[0]


def _mta_sts(subject: ReceivingSubject, answer: Answer) -> tuple[Status, str]:
    status, reason, record = _one_record(answer, 'v=STSv1')
    if record is None:
        return status, reason
    policy_id = _tags(record).get('id')
    if policy_id is None or not _STS_ID.match(policy_id):
        return 'fail', f'"{record}" has no valid id= (1 to 32 letters and digits)'
    expected_id = subject.mta_sts_id
    if expected_id is not None and policy_id != expected_id:
        return 'fail', f'id={policy_id}, the rendered policy has id={expected_id}: senders keep their cached policy'
    return 'pass', f'id={policy_id}'


def _tls_rpt(subject: ReceivingSubject, answer: Answer) -> tuple[Status, str]:
    status, reason, record = _one_record(answer, 'v=TLSRPTv1')
    if record is None:
        return status, reason
    rua = [uri.strip() for uri in _tags(record).get('rua', '').split(',') if uri.strip()]
    if not rua:
        return 'fail', f'"{record}" has no rua=: nobody receives TLS reports'
    bad = [uri for uri in rua if not uri.lower().startswith(('mailto:', 'https:'))]
    if bad:
        return 'fail', f'rua URIs must be mailto: or https: ({shorten(bad)})'
    if subject.tls_rpt is not None and record.strip() != subject.tls_rpt.strip():
        return 'fail', f'"{record}" differs from the rendered "{subject.tls_rpt}"'
    return 'pass', f'rua={",".join(rua)}'


async def check(client: DnsClient, expected: Expectations) -> list[CheckResult]:
    server = client.server
    subjects = expected.receiving
    client.prefetch(
        [(subject.name, 'MX') for subject in subjects]
        + [(f'_mta-sts.{subject.name}', 'TXT') for subject in subjects]
        + [(f'_smtp._tls.{subject.name}', 'TXT') for subject in subjects]
    )
    mx = [await client.ask(subject.name, 'MX') for subject in subjects]
    exchanges = [[mx_exchange(value) for value in answer.values] if answer.ok else [] for answer in mx]
    hosts = sorted({host for names in exchanges for host in names} - {''})
    addresses = dict(zip(hosts, await client.ask_all([(host, 'A') for host in hosts]), strict=True))
    results = []
    resolved: dict[tuple[str, ...], tuple[Status, str]] = {}
    for subject, answer, names in zip(subjects, mx, exchanges, strict=True):
        status, reason = _mx(subject, answer, addresses, names, resolved)
        results.append(CheckResult('mx', subject.name, status, reason, server))
    for subject in subjects:
        status, reason = _mta_sts(subject, await client.ask(f'_mta-sts.{subject.name}', 'TXT'))
        results.append(CheckResult('mta-sts', f'_mta-sts.{subject.name}', status, reason, server))
    for subject in subjects:
        status, reason = _tls_rpt(subject, await client.ask(f'_smtp._tls.{subject.name}', 'TXT'))
        results.append(CheckResult('tls-rpt', f'_smtp._tls.{subject.name}', status, reason, server))
    return results
