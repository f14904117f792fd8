"""DnsClient routing and caching (the engines are stand-ins that record what they were asked)."""

from __future__ import annotations

import asyncio

from mailinfra_agent.dns.client import Answer, DnsClient, Server


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
