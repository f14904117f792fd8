"""``mailinfra-agent dns-drift``: the monitoring host's expected records against a real Knot on loopback."""

from __future__ import annotations

import dataclasses
import json
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailinfra_agent import contract as c
from mailinfra_agent.cli import main as agent_main
from mailinfra_agent.dns.client import Answer
from mailinfra_agent.drift import compare
from mailinfra_iac import parse_spec
from mailinfra_iac.facts.records import Record
from mailinfra_iac.render.base import RenderContext
from mailinfra_iac.render.rolevars.agent import host_contract
from mailinfra_iac.render.zonefile import zone_text

from ..conftest import AS_OF, TEST_DKIM
from ..dnscheck.conftest import start_knot
from ..dnsserver.knot import KnotServer
from ..render.test_host_roles import SEPARATE

ZONE = 'testco.example'
REVERSE = '2.0.192.in-addr.arpa'
DRIFTED = 'news.testco.example'
NAME_TYPES = {'CNAME', 'PTR', 'NS', 'MX'}


def _contract(host: str = 'mon1') -> c.Contract:
    spec = parse_spec(SEPARATE, 'spec.yml', as_of=AS_OF)
    return host_contract(RenderContext(spec.deployment, spec.facts, dkim=TEST_DKIM), host)


def _zones(
    expectations: tuple[c.DnsExpectation, ...], change: dict[tuple[str, str], tuple[str, ...]]
) -> dict[str, str]:
    """Zone files publishing the expectations, with ``change`` replacing some record sets."""
    records: dict[str, list[Record]] = {ZONE: [], REVERSE: []}
    for expected in expectations:
        zone = REVERSE if expected.name.endswith(REVERSE) else ZONE
        values = change.get((expected.name, expected.type), expected.values)
        if expected.type in NAME_TYPES:
            values = tuple(f'{value}.' for value in values)
        relative = '@' if expected.name == zone else expected.name.removesuffix('.' + zone)
        records[zone].append(Record(zone, relative, expected.type, values, 300, expected.check))
    extra = Record(ZONE, '@', 'TXT', ('google-site-verification=abc123',), 300, 'other')
    records[ZONE].append(extra)  # another TXT beside SPF is no drift
    return {zone: zone_text(zone, items, ['ns.testco.example'], 300) for zone, items in records.items()}


@pytest.fixture(scope='module')
def contract() -> c.Contract:
    return _contract()


@pytest.fixture(scope='module')
def knot(contract: c.Contract) -> Iterator[KnotServer]:
    server = start_knot(_zones(contract.dns_expectations, {}))
    try:
        yield server
    finally:
        server.stop()


def _write_contract(path: Path, contract: c.Contract) -> Path:
    path.write_text(c.dump_contract_json(contract))
    return path


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = agent_main(['dns-drift', *args])
    out, err = capsys.readouterr()
    return code, out, err


def _metrics(path: Path) -> dict[str, float]:
    values = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith('#'):
            key, _, value = line.rpartition(' ')
            values[key] = float(value)
    return values


def test_contract_expectations_for_the_monitoring_host_only(contract: c.Contract) -> None:
    checks = {expected.check for expected in contract.dns_expectations}
    assert {'spf', 'dkim', 'dmarc', 'ptr', 'mx', 'a', 'mta_sts', 'tls_rpt'} <= checks
    spf = next(e for e in contract.dns_expectations if e.name == DRIFTED and e.type == 'TXT')
    assert spf.values == ('v=spf1 ip4:192.0.2.20/31 -all',) and spf.check == 'spf'
    ptr = next(e for e in contract.dns_expectations if e.name == '10.2.0.192.in-addr.arpa')
    assert ptr.values == ('tx1.testco.example',)
    assert _contract('mta1').dns_expectations == ()
    text = c.dump_contract_json(contract)
    assert 'PRIVATE KEY' not in text
    assert c.load_contract(text).dns_expectations == contract.dns_expectations


def test_no_drift_on_the_published_zone(
    contract: c.Contract, knot: KnotServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    knot.set_zones(_zones(contract.dns_expectations, {}))
    path = _write_contract(tmp_path / 'agent.json', contract)
    prom = tmp_path / 'mailinfra_dns.prom'
    code, out, _ = _run(['--contract', str(path), '--nameserver', knot.nameserver, '--textfile', str(prom)], capsys)
    assert code == 0, out
    metrics = _metrics(prom)
    assert metrics['mailinfra_dns_check_success'] == 1
    ok = {key: value for key, value in metrics.items() if key.startswith('mailinfra_dns_record_ok{')}
    assert len(ok) == len(contract.dns_expectations) and set(ok.values()) == {1.0}


def test_one_drifted_record_is_reported_and_counted(
    contract: c.Contract, knot: KnotServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    knot.set_zones(_zones(contract.dns_expectations, {(DRIFTED, 'TXT'): ('v=spf1 ip4:198.51.100.9 -all',)}))
    try:
        path = _write_contract(tmp_path / 'agent.json', contract)
        prom = tmp_path / 'mailinfra_dns.prom'
        args = ['--contract', str(path), '--nameserver', knot.nameserver, '--textfile', str(prom)]
        code, out, _ = _run([*args, '--format', 'json'], capsys)
        assert code == 1
        document = json.loads(out)
        [drift] = document['drifted']
        assert (drift['name'], drift['type'], drift['check']) == (DRIFTED, 'TXT', 'spf')
        assert '198.51.100.9' in drift['reason'] and '192.0.2.20/31' in drift['reason']
        metrics = _metrics(prom)
        assert metrics[f'mailinfra_dns_record_ok{{check="spf",name="{DRIFTED}",type="TXT"}}'] == 0
        assert metrics['mailinfra_dns_record_ok{check="spf",name="testco.example",type="TXT"}'] == 1
        assert sum(1 for k, v in metrics.items() if k.startswith('mailinfra_dns_record_ok{') and v == 0) == 1
        assert metrics['mailinfra_dns_check_success'] == 1
        assert metrics['mailinfra_dns_check_last_run_timestamp_seconds'] > 0
        if shutil.which('promtool'):
            checked = subprocess.run(['promtool', 'check', 'metrics'], input=prom.read_bytes(), capture_output=True)
            assert checked.returncode == 0, checked.stderr
        code, out, _ = _run(args, capsys)
        assert code == 1 and f'DRIFT spf      TXT   {DRIFTED}' in out
    finally:
        knot.set_zones(_zones(contract.dns_expectations, {}))


def _closed_port() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return f'127.0.0.1:{sock.getsockname()[1]}'


def test_unreachable_resolver_is_could_not_check_with_metric(
    contract: c.Contract, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write_contract(tmp_path / 'agent.json', contract)
    prom = tmp_path / 'mailinfra_dns.prom'
    args = ['--contract', str(path), '--nameserver', _closed_port(), '--timeout', '0.2', '--textfile', str(prom)]
    code, _, err = _run(args, capsys)
    assert code == 2 and 'no resolver answered' in err
    assert _metrics(prom)['mailinfra_dns_check_success'] == 0


def test_second_resolver_used_when_the_first_is_down(
    contract: c.Contract, knot: KnotServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    knot.set_zones(_zones(contract.dns_expectations, {}))
    path = _write_contract(tmp_path / 'agent.json', contract)
    args = ['--contract', str(path), '--nameserver', _closed_port(), '--nameserver', knot.nameserver]
    code, out, _ = _run([*args, '--timeout', '0.2'], capsys)
    assert code == 0, out


def test_bad_contract_and_no_expectations_are_could_not_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / 'bad.json'
    bad.write_text('{"version": 1}')
    prom = tmp_path / 'm.prom'
    code, _, err = _run(['--contract', str(bad), '--textfile', str(prom)], capsys)
    assert code == 2 and 'bad.json' in err
    assert _metrics(prom)['mailinfra_dns_check_success'] == 0
    mta = _write_contract(tmp_path / 'mta.json', _contract('mta1'))
    code, _, err = _run(['--contract', str(mta), '--nameserver', _closed_port()], capsys)
    assert code == 2 and 'no DNS expectations' in err


def test_bad_nameserver_is_a_usage_error(
    contract: c.Contract, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write_contract(tmp_path / 'agent.json', contract)
    code, _, err = _run(['--contract', str(path), '--nameserver', 'resolver.example'], capsys)
    assert code == 64 and 'expected an IP address' in err


def _expect(rtype: str, *values: str, check: str = 'other') -> c.DnsExpectation:
    return c.DnsExpectation('x.testco.example', rtype, values, check)


@pytest.mark.parametrize(
    ('expected', 'answer', 'ok'),
    [
        (_expect('MX', '10 mx1.testco.example'), ('10 MX1.testco.example.',), True),
        (_expect('MX', '10 mx1.testco.example'), ('20 mx1.testco.example',), False),
        (_expect('A', '192.0.2.1', '192.0.2.2'), ('192.0.2.2', '192.0.2.1'), True),
        (_expect('A', '192.0.2.1'), ('192.0.2.1', '192.0.2.9'), False),
        (_expect('TXT', 'v=spf1 -all', check='spf'), ('v=spf1 -all', 'verify=1'), True),
        (_expect('TXT', 'v=spf1 -all', check='spf'), ('v=spf1 -all', 'v=spf1 ~all'), False),  # two SPF records
        (_expect('TXT', 'v=DMARC1; p=none', check='dmarc'), ('v=DMARC1; p=reject',), False),
        (_expect('PTR', 'tx1.testco.example'), ('tx1.testco.example',), True),
    ],
)
def test_compare(expected: c.DnsExpectation, answer: tuple[str, ...], ok: bool) -> None:
    assert compare(expected, Answer(expected.name, expected.type, answer)).ok is ok


def test_compare_failures_say_why() -> None:
    expected = _expect('A', '192.0.2.1')
    assert compare(expected, Answer(expected.name, 'A', rcode='NXDOMAIN')).reason == 'NXDOMAIN'
    assert 'timed out' in compare(expected, Answer(expected.name, 'A', error='timed out')).reason


def test_resolvers_default_to_the_contracts_blocklist_nameservers(
    contract: c.Contract, knot: KnotServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    knot.set_zones(_zones(contract.dns_expectations, {}))
    blocklists = dataclasses.replace(contract.blocklists, nameservers=(knot.nameserver,))
    path = _write_contract(tmp_path / 'agent.json', dataclasses.replace(contract, blocklists=blocklists))
    code, out, _ = _run(['--contract', str(path)], capsys)
    assert code == 0 and knot.nameserver in out
