"""``mailinfra dns check`` end to end: real DKIM keys in a key store, zones exported from them, served by Knot."""

from __future__ import annotations

import argparse
import json
import re
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from mailinfra_iac.cli import dns_cmd
from mailinfra_iac.cli.main import build_parser, main
from mailinfra_iac.dkim import KeyStore
from mailinfra_iac.dkim.source import KeyStoreDkimSource
from mailinfra_iac.facts.records import derive_records, served_delegations
from mailinfra_iac.render.zonefile import zone_files

from .conftest import EXAMPLE, Served


def _parser() -> argparse.ArgumentParser:
    """``mailinfra`` with the dns command, the way cli/main.py registers command modules."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if 'dns' in sub.choices:
        return parser

    def with_spec(name: str, help_text: str, parent: Any = sub) -> argparse.ArgumentParser:
        command: argparse.ArgumentParser = parent.add_parser(name, help=help_text)
        command.add_argument('spec')
        command.add_argument('--as-of', default=None)
        return command

    dns_cmd.register(sub, with_spec)
    return parser


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    args = _parser().parse_args(list(argv))
    code: int = args.func(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope='module')
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A key store with real keys for the example, made by ``mailinfra dkim generate``."""
    store = tmp_path_factory.mktemp('dns-cli') / 'keys'
    assert main(['dkim', 'generate', str(EXAMPLE), '--keys', str(store)]) == 0
    return store


@pytest.fixture
def served_from_keys(served: Served, keys: Path) -> Served:
    """The example's zones exported with the key store's public keys, served by the session Knot."""
    spec = served.spec
    records = derive_records(spec.deployment, spec.facts, KeyStoreDkimSource(KeyStore(keys), 'dailybrief'))
    nameservers = {zone.name: list(zone.nameservers) for zone in spec.deployment.dns.zones}
    served.knot.set_zones(
        zone_files(records, nameservers, spec.deployment.dns.ttl, delegations=served_delegations(spec.deployment))
    )
    return served


def test_table_and_exit_code(capsys: pytest.CaptureFixture[str], served_from_keys: Served, keys: Path) -> None:
    ns = served_from_keys.server
    argv = ['dns', 'check', str(EXAMPLE), '--nameserver', ns, '--keys', str(keys)]
    code, out, err = run(capsys, *argv)
    # the third-party SPF include cannot be asked without --resolver: not checked, so not a success
    assert code == 2
    assert err.startswith('1 check could not run: give --resolver')
    lines = out.splitlines()
    assert lines[0].split() == ['CHECK', 'SUBJECT', 'STATUS', 'REASON']
    assert lines[1].split()[:3] == ['fcrdns', '198.51.100.10', 'pass']
    assert any(line.split()[:3] == ['spf-lookups', 'dailybrief.example', 'unchecked'] for line in lines)
    assert lines[-1].startswith('66 checks: 65 pass, 0 warn, 0 fail, 0 skip, 1 unchecked (')
    assert f'queries to {ns} in ' in lines[-1]
    # opting out explicitly
    code, out, err = run(capsys, *argv, '--allow-unchecked')
    assert (code, err) == (0, '')
    assert out.splitlines()[-1].startswith('66 checks: 65 pass, 0 warn, 0 fail, 0 skip, 1 unchecked (')


def test_the_footer_times_are_real(capsys: pytest.CaptureFixture[str], served_from_keys: Served, keys: Path) -> None:
    argv = ['dns', 'check', str(EXAMPLE), '--nameserver', served_from_keys.server, '--keys', str(keys)]
    started = time.perf_counter()
    _, out, _ = run(capsys, *argv, '--allow-unchecked')
    elapsed = time.perf_counter() - started
    match = re.search(r' in (\d+\.\d{3})s; (\d+\.\d{3})s in all\)$', out.splitlines()[-1])
    assert match is not None, out.splitlines()[-1]
    queries, total = float(match.group(1)), float(match.group(2))
    assert 0 < queries < total <= elapsed  # loading the spec and building the expectations count too
    _, out, _ = run(capsys, *argv, '--allow-unchecked', '--format', 'json')
    timing = json.loads(out)['timing']
    assert set(timing) == {'total_seconds', 'check_seconds', 'query_seconds'}
    assert 0 < timing['query_seconds'] <= timing['check_seconds'] <= timing['total_seconds']


def test_json_and_resolver(capsys: pytest.CaptureFixture[str], served_from_keys: Served, keys: Path) -> None:
    ns = served_from_keys.server
    code, out, _ = run(
        capsys, 'dns', 'check', str(EXAMPLE), '--nameserver', ns, '--resolver', ns, '--keys', str(keys), '--format',
        'json',
    )  # fmt: skip
    document = json.loads(out)
    assert code == 0
    assert document['ok'] is True and document['exit'] == 0
    assert document['summary'] == {'pass': 66, 'warn': 0, 'fail': 0, 'skip': 0, 'unchecked': 0}
    assert document['servers'] == [ns] and document['resolver'] == ns
    assert document['results'][0] == {
        'check': 'fcrdns',
        'subject': '198.51.100.10',
        'server': ns,
        'status': 'pass',
        'reason': 'PTR t1.mail.dailybrief.example, whose A holds 198.51.100.10; HELO t1.mail.dailybrief.example',
    }


def test_exit_1_when_the_dns_is_wrong(capsys: pytest.CaptureFixture[str], served: Served, tmp_path: Path) -> None:
    """A failure is exit 1 even when other checks could not run (no keys to compare with here)."""
    served.change({('partners.dailybrief.example', 'TXT'): ('v=spf1 ip4:198.51.100.30 +all',)})
    code, out, err = run(
        capsys, 'dns', 'check', str(EXAMPLE), '--nameserver', served.server, '--resolver', served.server,
        '--keys', str(tmp_path / 'none'),
    )  # fmt: skip
    assert code == 1
    assert err == 'DNS is wrong: see the failed checks above\n'
    assert [line.split()[:3] for line in out.splitlines() if ' fail ' in line] == [
        ['spf-matches-spec', 'partners.dailybrief.example', 'fail']
    ]


def test_an_unreachable_server_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]  # closed once the block ends: nothing listens there
    argv = ['dns', 'check', str(EXAMPLE), '--nameserver', f'127.0.0.1:{port}', '--timeout', '0.3']
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, '')
    assert err.splitlines() == [
        f'cannot check: name server 127.0.0.1:{port} does not answer: '
        f'127.0.0.1:{port}: socket error: [Errno 111] Connection refused'
    ]
    code, out, _ = run(capsys, *argv, '--format', 'json')
    document = json.loads(out)
    assert code == 2 and document['exit'] == 2 and 'Connection refused' in document['cannot_check']
    assert document['timing']['total_seconds'] > 0


def test_zone_file_with_a_long_string(capsys: pytest.CaptureFixture[str], served: Served, tmp_path: Path) -> None:
    text = served.knot.zones['dailybrief.example']
    line = next(line for line in text.splitlines() if line.startswith('s2026q4._domainkey '))
    joined = ''.join(re.findall(r'"([^"]*)"', line))
    zone = tmp_path / 'dailybrief.example.zone'
    zone.write_text(text.replace(line, line[: line.index('"')] + f'"{joined}"'))
    argv = ['dns', 'check', str(EXAMPLE), '--nameserver', served.server, '--resolver', served.server]
    code, out, _ = run(capsys, *argv, '--keys', str(tmp_path / 'none'), '--zone-file', str(zone), '--format', 'json')
    document = json.loads(out)
    assert code == 1
    assert [(r['check'], r['subject']) for r in document['results'] if r['status'] == 'fail'] == [
        ('zone-text', str(zone))
    ]
    with pytest.raises(Exception, match='cannot read zone file'):
        run(capsys, *argv, '--zone-file', str(tmp_path / 'missing.zone'))


def test_keys_that_are_not_served_fail(capsys: pytest.CaptureFixture[str], served: Served, keys: Path) -> None:
    """The session Knot serves the fixed test keys, not the ones just generated: exit 1."""
    code, out, _ = run(
        capsys, 'dns', 'check', str(EXAMPLE), '--nameserver', served.server, '--keys', str(keys), '--format', 'json'
    )
    document = json.loads(out)
    assert code == 1 and document['ok'] is False
    failed = {(r['check'], r['subject']) for r in document['results'] if r['status'] == 'fail'}
    assert failed == {
        ('dkim-key-matches', 's2026q4._domainkey.dailybrief.example'),
        ('dkim-key-matches', 's2026q4._domainkey.news.dailybrief.example'),
        ('dkim-key-matches', 's2026q4e._domainkey.news.dailybrief.example'),
        ('dkim-key-matches', 's2026q4._domainkey.partners.dailybrief.example'),
    }


def test_an_empty_key_store_is_unchecked(capsys: pytest.CaptureFixture[str], served: Served, tmp_path: Path) -> None:
    code, out, _ = run(
        capsys, 'dns', 'check', str(EXAMPLE), '--nameserver', served.server, '--resolver', served.server,
        '--keys', str(tmp_path / 'none'), '--format', 'json',
    )  # fmt: skip
    document = json.loads(out)
    assert code == 2 and document['ok'] is False
    assert {r['status'] for r in document['results'] if r['check'] == 'dkim-key-matches'} == {'unchecked'}


def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        _parser().parse_args(['dns', 'check', str(EXAMPLE)])
    assert exit_.value.code == 2
    assert 'the following arguments are required: --nameserver' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _parser().parse_args(['dns', 'check', str(EXAMPLE), '--nameserver', '127.0.0.1', '--timeout', '0'])
    assert 'must be positive, got 0' in capsys.readouterr().err
    args = _parser().parse_args(['dns', 'check', str(EXAMPLE), '--nameserver', 'ns1.example'])
    with pytest.raises(Exception, match='expected an IP address') as error:
        args.func(args)
    assert type(error.value).__name__ == 'MailinfraError'
