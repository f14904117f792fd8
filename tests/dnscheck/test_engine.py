"""The query engines against the real Knot: our wire parser agrees with dnspython's on every answer the
check asks for, truncated answers come over TCP, CNAMEs are followed, and silence, refusals and
garbage are bounded and reported."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import dns.flags
import dns.message
import dns.rdatatype
import dns.rrset
import pytest

from mailinfra_agent.dns.client import Answer, DnspythonEngine, _from_dnspython
from mailinfra_agent.dns.wire import TYPES, answer_chain, encode_question, parse_response, query_body
from mailinfra_iac.dnscheck import CannotCheck, DnsClient, Server, UdpEngine, parse_server, run_dns_checks

from ..conftest import TEST_DKIM
from .conftest import Served, changed, reason, start_knot

D = 'dailybrief.example'


async def _ask_all(engine: UdpEngine | DnspythonEngine, questions: list[tuple[str, str]]) -> list[Answer]:
    await engine.start()
    try:
        return list(await asyncio.gather(*(engine.submit(name, rdtype) for name, rdtype in questions)))
    finally:
        engine.close()


def test_wire_parser_agrees_with_dnspython(served: Served) -> None:
    report = served.report(resolver=True)
    # every type the checks ask, but SOA (asked only to see that the server serves the zones; hex here)
    questions = sorted({(name, rdtype) for name, rdtype, _ in report.questions if rdtype != 'SOA'})
    assert {rdtype for _, rdtype in questions} == {'A', 'PTR', 'TXT', 'MX'}
    server = parse_server(served.server)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        sock.connect((server.address, server.port))
        owned = 0
        for ident, (name, rdtype) in enumerate(questions):
            question = encode_question(name, rdtype)
            sock.send(ident.to_bytes(2, 'big') + query_body(question, recursion=False))
            wire = sock.recv(65535)
            ours = parse_response(wire, question)
            theirs = dns.message.from_wire(wire)
            assert ours.ident == ident == theirs.id
            assert ours.rcode == theirs.rcode()
            assert ours.authoritative
            fast = parse_response(wire, question, name, TYPES[rdtype])  # what the engine calls
            assert fast.answers == ours.answers
            if fast.own is not None:
                assert fast.own == answer_chain(ours.answers, name, TYPES[rdtype])[0]
                owned += 1
            mine = _from_dnspython(theirs, name, rdtype, 'x', True)
            assert sorted((rr.owner, rr.rdtype, rr.value) for rr in ours.answers) == sorted(
                (rrset.name.to_text(omit_final_dot=True).lower(), int(rrset.rdtype), value)
                for rrset in theirs.answer
                for value in _values(mine, rrset)
            )
    assert owned > len(questions) // 2  # the fast path is the usual one


def _values(answer: Answer, rrset: dns.rrset.RRset) -> list[str]:
    # dnspython's view of each rdata, in the converter's format
    return [
        b''.join(r.strings).decode() if rrset.rdtype == TYPES['TXT']
        else f'{r.preference} {r.exchange.to_text(omit_final_dot=True).lower()}' if rrset.rdtype == TYPES['MX']
        else r.target.to_text(omit_final_dot=True).lower() if rrset.rdtype in (TYPES['PTR'], TYPES['CNAME'])
        else r.address
        for r in rrset
    ]  # fmt: skip


def test_truncated_answer_is_asked_again_over_tcp(served: Served) -> None:
    big = 'v=spf1 ' + ' '.join(f'ip4:192.0.2.{n}' for n in range(1, 120)) + ' -all'
    assert len(big) > 1300
    served.change({(f'big.{D}', 'TXT'): (big,)})
    engine = UdpEngine(parse_server(served.server))
    [answer] = asyncio.run(_ask_all(engine, [(f'big.{D}', 'TXT')]))
    assert answer.values == (big,)
    assert engine.truncated == 1
    [reference] = asyncio.run(_ask_all(DnspythonEngine(parse_server(served.server)), [(f'big.{D}', 'TXT')]))
    assert reference == answer


def test_cname_inside_and_outside_the_zones(served: Served, baseline: dict[tuple[str, str], str]) -> None:
    inside = f's2026q4._domainkey.{D}'
    outside = f's2026q4._domainkey.news.{D}'
    key = next(r for r in served.base[D] if r.fqdn == inside).values
    served.change(
        {
            (inside, 'TXT'): None,
            (inside, 'CNAME'): (f'keys.{D}.',),
            (f'keys.{D}', 'TXT'): key,
            (outside, 'TXT'): None,
            (outside, 'CNAME'): ('s2026q4.keys.dmarc-vendor.example.',),
            ('s2026q4.keys.dmarc-vendor.example', 'TXT'): key,
        }
    )
    results = served.check(resolver=True)
    assert changed(baseline, results) == {('spf-lookups', D): 'pass'}
    assert reason(results, 'dkim-present', inside) == f'rsa key record (via CNAME keys.{D})'
    assert reason(results, 'dkim-present', outside) == 'rsa key record (via CNAME s2026q4.keys.dmarc-vendor.example)'
    # without a resolver the delegated key cannot be followed
    results = served.check()
    assert changed(baseline, results)[('dkim-present', outside)] == 'unchecked'


def test_a_zone_the_server_does_not_serve_is_refused(served: Served) -> None:
    async def ask() -> Answer:
        engine = UdpEngine(parse_server(served.server))
        await engine.start()
        try:
            return await DnsClient(engine, ['not-served.example']).ask('www.not-served.example', 'A')
        finally:
            engine.close()

    answer = asyncio.run(ask())
    assert answer.error == f'{served.server} answered REFUSED'
    assert not answer.ok


@pytest.fixture
def silent_socket() -> Iterator[socket.socket]:
    """A UDP socket on loopback that keeps the queries it gets and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(('127.0.0.1', 0))
        yield sock


@pytest.fixture
def silent(silent_socket: socket.socket) -> Server:
    """A UDP port on loopback that never answers."""
    return Server(*silent_socket.getsockname())


def test_a_silent_server_is_one_clear_error_within_the_bounds(served: Served, silent_socket: socket.socket) -> None:
    silent = Server(*silent_socket.getsockname())
    with pytest.raises(CannotCheck) as error:
        run_dns_checks(served.spec, [silent], dkim=TEST_DKIM, timeout=0.2, retries=1, window=16)
    assert str(error.value) == f'name server {silent} does not answer: {silent}: no answer within 0.2s (2 attempts)'
    # What the server was asked, read from its socket: each zone's SOA, in 2 attempts, and no check after that.
    silent_socket.setblocking(False)
    asked: list[tuple[str, str]] = []
    while True:
        try:
            query = dns.message.from_wire(silent_socket.recv(4096))
        except BlockingIOError:
            break
        asked.extend((question.name.to_text(), dns.rdatatype.to_text(question.rdtype)) for question in query.question)
    assert asked and {kind for _, kind in asked} == {'SOA'}
    assert all(asked.count(question) == 2 for question in asked)


def test_a_silent_resolver_is_one_clear_error(served: Served, silent: Server) -> None:
    with pytest.raises(CannotCheck, match=f'^resolver {silent} does not answer: '):
        run_dns_checks(served.spec, [served.server], resolver=silent, dkim=TEST_DKIM, timeout=0.2, retries=0)


def test_a_server_that_does_not_serve_every_zone_cannot_be_checked(
    served: Served, example_zones: dict[str, str]
) -> None:
    reverse = '100.51.198.in-addr.arpa'
    second = start_knot({zone: text for zone, text in example_zones.items() if zone != reverse})
    try:
        with pytest.raises(CannotCheck) as error:
            run_dns_checks(served.spec, [served.server, second.nameserver], dkim=TEST_DKIM)
    finally:
        second.stop()
    assert str(error.value) == (
        f'name server {second.nameserver} does not serve 1 of the 2 zones authoritatively: '
        f'{reverse} ({second.nameserver} answered REFUSED)'
    )


class _Tricky(threading.Thread):
    """Answers each query with garbage, then an answer to another question, then the right answer."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(('127.0.0.1', 0))
        self.sock.settimeout(0.1)
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            query = dns.message.from_wire(data)
            other = dns.message.make_query('other.example', 'A')
            other.id = query.id
            wrong = dns.message.make_response(other)
            right = dns.message.make_response(query)
            right.flags |= dns.flags.AA
            right.answer.append(dns.rrset.from_text(query.question[0].name, 60, 'IN', 'A', '192.0.2.1'))
            for reply in (data[:2] + b'\x81', wrong.to_wire(), right.to_wire()):
                self.sock.sendto(reply, peer)


def test_garbage_and_foreign_answers_are_ignored() -> None:
    tricky = _Tricky()
    tricky.start()
    try:
        engine = UdpEngine(Server('127.0.0.1', tricky.sock.getsockname()[1]), timeout=1.0)
        answers = asyncio.run(_ask_all(engine, [(f'h{n}.example', 'A') for n in range(20)]))
    finally:
        tricky.stopped.set()
        tricky.join(2)
        tricky.sock.close()
    assert [a.values for a in answers] == [('192.0.2.1',)] * 20
    assert engine.sent == 20


def test_each_server_is_checked_on_its_own(served: Served, example_zones: dict[str, str]) -> None:
    """A second real Knot serving a broken copy: the results say which server is wrong."""
    broken = example_zones[D].replace('v=spf1 ip4:198.51.100.30 ~all', 'v=spf1 ~all')
    assert broken != example_zones[D]
    second = start_knot({**example_zones, D: broken})
    try:
        report = run_dns_checks(served.spec, [served.server, second.nameserver], dkim=TEST_DKIM)
    finally:
        second.stop()
    failed = {(r.check, r.subject, r.server) for r in report.results if r.status == 'fail'}
    assert failed == {
        ('spf-authorises-ips', f'partners.{D}', second.nameserver),
        ('spf-authorises-ips', f'rp.partners.{D}', second.nameserver),
        ('spf-matches-spec', f'partners.{D}', second.nameserver),
        ('spf-matches-spec', f'rp.partners.{D}', second.nameserver),
    }
    assert report.servers == [served.server, second.nameserver]
    assert len(report.results) == 2 * len({(r.check, r.subject) for r in report.results})
    assert report.results[0].server == served.server and report.results[-1].server == second.nameserver


def test_a_closed_port_fails_fast() -> None:
    """Nothing listens: the ICMP port-unreachable ends every query at once, no timeouts waited for."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    engine = UdpEngine(Server('127.0.0.1', port), timeout=2.0)
    answers = asyncio.run(_ask_all(engine, [(f'h{n}.example', 'A') for n in range(5)]))
    # Refused, not "no answer within 2.0s": no query waited for its timeout.
    assert {a.error for a in answers} == {f'127.0.0.1:{port}: socket error: [Errno 111] Connection refused'}


def test_parse_server_and_zones() -> None:
    assert parse_server('192.0.2.1') == Server('192.0.2.1', 53)
    assert parse_server('127.0.0.1:5353') == Server('127.0.0.1', 5353)
    assert parse_server('[2001:db8::1]:5353') == Server('2001:db8::1', 5353)
    assert str(parse_server('2001:db8::1')) == '[2001:db8::1]:53'
    for bad in ('ns1.example', '192.0.2.1:0', '192.0.2.1:x', '[2001:db8::1]5353'):
        with pytest.raises(ValueError):
            parse_server(bad)
    client = DnsClient(UdpEngine(Server('127.0.0.1', 9)), ['example.com', '2.0.192.in-addr.arpa'])
    assert client.inside('Mail.Example.COM.') and client.inside('example.com')
    assert client.inside('1.2.0.192.in-addr.arpa')
    assert not client.inside('example.net') and not client.inside('notexample.com')
