"""PowerMTA queue collector against SYNTHETIC API responses (tests/agent/data/powermta/) served on loopback."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from mailinfra_agent.contract import Contract, load_contract
from mailinfra_agent.queue.base import QUEUE_NAMES, CollectorError, StreamQueue
from mailinfra_agent.queue.powermta import PowerMtaQueueCollector, parse_status, safe_url, top_domains
from tests.agent.powermta_server import DATA, FakePowerMta, Route, fake_powermta


@pytest.fixture(scope='module')
def contract() -> Contract:
    return load_contract(DATA / 'contract.json')


@pytest.fixture
def pmta() -> Iterator[FakePowerMta]:
    with fake_powermta() as fake:
        yield fake


def by_stream(queues: list[StreamQueue]) -> dict[str, StreamQueue]:
    assert len({q.stream for q in queues}) == len(queues)
    return {q.stream: q for q in queues}


def test_streams_from_the_queues_page(contract: Contract, pmta: FakePowerMta) -> None:
    streams = by_stream(PowerMtaQueueCollector(contract, pmta.url).collect())
    assert list(streams) == ['transactional', 'marketing', 'unknown']
    assert pmta.requests == ['/status?format=xml', '/queues?format=xml']

    tx = streams['transactional']
    assert tx.instance == 'pmta'
    assert set(tx.messages) == set(QUEUE_NAMES)
    assert dict(tx.messages) == {'maildrop': 0, 'incoming': 0, 'active': 307, 'deferred': 250, 'hold': 0}
    assert dict(tx.deferred_by_isp) == {'gmail': 200, 'yahoo': 50}
    assert dict(tx.recipient_domains) == {'gmail.queue': 500, 'yahoo.queue': 50, 'example.org': 7}
    assert tx.oldest_age_seconds == {} and tx.deferral_reasons == {}

    marketing = streams['marketing']
    assert dict(marketing.messages) == {'maildrop': 0, 'incoming': 0, 'active': 0, 'deferred': 845, 'hold': 150}
    # web.de is one of the gmx_webde provider's recipient domains; example.com belongs to no provider.
    assert dict(marketing.deferred_by_isp) == {'gmail': 800, 'gmx_webde': 40, 'other': 5}
    assert sum(marketing.deferred_by_isp.values()) == marketing.messages['deferred']

    # A virtual MTA the contract does not know: counted, not lost.
    assert streams['unknown'].messages['active'] == 11
    total = sum(sum(q.messages.values()) for q in streams.values())
    assert total == parse_status((DATA / 'status.xml').read_bytes()) == 1563


def test_values_as_attributes(contract: Contract, pmta: FakePowerMta) -> None:
    pmta.routes['/queues'] = Route('queues-attributes.xml')
    streams = by_stream(PowerMtaQueueCollector(contract, pmta.url).collect())
    assert streams['transactional'].messages['deferred'] == 300
    assert dict(streams['transactional'].deferred_by_isp) == {'gmail': 300}
    assert streams['marketing'].messages['active'] == 25


def test_no_queue_gives_every_stream_at_zero(contract: Contract, pmta: FakePowerMta) -> None:
    pmta.routes['/queues'] = Route('queues-empty.xml')
    streams = by_stream(PowerMtaQueueCollector(contract, pmta.url).collect())
    assert list(streams) == ['transactional', 'marketing']
    assert all(sum(q.messages.values()) == 0 and not q.recipient_domains for q in streams.values())


def test_top_domains_are_bounded(contract: Contract, pmta: FakePowerMta) -> None:
    streams = by_stream(PowerMtaQueueCollector(contract, pmta.url, top=2).collect())
    assert dict(streams['marketing'].recipient_domains) == {'gmail.queue': 800, 'microsoft.queue': 150, 'other': 45}
    assert top_domains({'a': 1, 'b': 1, 'c': 3}, 1) == {'c': 3, 'other': 2}
    assert top_domains({'a': 1}, 5) == {'a': 1}


@pytest.mark.parametrize(
    ('path', 'file', 'message'),
    [
        ('/queues', 'malformed.xml', 'not well-formed XML'),
        ('/status', 'malformed.xml', 'not well-formed XML'),
        ('/queues', 'queues-bad-count.xml', "is not a whole number: 'lots'"),
        ('/queues', 'queues-no-name.xml', 'no name of the form domain/vmta'),
        ('/status', 'doctype.xml', 'document type declarations are not accepted'),
        ('/status', 'not-pmta.xml', 'root element is <html>, not <rsp>'),
        ('/status', 'queues.xml', 'no rsp/data/status/queue/smtp element'),
    ],
)
def test_bad_answers_are_malformed(contract: Contract, pmta: FakePowerMta, path: str, file: str, message: str) -> None:
    pmta.routes[path] = Route(file)
    with pytest.raises(CollectorError) as raised:
        PowerMtaQueueCollector(contract, pmta.url).collect()
    assert raised.value.kind == 'malformed'
    assert message in str(raised.value)


@pytest.mark.parametrize('encoding', ['utf-16', 'utf-16-be', 'utf-8'])
def test_a_doctype_in_any_encoding_is_refused(encoding: str) -> None:
    """The bytes ``<!DOCTYPE`` are not in a UTF-16 document: entity declarations reached the parser (1 MB of
    expansion per reference here; the answer was 1)."""
    declaration = '<?xml version="1.0" encoding="{}"?>'.format(encoding.upper().removesuffix('-BE'))
    entities = (
        '<!ENTITY a "'
        + 'x' * 1000
        + '">'
        + ''.join(
            f'<!ENTITY {name} "{("&" + previous + ";") * 10}">' for previous, name in zip('abc', 'bcd', strict=True)
        )
    )
    status = '<data><status><queue><smtp><rcp>1</rcp></smtp></queue></status></data>'
    text = f'{declaration}<!DOCTYPE rsp [{entities}]><rsp>{status}<x>&d;</x></rsp>'
    bom = b'\xfe\xff' if encoding == 'utf-16-be' else b''
    with pytest.raises(CollectorError) as raised:
        parse_status(bom + text.encode(encoding))
    assert raised.value.kind == 'malformed'
    assert 'document type declarations are not accepted' in str(raised.value)
    assert parse_status(bom + f'{declaration}<rsp>{status}</rsp>'.encode(encoding)) == 1


def test_http_500(contract: Contract, pmta: FakePowerMta) -> None:
    pmta.routes['/queues'] = Route(None, status=500)
    with pytest.raises(CollectorError) as raised:
        PowerMtaQueueCollector(contract, pmta.url).collect()
    assert raised.value.kind == 'http_status'
    assert str(raised.value) == f'{pmta.url}/queues: HTTP status 500'


def test_timeout(contract: Contract, pmta: FakePowerMta) -> None:
    pmta.routes['/status'] = Route('status.xml', delay=2.0)
    with pytest.raises(CollectorError) as raised:
        PowerMtaQueueCollector(contract, pmta.url, timeout=0.3).collect()
    assert raised.value.kind == 'timeout'
    assert 'no answer within 0.3 s' in str(raised.value)


def test_the_timeout_holds_for_the_whole_collection(contract: Contract, pmta: FakePowerMta) -> None:
    pmta.routes['/status'] = Route('status.xml', delay=0.6)
    pmta.routes['/queues'] = Route('queues.xml', delay=0.6)
    with pytest.raises(CollectorError) as raised:
        PowerMtaQueueCollector(contract, pmta.url, timeout=1.0).collect()
    assert raised.value.kind == 'timeout'
    assert str(raised.value).startswith(f'{pmta.url}/queues: no answer')


def test_connection_refused(contract: Contract) -> None:
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]  # bound, never listening: connections are refused
        with pytest.raises(CollectorError) as raised:
            PowerMtaQueueCollector(contract, f'http://127.0.0.1:{port}').collect()
    assert raised.value.kind == 'connect'
    assert str(raised.value) == f'http://127.0.0.1:{port}/status: connection refused'


def test_credentials_in_the_url_are_refused_and_never_shown(contract: Contract, pmta: FakePowerMta) -> None:
    url = f'http://monitor:s3cret-pw@127.0.0.1:{pmta.port}'
    with pytest.raises(CollectorError) as raised:
        PowerMtaQueueCollector(contract, url).collect()
    assert raised.value.kind == 'config'
    assert str(raised.value) == f'http://127.0.0.1:{pmta.port}: credentials in the URL are not accepted'
    assert pmta.requests == []
    assert safe_url(url + '/x?token=1') == f'http://127.0.0.1:{pmta.port}/x'


@pytest.mark.parametrize('url', ['file:///etc/passwd', 'ftp://127.0.0.1/', 'http://'])
def test_only_http_urls(contract: Contract, url: str) -> None:
    with pytest.raises(CollectorError) as raised:
        PowerMtaQueueCollector(contract, url).collect()
    assert raised.value.kind == 'config'
    assert str(raised.value).endswith('not an http(s) URL')
