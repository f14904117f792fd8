"""``mailinfra dnsbl check`` against a real Knot on loopback serving test copies of catalogue zones.

The zones use the catalogue's names and documented codes (listings, error codes, test points); the
server is asked directly as the "resolver", so no query leaves the machine.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailinfra_iac.cli.main import main
from mailinfra_iac.dnscheck import dnsbl

from ..conftest import BASE, edit
from ..dnscheck.conftest import start_knot
from ..dnsserver.knot import KnotServer

KEY = 'h2testkey0123456789abcdef'
ZEN = 'zen.spamhaus.org'
DBL = 'dbl.spamhaus.org'
URIBL = 'multi.uribl.com'
SPAMCOP = 'bl.spamcop.net'


def _zone(name: str, body: str) -> str:
    return (
        f'$ORIGIN {name}.\n$TTL 60\n@ 60 IN SOA ns.{name}. hostmaster.{name}. 1 60 60 60 60\n'
        f'@ 60 IN NS ns.{name}.\nns 60 IN A 127.0.0.1\n{body}'
    )


ZONES = {
    ZEN: _zone(
        ZEN,
        '2.0.0.127 IN A 127.0.0.2\n2.0.0.127 IN A 127.0.0.4\n2.0.0.127 IN A 127.0.0.10\n'
        '10.2.0.192 IN A 127.0.0.2\n'  # 192.0.2.10: SBL
        '20.2.0.192 IN A 127.0.0.11\n',  # 192.0.2.20: PBL
    ),
    f'{KEY}.zen.dq.spamhaus.net': _zone(
        f'{KEY}.zen.dq.spamhaus.net',
        '2.0.0.127 IN A 127.0.0.2\n2.0.0.127 IN A 127.0.0.4\n9.100.51.198 IN A 127.0.0.3\n',
    ),
    DBL: _zone(DBL, 'dbltest.com IN A 127.0.1.2\nphish.example IN A 127.0.1.4\n'),
    URIBL: _zone(
        URIBL, 'test.uribl.com IN A 127.0.0.14\nrefused.example IN A 127.0.0.1\nblack.example IN A 127.0.0.2\n'
    ),
    'rep.mailspike.net': _zone('rep.mailspike.net', '10.2.0.192 IN A 127.0.0.12\n'),
    'wl.mailspike.net': _zone('wl.mailspike.net', '10.2.0.192 IN A 127.0.0.18\n'),
    # bl.spamcop.net without its test point: "not working here"
    SPAMCOP: _zone(SPAMCOP, '10.2.0.192 IN A 127.0.0.2\n'),
}


@pytest.fixture(scope='module')
def knot() -> Iterator[KnotServer]:
    server = start_knot(ZONES)
    try:
        yield server
    finally:
        server.stop()


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(['dnsbl', 'check', *args])
    out, err = capsys.readouterr()
    return code, out, err


def _adhoc(knot: KnotServer, *subjects: str, zones: tuple[str, ...] = (ZEN,)) -> list[str]:
    args = ['--nameserver', knot.nameserver, '--timeout', '0.5']
    for subject in subjects:
        args += ['--domain' if any(c.isalpha() for c in subject) else '--ip', subject]
    for zone in zones:
        args += ['--zone', zone]
    return args


def test_listed_ip_shows_zone_meaning_and_delisting_url(knot: KnotServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(_adhoc(knot, '192.0.2.10', '192.0.2.11'), capsys)
    assert code == 1, err
    row = next(line for line in out.splitlines() if line.startswith('192.0.2.10'))
    assert ZEN in row and '127.0.0.2' in row and 'SBL' in row and 'https://check.spamhaus.org/' in row
    assert '192.0.2.11' not in out.split('\n\n')[0]
    assert '1 listed, 1 clean' in out


def test_clean_subjects_exit_0(knot: KnotServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(_adhoc(knot, '192.0.2.12', 'clean.example', zones=(ZEN, DBL)), capsys)
    assert code == 0
    assert 'LISTED: none' in out


def test_domain_reduced_to_registered_domain_and_listed(knot: KnotServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run([*_adhoc(knot, 'www.phish.example', zones=(DBL,)), '--format', 'json'], capsys)
    assert code == 1
    [listed] = json.loads(out)['listed']
    assert (listed['subject'], listed['zone'], listed['listings'][0]['code']) == ('phish.example', DBL, '127.0.1.4')


def test_uribl_refusal_is_a_zone_error_never_a_listing(knot: KnotServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(_adhoc(knot, 'refused.example', zones=(URIBL,)), capsys)
    assert code == 2
    assert 'LISTED: none' in out
    assert 'ZONE ERRORS' in out and URIBL in out.split('ZONE ERRORS')[1]


def test_bitmask_listing(knot: KnotServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(_adhoc(knot, 'black.example', zones=(URIBL,)), capsys)
    assert code == 1
    assert 'black.example' in out.split('\n\n')[0]


def test_zone_without_its_test_point_is_not_working_here(knot: KnotServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run([*_adhoc(knot, '192.0.2.12', zones=(SPAMCOP,)), '--format', 'json'], capsys)
    document = json.loads(out)
    assert code == 2 and document['exit'] == 2
    [zone] = document['zones']
    assert zone['zone'] == SPAMCOP and zone['working'] is False
    code, out, _ = _run(_adhoc(knot, '192.0.2.12', zones=(SPAMCOP,)), capsys)
    assert code == 2 and 'ZONE NOT WORKING HERE' in out and SPAMCOP in out


def test_subjects_from_the_spec_and_its_nameservers(
    knot: KnotServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / 'spec.yml'
    spec.write_text(
        edit(
            'monitoring:\n',
            f'monitoring:\n  dnsbl: {{zones: [{ZEN}, {DBL}], nameservers: ["{knot.nameserver}"]}}\n',
            BASE,
        )
    )
    code, out, _ = _run([str(spec), '--format', 'json', '--as-of', '2026-11-28'], capsys)
    document = json.loads(out)
    assert code == 1
    subjects = {(s['subject'], s['kind']) for s in document['subjects']}
    assert {('192.0.2.10', 'ip'), ('192.0.2.20', 'ip'), ('192.0.2.21', 'ip'), ('testco.example', 'domain')} <= subjects
    assert {(r['subject'], r['zone']) for r in document['listed']} == {('192.0.2.10', ZEN), ('192.0.2.20', ZEN)}
    assert document['nameservers'] == [knot.nameserver]


def test_dqs_key_from_file_is_used_and_never_shown(
    knot: KnotServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / 'dqs.key'
    key_file.write_text(KEY + '\n')
    key_file.chmod(0o600)
    args = [*_adhoc(knot, '198.51.100.9'), '--dqs-key-file', str(key_file)]
    for fmt in ('table', 'json'):
        code, out, err = _run([*args, '--format', fmt], capsys)
        assert code == 1, err
        assert KEY not in out and KEY not in err
    key_file.chmod(0o644)
    code, _, err = _run(args, capsys)
    assert code == 2 and '0600' in err and KEY not in err


def test_dqs_key_from_the_environment(
    knot: KnotServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(dnsbl.DQS_KEY_ENV, KEY)
    code, out, err = _run(_adhoc(knot, '198.51.100.9'), capsys)
    assert code == 1 and '198.51.100.9' in out
    assert KEY not in out + err


def test_textfile_metrics_written(knot: KnotServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prom = tmp_path / 'mailinfra_dnsbl.prom'
    code, _, err = _run([*_adhoc(knot, '192.0.2.10', '192.0.2.12'), '--textfile', str(prom)], capsys)
    assert code == 1, err
    text = prom.read_text()
    assert 'mailinfra_dnsbl_listed{' in text and 'subject="192.0.2.10"' in text and f'zone="{ZEN}"' in text
    assert 'subject="192.0.2.12"' not in text.split('mailinfra_dnsbl_listed{', 1)[1].split('\n# ', 1)[0]
    assert f'mailinfra_dnsbl_zone_working{{zone="{ZEN}"}} 1.0' in text
    assert 'mailinfra_dnsbl_listed_since_timestamp_seconds{subject="192.0.2.10"' in text
    assert stat.S_IMODE(os.stat(prom).st_mode) & 0o002 == 0
    assert not list(tmp_path.glob('*.tmp*'))


@pytest.mark.parametrize(
    ('args', 'words'),
    [
        ([], 'nothing to check'),
        (['--ip', 'not-an-address', '--nameserver', '127.0.0.1:9'], 'not-an-address'),
        (['--ip', '192.0.2.1', '--nameserver', 'resolver.example'], 'IP address'),
        (['--ip', '192.0.2.1', '--zone', 'dnsbl.sorbs.net'], 'retired'),
        (['--ip', '192.0.2.1', '--zone', 'nowhere.example.net'], 'not in the catalogue'),
        (['--ip', '192.0.2.1', '--zone', 'ZEN.Spamhaus.orgg.'], 'known zones: zen.spamhaus.org, '),  # close first
        (['--ip', '192.0.2.1', '--dqs-key-file', '/nonexistent/dqs.key'], 'cannot read'),
        (['/nonexistent/spec.yml'], 'spec'),
    ],
)
def test_cannot_check_before_asking_exits_2(args: list[str], words: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(args, capsys)
    assert code == 2
    assert words in err


@pytest.mark.parametrize('args', [['--ip', '192.0.2.1', '--timeout', '0'], ['--ip', '192.0.2.1', '--concurrency', 'x']])
def test_bad_options_are_usage_errors(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(['dnsbl', 'check', *args])
    assert exit_info.value.code == 2
    assert 'usage:' in capsys.readouterr().err


def test_public_resolver_warning_without_querying_it() -> None:
    [warning] = dnsbl.public_resolver_warnings(['127.0.0.1', '8.8.8.8', '[::1]:53'])
    assert '8.8.8.8' in warning and 'public resolver' in warning
    assert dnsbl.public_resolver_warnings(['127.0.0.1:5353']) == ()


def test_zone_selection_from_spec_default_and_custom() -> None:
    from mailinfra_iac import parse_spec

    from ..conftest import AS_OF

    text = edit(
        'monitoring:\n',
        'monitoring:\n  dnsbl:\n    zones: [zen.spamhaus.org, bl.example.net]\n    custom_zones:\n'
        '      - {zone: bl.example.net, kind: ip, operator: X, listings: {"127.0.0.2": listed},'
        ' test_point: 2.0.0.127}\n',
        BASE,
    )
    spec = parse_spec(text, 'spec.yml', as_of=AS_OF)
    zones = dnsbl.select_zones(spec.deployment)
    assert [zone.zone for zone in zones] == ['bl.example.net', 'zen.spamhaus.org']
    assert zones[0].custom and zones[0].codes == {'127.0.0.2': 'listed'}
    defaults = dnsbl.select_zones(None)
    assert defaults and all(zone.default for zone in defaults)
    assert [zone.zone for zone in dnsbl.select_zones(None, ['multi.uribl.com'])] == ['multi.uribl.com']


def test_textfile_in_a_missing_directory_is_could_not_check(
    knot: KnotServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prom = tmp_path / 'missing' / 'mailinfra_dnsbl.prom'
    code, _, err = _run([*_adhoc(knot, '192.0.2.12'), '--textfile', str(prom)], capsys)
    assert code == 2 and 'metrics not written' in err


def test_scores_and_allowlists_have_their_own_sections_and_are_never_listings(
    knot: KnotServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(_adhoc(knot, '192.0.2.10', zones=('rep.mailspike.net', 'wl.mailspike.net')), capsys)
    assert code == 0, err
    assert 'LISTED: none' in out
    scores = out.split('REPUTATION SCORES')[1].split('\n\n')[0]
    assert '192.0.2.10' in scores and 'rep.mailspike.net' in scores and '12' in scores
    allowlists = out.split('ALLOWLISTS')[1].split('\n\n')[0]
    assert 'wl.mailspike.net' in allowlists and 'good reputation' in allowlists
