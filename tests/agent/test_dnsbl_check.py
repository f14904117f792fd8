"""The blocklist checker against a real Knot on loopback serving test copies of the zones (the real zone
names, answered only by our server: no query leaves the machine), plus two stand-ins for broken resolvers
(one answers SERVFAIL, one never answers). Then the ``mailinfra-agent dnsbl check`` command: exit codes,
JSON, the metrics textfile, the DQS key redaction and the listing history on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.message
import dns.rcode
import pytest

from mailinfra_agent.cli import main
from mailinfra_agent.contract import (
    Blocklists,
    BlocklistSubjects,
    Contract,
    Host,
    QueueThresholds,
    Store,
    Thresholds,
    dump_contract,
)
from mailinfra_agent.contract.blocklists import zone_to_contract
from mailinfra_agent.dnsbl import (
    KEY_PLACEHOLDER,
    Report,
    check,
    custom_zone,
    load_catalogue,
    public_resolvers_in,
    subjects_from,
)
from mailinfra_agent.dnsbl.check import _Members, check_async, redact
from mailinfra_agent.store import connect, migrate
from mailinfra_agent.store.listings import history

from ..dnsserver.knot import KnotError, KnotNotInstalled, KnotServer
from .test_store import Postgres, postgres  # noqa: F401  (the session's real PostgreSQL)

DQS_KEY = 'k3yk3yk3ysecret0123'
SOA = '@ 3600 IN SOA ns.test. hostmaster.test. {serial} 3600 600 86400 60\n@ 3600 IN NS ns.test.\n'


def zone_text(records: dict[str, list[str]], serial: int = 1) -> str:
    lines = [SOA.format(serial=serial)]
    for name, values in records.items():
        lines += [f'{name} 60 IN A {value}' for value in values]
    return '\n'.join(lines) + '\n'


ZONES: dict[str, dict[str, list[str]]] = {
    'zen.spamhaus.org': {
        '2.0.0.127': ['127.0.0.2', '127.0.0.4', '127.0.0.10'],
        '10.2.0.192': ['127.0.0.2'],  # 192.0.2.10: SBL
        '11.2.0.192': ['127.255.255.254'],  # 192.0.2.11: refused, public resolver
        '12.2.0.192': ['198.51.100.1'],  # 192.0.2.12: outside 127/8 (hijacking resolver)
        '13.2.0.192': ['127.0.0.99'],  # 192.0.2.13: undocumented
        # 2001:db8::1: CSS
        '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2': ['127.0.0.3'],
    },
    'zen.dq.spamhaus.net': {f'2.0.0.127.{DQS_KEY}': ['127.0.0.2'], f'14.2.0.192.{DQS_KEY}': ['127.0.0.4']},
    'authbl.dq.spamhaus.net': {f'2.0.0.127.{DQS_KEY}': ['127.0.0.20'], f'10.2.0.192.{DQS_KEY}': ['127.0.0.20']},
    'dbl.spamhaus.org': {
        'dbltest.com': ['127.0.1.2'],
        'listed.example': ['127.0.1.4'],
        'ipquery.example': ['127.0.1.255'],
    },
    'multi.uribl.com': {
        'test.uribl.com': ['127.0.0.14'],
        'black.example': ['127.0.0.2'],
        'refused.example': ['127.0.0.1'],
    },
    'multi.surbl.org': {'test.surbl.org': ['127.0.0.8'], 'phish.example': ['127.0.0.24']},
    'score.senderscore.com': {'10.2.0.192': ['127.0.4.87']},
    'list.dnswl.org': {'2.0.0.127': ['127.0.10.0'], '10.2.0.192': ['127.0.5.2']},
    'bl.blocklist.de': {'2.0.0.127': ['127.0.0.2']},  # documented test answer is 127.0.0.15: not working
    'broken.test': {'5.2.0.192': ['127.0.0.2']},  # no test point entry: not working
    'wild.test': {'*': ['127.0.0.2']},  # lists everything, the never-listed point included
    # NXDOMAIN rewritten to an address (the second wildcard covers names beside the test point's labels)
    'hijack.test': {'2.0.0.127': ['127.0.0.2'], '*': ['192.0.2.53'], '*.0.0.127': ['192.0.2.53']},
}


@pytest.fixture(scope='module')
def knot() -> Iterator[KnotServer]:
    try:
        server = KnotServer({name: zone_text(records) for name, records in ZONES.items()}).start()
    except KnotNotInstalled as error:
        pytest.fail(f'{error}. The blocklist tests need a real authoritative server.', pytrace=False)
    except KnotError as error:
        pytest.fail(f'Knot DNS did not start: {error}', pytrace=False)
    with server:
        yield server


class Stub:
    """A UDP "resolver" on loopback that answers SERVFAIL to everything, or never answers."""

    def __init__(self, silent: bool) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(('127.0.0.1', 0))
        self.sock.settimeout(0.2)
        self.silent = silent
        self.received = 0
        self.stop = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    @property
    def nameserver(self) -> str:
        return f'127.0.0.1:{self.sock.getsockname()[1]}'

    def serve(self) -> None:
        while not self.stop:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                continue
            self.received += 1
            if not self.silent:
                response = dns.message.make_response(dns.message.from_wire(data))
                response.set_rcode(dns.rcode.SERVFAIL)
                self.sock.sendto(response.to_wire(), peer)

    def close(self) -> None:
        self.stop = True
        self.thread.join()
        self.sock.close()


@pytest.fixture
def servfail() -> Iterator[Stub]:
    stub = Stub(silent=False)
    yield stub
    stub.close()


@pytest.fixture
def silent() -> Iterator[Stub]:
    stub = Stub(silent=True)
    yield stub
    stub.close()


def zones(*names: str) -> list[Any]:
    catalogue = load_catalogue()
    found = []
    for name in names:
        zone = catalogue.get(name)
        if zone is None:
            zone = custom_zone(
                zone=name,
                kind='ip',
                operator='test',
                decoder='codes',
                codes={'127.0.0.2': 'listed'},
                test_point='2.0.0.127',
            )
        found.append(zone)
    return found


def by_pair(report: Report) -> dict[tuple[str, str], Any]:
    return {(result.subject, result.zone): result for result in report.results}


def test_codes_listings_errors_nxdomain_and_ipv6(knot: KnotServer) -> None:
    subjects = subjects_from(['192.0.2.10', '192.0.2.11', '192.0.2.12', '192.0.2.13', '192.0.2.99', '2001:db8::1'])
    report = check(subjects, zones('zen.spamhaus.org'), [knot.nameserver], timeout=1)
    results = by_pair(report)
    zen = 'zen.spamhaus.org'
    assert results['192.0.2.10', zen].status == 'listed'
    assert results['192.0.2.10', zen].listings[0].meaning.startswith('SBL')
    assert results['192.0.2.10', zen].query == '10.2.0.192.zen.spamhaus.org'
    assert (results['192.0.2.11', zen].status, results['192.0.2.11', zen].errors[0].code) == ('error', 'open_resolver')
    assert (results['192.0.2.12', zen].status, results['192.0.2.12', zen].errors[0].code) == ('error', 'not_loopback')
    assert results['192.0.2.13', zen].errors[0].code == 'undocumented'
    assert results['192.0.2.99', zen].status == 'clean'  # NXDOMAIN
    assert results['2001:db8::1', zen].listings[0].meaning.startswith('CSS')
    (status,) = report.zones
    assert status.test == 'ok' and not status.working  # error answers make the zone "not working"
    assert dict(status.errors) == {'open_resolver': 1, 'not_loopback': 1, 'undocumented': 1}
    assert report.exit_code == 1 and [r.subject for r in report.listed] == ['192.0.2.10', '2001:db8::1']
    json.dumps(report.to_dict())  # JSON-serialisable


def test_domain_zones_bitmasks_scores_and_allowlists(knot: KnotServer) -> None:
    subjects = subjects_from(
        ['192.0.2.10'], ['www.listed.example', 'ipquery.example', 'black.example', 'refused.example', 'phish.example']
    )
    names = ('dbl.spamhaus.org', 'multi.uribl.com', 'multi.surbl.org', 'score.senderscore.com', 'list.dnswl.org')
    report = check(subjects, zones(*names), [knot.nameserver], timeout=1)
    results = by_pair(report)
    assert results['listed.example', 'dbl.spamhaus.org'].status == 'listed'  # reduced to the registered domain
    assert results['ipquery.example', 'dbl.spamhaus.org'].errors[0].code == 'ip_query'
    assert results['black.example', 'multi.uribl.com'].status == 'listed'
    assert results['refused.example', 'multi.uribl.com'].errors[0].code == 'refused'
    surbl = results['phish.example', 'multi.surbl.org']
    assert surbl.status == 'listed' and len(surbl.listings) == 2
    score = results['192.0.2.10', 'score.senderscore.com']
    assert (score.status, score.score) == ('score', 87)
    statuses = {zone.zone: zone for zone in report.zones}
    # dnswl's test point answers category 10 (blocked): the allowlist is not working here, its answer untrusted
    assert statuses['list.dnswl.org'].test == 'failed'
    assert results['192.0.2.10', 'list.dnswl.org'].status == 'untrusted'
    assert statuses['score.senderscore.com'].test == 'none' and statuses['score.senderscore.com'].working
    assert not any(
        r.status == 'listed' for r in report.results if r.zone in ('score.senderscore.com', 'list.dnswl.org')
    )


def test_zones_not_working_here_are_never_trusted(knot: KnotServer) -> None:
    subjects = subjects_from(['192.0.2.5', '192.0.2.10'])
    report = check(subjects, zones('broken.test', 'wild.test', 'hijack.test', 'bl.blocklist.de'), [knot.nameserver])
    statuses = {zone.zone: zone for zone in report.zones}
    assert all(not zone.working and zone.test == 'failed' for zone in statuses.values())
    assert 'not listed' in statuses['broken.test'].message
    assert 'never-listed point' in statuses['wild.test'].message
    assert 'outside 127.0.0.0/8' in statuses['hijack.test'].message
    assert 'expected 127.0.0.15' in statuses['bl.blocklist.de'].message
    assert {result.status for result in report.results} == {'untrusted'}
    assert not report.listed and report.exit_code == 2
    assert all('zone not working here' in result.message for result in report.results)


def test_refused_servfail_and_timeout_are_zone_errors(knot: KnotServer, servfail: Stub, silent: Stub) -> None:
    subjects = subjects_from(['192.0.2.10'])
    refused = check(subjects, zones('bl.nordspam.com'), [knot.nameserver], timeout=0.5)  # not served: REFUSED
    assert refused.zones[0].errors == {'refused': 2} and refused.results[0].status == 'untrusted'
    failing = check(subjects, zones('zen.spamhaus.org'), [servfail.nameserver], timeout=0.5, retries=0)
    assert failing.zones[0].errors == {'servfail': 2} and 'SERVFAIL' in failing.zones[0].message
    timing_out = check(subjects, zones('zen.spamhaus.org'), [silent.nameserver], timeout=0.2, retries=1)
    assert timing_out.zones[0].errors == {'timeout': 2} and timing_out.exit_code == 2
    assert silent.received == 4  # test point and never-listed point, each asked twice (one retry)
    # a second nameserver takes over when the first fails
    fallback = check(subjects, zones('zen.spamhaus.org'), [silent.nameserver, knot.nameserver], timeout=0.2, retries=0)
    assert fallback.results[0].status == 'listed' and fallback.zones[0].working


def test_dqs_key_routes_spamhaus_through_dqs_and_is_never_shown(knot: KnotServer) -> None:
    subjects = subjects_from(['192.0.2.14', '192.0.2.10'])
    report = check(subjects, zones('zen.spamhaus.org', 'authbl.spamhaus.org'), [knot.nameserver], dqs_key=DQS_KEY)
    results = by_pair(report)
    assert results['192.0.2.14', 'zen.spamhaus.org'].status == 'listed'
    assert results['192.0.2.10', 'authbl.spamhaus.org'].listings[0].code == '127.0.0.20'
    assert results['192.0.2.14', 'zen.spamhaus.org'].query == f'14.2.0.192.{KEY_PLACEHOLDER}.zen.dq.spamhaus.net'
    assert DQS_KEY not in json.dumps(report.to_dict())
    # without a key the DQS-only zone is skipped with the reason, and zen uses the public mirror
    keyless = check(subjects, zones('zen.spamhaus.org', 'authbl.spamhaus.org'), [knot.nameserver])
    skipped = {r.status for r in keyless.results if r.zone == 'authbl.spamhaus.org'}
    assert skipped == {'skipped'} and any('DQS key' in warning for warning in keyless.warnings)
    assert keyless.exit_code == 1  # 192.0.2.10 is listed in the public zen copy


def test_public_resolvers_are_warned_about_loudly() -> None:
    warnings = public_resolvers_in(['127.0.0.1', '8.8.8.8', '[2606:4700:4700::1111]:53'])
    assert len(warnings) == 2 and 'Google' in warnings[0] and 'Cloudflare' in warnings[1]
    # nothing is asked when there is nothing to check: the warning still comes (UDP connect sends nothing)
    import asyncio

    report = asyncio.run(check_async([], [], ['9.9.9.9']))
    assert any('public resolver (Quad9)' in warning for warning in report.warnings)


def test_concurrency_rate_limit_and_progress(knot: KnotServer) -> None:
    subjects = subjects_from([f'192.0.2.{n}' for n in range(1, 41)])
    seen: list[tuple[int, int]] = []
    report = check(
        subjects,
        zones('zen.spamhaus.org'),
        [knot.nameserver],
        concurrency=4,
        rate_limit=200,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert len(report.results) == 40 and seen[-1] == (42, 42)
    assert [done for done, _ in seen] == list(range(1, 43))


def test_bad_nameserver_text_is_a_value_error() -> None:
    with pytest.raises(ValueError, match='expected an IP address'):
        check([], [], ['resolver.example'])


def test_batched_paced_and_ready_client_runs_give_the_same_results(knot: KnotServer) -> None:
    import asyncio

    from mailinfra_agent.dns.client import DnsClient, UdpEngine, parse_server

    subjects = subjects_from(['192.0.2.10', '192.0.2.11', '192.0.2.99', '2001:db8::1'], ['listed.example'])
    subjects += subjects[:1]  # a duplicate subject: its pair is reported twice, asked once
    names = ('zen.spamhaus.org', 'dbl.spamhaus.org')
    seen: list[tuple[int, int]] = []
    batched = check(subjects, zones(*names), [knot.nameserver], progress=lambda done, total: seen.append((done, total)))
    paced = check(subjects, zones(*names), [knot.nameserver], rate_limit=1000)
    assert batched.results == paced.results and batched.zones == paced.zones
    assert len(batched.results) == 6 and [r.status for r in batched.results[:2]] == ['listed', 'error']
    assert seen == [(done, 10) for done in range(1, 11)]  # 4 test points + 6 pairs, each counted once

    async def with_client() -> tuple[Report, list[tuple[str, str, str]]]:
        engine = UdpEngine(parse_server(knot.nameserver), recursion=True)
        await engine.start()
        try:
            client = DnsClient(engine, (), resolver=engine)
            return await check_async(subjects, zones(*names), client), client.stats.questions
        finally:
            engine.close()

    ready, questions = asyncio.run(with_client())
    assert ready.results == batched.results
    assert len(questions) == len(set(questions)) == 9


def test_the_next_nameserver_answers_only_what_the_first_failed(knot: KnotServer, servfail: Stub) -> None:
    subjects = subjects_from(['192.0.2.10', '192.0.2.11', '192.0.2.99'])
    direct = check(subjects, zones('zen.spamhaus.org'), [knot.nameserver])
    fallback = check(subjects, zones('zen.spamhaus.org'), [servfail.nameserver, knot.nameserver], retries=0)
    assert fallback.results == direct.results and fallback.zones == direct.zones
    assert servfail.received == 5  # 2 test points + 3 pairs, each asked once there
    answered = check(subjects, zones('zen.spamhaus.org'), [knot.nameserver, servfail.nameserver])
    assert answered.results == direct.results and servfail.received == 5  # never asked: the first one answered


# -- the command --------------------------------------------------------------------------------------------


def contract(tmp_path: Path, nameserver: str, names: tuple[str, ...], store: Store | None = None, **extra: Any) -> Path:
    blocklists = Blocklists(
        interval=900,
        zones=tuple(zone_to_contract(zone) for zone in zones(*names)),
        nameservers=(nameserver,),
        subjects=BlocklistSubjects(ips=('192.0.2.10', '192.0.2.99'), domains=('listed.example',)),
        textfile=str(tmp_path / 'mailinfra_dnsbl.prom'),
        **extra,
    )
    value = Contract(
        version=1,
        host=Host('mon1', 'mon1.example', ('monitoring',), None),
        streams=(),
        isps=(),
        ips=(),
        thresholds=Thresholds(queue=QueueThresholds(1, 2, 3, 4)),
        blocklists=blocklists,
        store=store or Store('sqlite', path=str(tmp_path / 'agent.db')),
    )
    path = tmp_path / 'agent.json'
    path.write_text(json.dumps(dump_contract(value)), encoding='utf-8')
    with connect(value.store) as db:
        migrate(db)
    return path


def run_command(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(['dnsbl', 'check', *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_command_exit_codes_json_and_textfile(
    knot: KnotServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = contract(tmp_path, knot.nameserver, ('zen.spamhaus.org', 'dbl.spamhaus.org'))
    code, out, _ = run_command(capsys, '--contract', str(path), '--format', 'json')
    assert code == 1
    data = json.loads(out)
    assert {(r['subject'], r['zone']) for r in data['listed']} == {
        ('192.0.2.10', 'zen.spamhaus.org'),
        ('listed.example', 'dbl.spamhaus.org'),
    }
    assert data['listed_since'] and data['exit_code'] == 1
    metrics = (tmp_path / 'mailinfra_dnsbl.prom').read_text()
    assert (
        'mailinfra_dnsbl_listed{code="127.0.0.2",severity="critical",subject="192.0.2.10",'
        'subject_group="192.0.2.10",subject_kind="ip",zone="zen.spamhaus.org"} 1.0' in metrics
    )
    assert 'mailinfra_dnsbl_listed_since_timestamp_seconds{subject="192.0.2.10"' in metrics
    assert 'mailinfra_dnsbl_zone_working{zone="zen.spamhaus.org"} 1.0' in metrics
    assert 'mailinfra_dnsbl_subjects{subject_kind="domain"} 1.0' in metrics
    assert 'mailinfra_dnsbl_run_success 1.0' in metrics
    # ad-hoc subjects: clean is 0, and the contract's textfile is left alone
    before = (tmp_path / 'mailinfra_dnsbl.prom').stat().st_mtime_ns
    code, out, _ = run_command(capsys, '--contract', str(path), '--ip', '192.0.2.99')
    assert code == 0 and '0 listings' in out
    assert (tmp_path / 'mailinfra_dnsbl.prom').stat().st_mtime_ns == before
    code, out, _ = run_command(capsys, '--contract', str(path), '--ip', '192.0.2.10')
    assert code == 1 and 'LISTED' in out and 'delist: https://check.spamhaus.org/' in out


def test_command_could_not_check_is_exit_2_with_metrics(
    silent: Stub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = contract(tmp_path, silent.nameserver, ('zen.spamhaus.org',))
    code, out, err = run_command(capsys, '--contract', str(path), '--timeout', '0.2', '--retries', '0')
    assert code == 2 and 'ZONE PROBLEMS' in out and 'Traceback' not in err
    metrics = (tmp_path / 'mailinfra_dnsbl.prom').read_text()
    assert 'mailinfra_dnsbl_zone_working{zone="zen.spamhaus.org"} 0.0' in metrics
    assert 'mailinfra_dnsbl_zone_errors{error="timeout",zone="zen.spamhaus.org"} 2.0' in metrics
    assert 'mailinfra_dnsbl_run_success 0.0' in metrics
    assert 'mailinfra_dnsbl_listed{' not in metrics
    code, _, err = run_command(capsys, '--contract', str(tmp_path / 'missing.json'))
    assert code == 2 and 'cannot read the contract' in err


def test_command_dqs_key_from_a_0600_file_never_printed(
    knot: KnotServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv('MAILINFRA_DQS_KEY', raising=False)
    key_file = tmp_path / 'dqs.key'
    key_file.write_text(DQS_KEY + '\n')
    key_file.chmod(0o600)
    path = contract(tmp_path, knot.nameserver, ('zen.spamhaus.org', 'authbl.spamhaus.org'), dqs_key_file=str(key_file))
    code, out, err = run_command(capsys, '--contract', str(path), '--format', 'json')
    assert code == 1 and DQS_KEY not in out + err
    assert KEY_PLACEHOLDER in out
    assert DQS_KEY not in (tmp_path / 'mailinfra_dnsbl.prom').read_text()
    key_file.chmod(0o644)  # readable by others: refused, clear message, DQS-only zone not queried
    code, out, err = run_command(capsys, '--contract', str(path))
    assert code == 1 and 'make it 0600' in err and DQS_KEY not in out + err
    monkeypatch.setenv('MAILINFRA_DQS_KEY', DQS_KEY)  # the environment wins
    code, out, err = run_command(capsys, '--contract', str(path), '--format', 'json')
    assert '"status": "skipped"' not in out and DQS_KEY not in out + err


@pytest.mark.parametrize('backend', ['sqlite', 'postgresql'])
def test_history_first_seen_last_seen_cleared(
    backend: str, knot: KnotServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest
) -> None:
    store = None
    if backend == 'postgresql':
        server: Postgres = request.getfixturevalue('postgres')
        with connect(server.store('postgres')) as admin:
            admin.execute('DROP DATABASE IF EXISTS dnsbl_history')
            admin.execute('CREATE DATABASE dnsbl_history')
        store = server.store('dnsbl_history')
    path = contract(tmp_path, knot.nameserver, ('zen.spamhaus.org',), store=store)
    the_store = store or Store('sqlite', path=str(tmp_path / 'agent.db'))
    assert run_command(capsys, '--contract', str(path))[0] == 1
    with connect(the_store) as db:
        (first,) = [(h.subject, h.cleared) for h in history(db) if h.zone == 'zen.spamhaus.org']
    assert first == ('192.0.2.10', None)
    assert run_command(capsys, '--contract', str(path))[0] == 1  # still listed: same listing, later last_seen
    with connect(the_store) as db:
        rows = history(db)
    assert len(rows) == 1 and rows[0].last_seen >= rows[0].first_seen
    records = dict(ZONES['zen.spamhaus.org'])
    del records['10.2.0.192']
    try:
        knot.set_zones({**{n: zone_text(r) for n, r in ZONES.items()}, 'zen.spamhaus.org': zone_text(records, 2)})
        assert run_command(capsys, '--contract', str(path))[0] == 0
        with connect(the_store) as db:
            rows = history(db)
        assert len(rows) == 1 and rows[0].cleared is not None  # cleared
        metrics = (tmp_path / 'mailinfra_dnsbl.prom').read_text()
        assert 'mailinfra_dnsbl_listed{' not in metrics
    finally:
        knot.set_zones({n: zone_text(r, 3) for n, r in ZONES.items()})


def test_a_run_that_could_not_happen_still_writes_run_success_0(tmp_path: Path) -> None:
    from mailinfra_agent.dnsbl.metrics import write_textfile

    target = tmp_path / 'x.prom'
    write_textfile(None, target, now=1.0)
    text = target.read_text()
    assert 'mailinfra_dnsbl_run_success 0.0' in text and 'mailinfra_dnsbl_last_run_timestamp_seconds 1.0' in text
    assert not list(tmp_path.glob('*.tmp*'))  # written atomically, nothing left behind


def test_the_dqs_key_is_redacted_in_any_letter_case() -> None:
    key = 'K3yMixedCase0123456789ab'
    text = f'10.2.0.192.{key.lower()}.zen.dq.spamhaus.net; 10.2.0.192.{key.upper()}.zen.dq.spamhaus.net; {key}'
    assert redact(text, key) == '; '.join(
        ['10.2.0.192.<dqs-key>.zen.dq.spamhaus.net', '10.2.0.192.<dqs-key>.zen.dq.spamhaus.net', '<dqs-key>']
    )
    assert redact('a.b+c.example', 'b+c') == 'a.<dqs-key>.example'  # the key is text, never a pattern
    assert redact(text, None) == text


def test_host_names_go_to_the_zones_that_list_them_whatever_the_zone_order() -> None:
    """Each zone's subjects depend on its host_names too: a zone without them never gets a name below its registered
    domain, and the DBL always does, whichever of the two comes first."""
    dbl = load_catalogue().get('dbl.spamhaus.org')
    assert dbl is not None and dbl.host_names
    other = custom_zone(zone='aaa.test', kind='domain', operator='x', decoder='codes', codes={'127.0.0.2': 'x'})
    subjects = subjects_from([], ['news.brand.example'])
    for zones in ((other, dbl), (dbl, other)):
        members = _Members(subjects)
        asked = {zone.zone: [prefix for _, prefix in members.of(zone)] for zone in zones}
        assert asked == {'aaa.test': ['brand.example'], 'dbl.spamhaus.org': ['brand.example', 'news.brand.example']}
