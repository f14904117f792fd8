"""DnsClient routing and caching (stand-in engines); how UdpEngine puts queries on the wire (a local responder)."""

from __future__ import annotations

import asyncio
import errno
import socket
import sys
import threading
from collections.abc import Callable

import dns.edns
import dns.flags
import dns.message
import dns.rrset
import pytest

from mailinfra_agent.dns.client import Answer, DnsClient, Server, UdpEngine


class _Recorder:
    def __init__(self, address: str) -> None:
        self.server = Server(address)
        self.asked: list[tuple[str, str]] = []

    def submit(self, name: str, rdtype: str) -> asyncio.Future[Answer]:
        self.asked.append((name, rdtype))
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        future.set_result(Answer(name, rdtype, ('192.0.2.1',), server=str(self.server)))
        return future


def test_names_inside_the_zones_go_to_the_authoritative_server_the_rest_to_the_resolver() -> None:
    authoritative, resolver = _Recorder('192.0.2.53'), _Recorder('192.0.2.54')
    client = DnsClient(authoritative, ['example.com', 'mail.example.org'], resolver)  # type: ignore[arg-type]
    names = [
        'example.com', 'a.example.com', 'x.a.example.com', 'mail.example.org', 'b.mail.example.org',
        'example.org', 'other.example.org', 'notexample.com', 'com', '',
    ]  # fmt: skip

    async def ask_all() -> list[Answer]:
        return await client.ask_all([(name, 'A') for name in names])

    asyncio.run(ask_all())
    inside = {name for name, _ in authoritative.asked}
    assert inside == {'example.com', 'a.example.com', 'x.a.example.com', 'mail.example.org', 'b.mail.example.org'}
    assert {name for name, _ in resolver.asked} == {'example.org', 'other.example.org', 'notexample.com', 'com', ''}
    assert all(client.inside(name) == (name in inside) for name in names)
    labels = {name: server for name, _, server in client.stats.questions}
    assert labels['a.example.com'] == '192.0.2.53:53' and labels['example.org'] == '192.0.2.54:53'


def test_each_question_is_asked_once_whatever_its_spelling() -> None:
    authoritative = _Recorder('192.0.2.53')
    client = DnsClient(authoritative, ['example.com'])  # type: ignore[arg-type]

    async def ask() -> list[Answer]:
        return [await client.ask(name, 'TXT') for name in ('A.Example.com.', 'a.example.com', 'a.example.com.')]

    answers = asyncio.run(ask())
    assert authoritative.asked == [('a.example.com', 'TXT')]
    assert {answer.values for answer in answers} == {('192.0.2.1',)}
    unchecked = DnsClient(authoritative, ['example.com'])  # type: ignore[arg-type]
    outside = asyncio.run(unchecked.ask_all([('example.net', 'A')]))[0]
    assert outside.unchecked and not outside.ok  # no resolver: names outside the zones are not asked


class _Responder(threading.Thread):
    """A UDP server on loopback that keeps every datagram it gets and answers each query with one A record."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(('127.0.0.1', 0))
        self.sock.settimeout(0.05)
        self.server = Server('127.0.0.1', self.sock.getsockname()[1])
        self.datagrams: list[bytes] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                data, peer = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            self.datagrams.append(data)
            query = dns.message.from_wire(data)
            response = dns.message.make_response(query)
            response.flags |= dns.flags.AA
            response.answer.append(dns.rrset.from_text(query.question[0].name, 60, 'IN', 'A', '192.0.2.1'))
            self.sock.sendto(response.to_wire(), peer)

    def __enter__(self) -> _Responder:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopped.set()
        self.join(2)
        self.sock.close()


def _ask(engine: UdpEngine, names: list[str], patch: Callable[[UdpEngine], None] | None = None) -> list[Answer]:
    async def run() -> list[Answer]:
        await engine.start()
        if patch is not None:
            patch(engine)
        try:
            return list(await asyncio.gather(*(engine.submit(name, 'A') for name in names)))
        finally:
            engine.close()

    return asyncio.run(run())


def _queries(datagrams: list[bytes]) -> list[dns.message.Message]:
    return [dns.message.from_wire(data) for data in datagrams]


@pytest.mark.skipif(sys.platform != 'linux', reason='UDP_SEGMENT is Linux only')
def test_a_turn_of_queries_goes_out_in_one_call_as_separate_padded_datagrams() -> None:
    names = [f'h{n}.example' for n in range(20)] + [f'{"long" * 10}{n}.sub.example' for n in range(20)]
    with _Responder() as responder:
        engine = UdpEngine(responder.server, timeout=1.0)
        answers = _ask(engine, names)
    assert [answer.values for answer in answers] == [('192.0.2.1',)] * 40
    assert engine.segmented and engine.sent == 40
    queries = _queries(responder.datagrams)
    assert sorted(str(q.question[0].name) for q in queries) == sorted(name + '.' for name in names)
    assert len({q.id for q in queries}) == 40
    # padded to the longest query of the turn: all the same size, each with one Padding option
    assert len({len(data) for data in responder.datagrams}) == 1
    assert all([option.otype for option in q.options] == [dns.edns.PADDING] for q in queries)
    assert all(q.payload == 1232 and not q.flags & dns.flags.RD for q in queries)


def test_a_query_alone_and_a_large_window_are_sent_unpadded_one_by_one() -> None:
    with _Responder() as responder:
        [alone] = _ask(UdpEngine(responder.server, timeout=1.0), ['one.example'])
        wide = UdpEngine(responder.server, timeout=1.0, window=128)
        answers = _ask(wide, [f'h{n}.example' for n in range(10)])
    assert alone.values == ('192.0.2.1',) and [a.values for a in answers] == [('192.0.2.1',)] * 10
    assert not wide.segmented  # 128 in flight: single datagrams (see UdpEngine._flush)
    assert all(not q.options for q in _queries(responder.datagrams))
    assert len(responder.datagrams) == 11


class _NoSegments:
    """A socket whose kernel refuses UDP_SEGMENT (as before Linux 4.18)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.refused = 0

    def sendmsg(self, *_: object) -> int:
        self.refused += 1
        raise OSError(errno.EINVAL, 'Invalid argument')

    def __getattr__(self, name: str) -> object:
        return getattr(self._sock, name)


def test_a_kernel_without_udp_segment_gets_the_same_queries_one_by_one() -> None:
    wrapped: list[_NoSegments] = []

    def refuse(engine: UdpEngine) -> None:
        wrapped.append(_NoSegments(engine._sock))  # type: ignore[arg-type]
        engine._sock = wrapped[0]  # type: ignore[assignment]
        engine.segmented = True

    names = [f'h{n}.example' for n in range(30)]
    with _Responder() as responder:
        engine = UdpEngine(responder.server, timeout=1.0)
        answers = _ask(engine, names, refuse)
    assert [answer.values for answer in answers] == [('192.0.2.1',)] * 30
    assert wrapped[0].refused == 1 and not engine.segmented  # tried once, then never again
    assert engine.sent == 30 and len(responder.datagrams) == 30  # nothing lost, nothing sent twice
    assert all(not q.options for q in _queries(responder.datagrams))
