"""Forward-confirmed reverse DNS of every sending address, and the HELO name that goes with it.

For each address: the PTR of ``<reversed address>.in-addr.arpa`` names exactly one host, the one
the spec gives (``ptr``); that name's A records hold the address; and the HELO name (``helo``,
which defaults to the PTR name) is that same name. Receivers (Gmail, Microsoft, Yahoo) reject or
throttle mail from addresses without forward-confirmed reverse DNS.
"""

from __future__ import annotations

import ipaddress

from mailinfra_agent.dns.client import Answer, DnsClient

from .expected import Expectations, IpSubject
from .results import CheckResult, Status


def _reverse_pointer(address: str) -> str:
    if ':' in address:
        return ipaddress.ip_address(address).reverse_pointer
    return '.'.join(reversed(address.split('.'))) + '.in-addr.arpa'


def _unanswered(answer: Answer, what: str) -> tuple[Status, str]:
    if answer.unchecked:
        return 'unchecked', f"{what} is outside the deployment's zones: not checked (give --resolver to check it)"
    return 'fail', f'cannot ask for {what}: {answer.error}'


async def check(client: DnsClient, expected: Expectations) -> list[CheckResult]:
    server = client.server
    known = [subject for subject in expected.ips if subject.address is not None]
    reverse = {subject.ip.id: _reverse_pointer(subject.address or '') for subject in known}
    ptrs = await client.ask_all([(reverse[subject.ip.id], 'PTR') for subject in known])
    client.prefetch([(answer.values[0], 'A') for answer in ptrs if answer.ok and len(answer.values) == 1])
    results = []
    by_id = {subject.ip.id: answer for subject, answer in zip(known, ptrs, strict=True)}
    for subject in expected.ips:
        answer = by_id.get(subject.ip.id)
        if answer is None:
            results.append(
                CheckResult(
                    'fcrdns',
                    subject.ip.id,
                    'unchecked',
                    'address not known yet (allocated by Terraform): pass --terraform-output',
                    server,
                )
            )
            continue
        status, reason = await _one(client, subject, reverse[subject.ip.id], answer)
        results.append(CheckResult('fcrdns', subject.address or subject.ip.id, status, reason, server))
    return results


async def _one(client: DnsClient, subject: IpSubject, pointer: str, ptr: Answer) -> tuple[Status, str]:
    address = subject.address or ''
    want = subject.ip.ptr.lower().rstrip('.')
    if not ptr.ok:
        return _unanswered(ptr, f'the PTR {pointer}')
    if not ptr.values:
        return 'fail', f'no PTR record at {pointer} ({ptr.rcode}); expected {want}'
    if len(ptr.values) > 1:
        return (
            'fail',
            f'{len(ptr.values)} PTR records at {pointer} ({", ".join(sorted(ptr.values))}); expected one: {want}',
        )
    name = ptr.values[0]
    if name != want:
        return 'fail', f'PTR of {address} names {name}, expected {want}'
    forward = await client.ask(name, 'A')
    if not forward.ok:
        return _unanswered(forward, f'the A record of {name}')
    if address not in forward.values:
        found = ', '.join(forward.values) if forward.values else f'no A record ({forward.rcode})'
        return 'fail', f'PTR names {name}, but {name} has {found}, not {address}: reverse DNS is not forward-confirmed'
    helo = subject.ip.helo.lower().rstrip('.')
    if helo != name:
        return 'fail', f'PTR and A agree on {name}, but the HELO name is {helo}'
    return 'pass', f'PTR {name}, whose A holds {address}; HELO {helo}'
