"""The blocklist check against zones served by rbldnsd (Debian's package), in the data formats real lists publish: a
combined ZEN-style zone (ip4set ranges, CIDRs, exclusions, per-entry A values and TXT templates, ip6trie, the
127.255.255.x error codes), a DBL-style dnset (wildcards, exclusions), an empty zone, a zone that answers REFUSED
(an ACL) and one that answers SERVFAIL (its data expired), a DQS zone whose name carries the key, and custom zones
of a spec (host names, IPv6). One rbldnsd for the module; every answer the command reports is compared with kdig's,
and the textfile goes through ``promtool check metrics`` and the alert rules rendered for the newsletter-publisher
example."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import pytest
import yaml

from mailinfra_agent.cli import main
from mailinfra_agent.contract import (
    Blocklists,
    BlocklistSubjects,
    BlocklistZone,
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
    check,
    custom_zone,
    load_catalogue,
    registered_domain,
    subjects_from,
)
from mailinfra_agent.store import connect, migrate
from mailinfra_agent.store.listings import history
from mailinfra_iac import parse_spec
from mailinfra_iac.render.base import RenderContext
from mailinfra_iac.render.rolevars.agent import host_contract

from ..conftest import AS_OF, BASE, TEST_DKIM, edit
from .test_dnsbl_check import Stub, contract

GOLDEN_RULES = Path(__file__).parents[1] / 'golden/newsletter-publisher/monitoring/prometheus/rules/dnsbl.yml'
DQS_KEY = 'Dq5KeyMixedCase0123456789ab'
"""Upper and lower case: DNS names are case-insensitive, so the key must be hidden in any case."""

ZEN = """$SOA 3600 ns.test. hostmaster.test. 0 3600 600 86400 60
$NS 3600 ns.test.
$DATASET ip4set:sbl @
:127.0.0.2:SBL listed, see https://check.spamhaus.org/sbl/query/$
127.0.0.2
192.0.2.10
198.51.100.0/24
!198.51.100.7
203.0.113.16-203.0.113.31
192.0.2.20 :127.0.0.9:DROP $ "quoted" \\ back; semi ${x} é
$DATASET ip4set:css @
:127.0.0.3:CSS $
127.0.0.2
192.0.2.11
$DATASET ip4set:xbl @
:127.0.0.4:XBL $ see https://example.test/?ip=$&a=b
127.0.0.2
192.0.2.10
198.51.100.0/25
$DATASET ip4set:pbl @
:127.0.0.10:PBL ISP
127.0.0.2
192.0.2.12
:127.0.0.11:PBL Spamhaus
192.0.2.13
$DATASET ip4set:refusals @
192.0.2.252 :127.255.255.252:typo
192.0.2.253 :127.255.255.253:undocumented
192.0.2.254 :127.255.255.254:open resolver
192.0.2.255 :127.255.255.255:rate limited
$DATASET ip6trie:v6 @
:127.0.0.3:CSS v6 $
2001:db8::/48
!2001:db8::bead
2001:db8:1:2::5 :127.0.0.2:SBL v6
"""
DBL = """$SOA 3600 ns.test. hostmaster.test. 0 3600 600 86400 60
:127.0.1.2:low reputation $
dbltest.com
listed.example
xn--fa-hia.de
.wild.example :127.0.1.4:phish "$"
!ok.wild.example
*.subs.example :127.0.1.5:malware
ipquery.example :127.0.1.255:IP queries prohibited
"""
V6 = ':127.0.0.2:listed v6 $\n2001:db8::/48\n'
FILES = {
    'zen': ZEN,
    'dbl': DBL,
    'v6': V6,
    'dqs': ZEN,
    'empty': '$SOA 3600 ns.test. hostmaster.test. 0 3600 600 86400 60\n',
    'expired': '$TIMESTAMP 2020:01:01 +1d\n127.0.0.2\n192.0.2.10\n',
    'refused': '127.0.0.2\n192.0.2.10\n',
    'acl': '127.0.0.0/8 :refuse\n',
}
DATASETS = (
    'zen.spamhaus.org:combined:zen',
    'dbl.spamhaus.org:dnset:dbl',
    f'{DQS_KEY.lower()}.zen.dq.spamhaus.net:combined:dqs',
    'empty.test:ip4set:empty',
    'expired.test:ip4set:expired',
    'refused.test:ip4set:refused',
    'refused.test:acl:acl',
    'hosts.test:dnset:dbl',  # the spec's custom zones: the DBL's data, and an IPv6 list
    'v6.test:ip6trie:v6',
)

# subject -> what the zone data above says (the truth the report must match)
ZEN_TRUTH = {
    '192.0.2.10': ('listed', ['127.0.0.2', '127.0.0.4']),
    '192.0.2.11': ('listed', ['127.0.0.3']),
    '192.0.2.12': ('listed', ['127.0.0.10']),
    '192.0.2.13': ('listed', ['127.0.0.11']),
    '192.0.2.20': ('listed', ['127.0.0.9']),
    '192.0.2.99': ('clean', []),
    '198.51.100.7': ('listed', ['127.0.0.4']),  # excluded from SBL, still in XBL's /25
    '198.51.100.8': ('listed', ['127.0.0.2', '127.0.0.4']),
    '198.51.100.200': ('listed', ['127.0.0.2']),  # outside XBL's /25
    '203.0.113.15': ('clean', []),  # just below the range
    '203.0.113.16': ('listed', ['127.0.0.2']),
    '203.0.113.31': ('listed', ['127.0.0.2']),
    '203.0.113.32': ('clean', []),  # just above it
    '192.0.2.252': ('error', ['typo']),
    '192.0.2.253': ('error', ['undocumented']),
    '192.0.2.254': ('error', ['open_resolver']),
    '192.0.2.255': ('error', ['rate_limited']),
    '2001:db8::1': ('listed', ['127.0.0.3']),
    '2001:db8::bead': ('clean', []),  # excluded
    '2001:db8:1:2::5': ('listed', ['127.0.0.2']),
    '2001:db9::1': ('clean', []),
}
DBL_TRUTH = {
    'listed.example': ('listed', ['127.0.1.2']),
    'xn--fa-hia.de': ('listed', ['127.0.1.2']),  # asked as FAß.de
    'wild.example': ('listed', ['127.0.1.4']),  # ".wild.example": the domain and its subdomains
    'subs.example': ('clean', []),  # "*.subs.example": subdomains only
    'a.subs.example': ('listed', ['127.0.1.5']),  # asked too: the DBL lists host names (zones.toml host_names)
    'www.wild.example': ('listed', ['127.0.1.4']),
    'ok.wild.example': ('clean', []),  # excluded with "!"
    'ipquery.example': ('error', ['ip_query']),
    'clean.example': ('clean', []),
}


@dataclass(frozen=True)
class Rbldnsd:
    address: str
    port: int

    @property
    def nameserver(self) -> str:
        return f'{self.address}:{self.port}'

    def dig(self, name: str) -> list[str]:
        """The A records kdig gets for ``name`` (empty for NXDOMAIN), or its status when it is an error."""
        out = subprocess.run(
            ['kdig', f'@{self.address}', '-p', str(self.port), '+norec', name, 'A'],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        status = re.search(r'status: (\w+)', out)
        assert status is not None, out
        if status[1] not in ('NOERROR', 'NXDOMAIN'):
            return [status[1]]
        records = [line.split() for line in out.splitlines() if not line.startswith(';')]
        return sorted(fields[4] for fields in records if fields[3:4] == ['A'])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return int(sock.getsockname()[1])


def _answers(address: str, port: int, listed: bool = True) -> bool:
    """rbldnsd answers the ZEN test point: listed, or (``listed`` false) with any answer, an error one too."""
    query = dns.message.make_query('2.0.0.127.zen.spamhaus.org', 'A')
    try:
        response = dns.query.udp(query, address, port=port, timeout=0.5)
    except (OSError, dns.exception.Timeout):
        return False
    return bool(response.answer) or not listed


@contextlib.contextmanager
def _serving(root: Path, datasets: tuple[str, ...], port: int | None = None, listed: bool = True) -> Iterator[Rbldnsd]:
    """rbldnsd serving ``datasets`` from the files in ``root`` (readable by the rbldns user) on loopback, once it
    answers (see :func:`_answers`)."""
    binary = shutil.which('rbldnsd', path=f'{os.environ.get("PATH", "")}:/usr/sbin')
    if binary is None:
        pytest.fail('rbldnsd is not installed (apt-get install rbldnsd; script/bootstrap installs it)', pytrace=False)
    server = Rbldnsd('127.0.0.1', port or _free_port())
    with (root / 'rbldnsd.log').open('wb') as log:
        process = subprocess.Popen(
            [binary, '-n', '-w', str(root), '-b', f'{server.address}/{server.port}', '-t', '60', *datasets],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 20
        while not _answers(server.address, server.port, listed):
            if process.poll() is not None or time.monotonic() > deadline:
                output = (root / 'rbldnsd.log').read_text(errors='replace')
                pytest.fail(f'rbldnsd did not answer: {output}', pytrace=False)
            time.sleep(0.05)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _data_root(files: dict[str, str]) -> Path:
    root = Path(tempfile.mkdtemp(prefix='mailinfra-rbldnsd-'))
    root.chmod(0o755)  # run as root, rbldnsd reads its data as the rbldns user
    for name, text in files.items():
        (root / name).write_text(text, encoding='utf-8')
        (root / name).chmod(0o644)
    return root


@pytest.fixture(scope='module')
def rbldnsd() -> Iterator[Rbldnsd]:
    root = _data_root(FILES)
    try:
        with _serving(root, DATASETS) as server:
            yield server
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _zones() -> list[Any]:
    catalogue = load_catalogue()

    def custom(name: str, test_point: str | None) -> Any:
        codes = {'127.0.0.2': 'listed'}
        return custom_zone(zone=name, kind='ip', operator='test', decoder='codes', codes=codes, test_point=test_point)

    return [
        catalogue.get('zen.spamhaus.org'),
        catalogue.get('dbl.spamhaus.org'),
        custom('empty.test', None),  # no test point: an empty zone lists nothing
        custom('expired.test', '2.0.0.127'),  # SERVFAIL
        custom('refused.test', '2.0.0.127'),  # REFUSED
    ]


def _contract(tmp_path: Path, nameserver: str, zones: list[Any], **extra: Any) -> Path:
    """A monitoring host's contract with ``zones`` (checker zones, or contract entries as rendered)."""
    domains = ('listed.example', 'FAß.de', 'www.wild.example', 'ok.wild.example', 'a.subs.example')
    blocklists = Blocklists(
        interval=900,
        zones=tuple(zone if isinstance(zone, BlocklistZone) else zone_to_contract(zone) for zone in zones),
        nameservers=(nameserver,),
        subjects=BlocklistSubjects(ips=tuple(ZEN_TRUTH), domains=(*domains, 'ipquery.example', 'clean.example')),
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
        store=Store('sqlite', path=str(tmp_path / 'agent.db')),
    )
    path = tmp_path / 'agent.json'
    path.write_text(json.dumps(dump_contract(value)), encoding='utf-8')
    with connect(value.store) as db:
        migrate(db)
    return path


def _command(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any], str]:
    code = main(['dnsbl', 'check', *args, '--format', 'json'])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.out + captured.err


def test_answers_match_kdig_and_the_zone_data(
    rbldnsd: Rbldnsd, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, data, _ = _command(capsys, '--contract', str(_contract(tmp_path, rbldnsd.nameserver, _zones())))
    assert code == 1  # listings win over the zones that could not be checked
    results = {(r['subject'], r['zone']): r for r in data['results']}
    for (subject, zone), result in results.items():
        if result['status'] in ('listed', 'clean', 'error'):
            assert sorted(result['answers']) == rbldnsd.dig(result['query']), (subject, zone)
    for zone, truth in (('zen.spamhaus.org', ZEN_TRUTH), ('dbl.spamhaus.org', DBL_TRUTH)):
        for subject, (status, expected) in truth.items():
            result = results[subject, zone]
            found = [c['code'] for c in result['listings']] + [e['id'] for e in result['errors']]
            assert (result['status'], sorted(found)) == (status, sorted(expected)), (subject, zone)
    assert {r['status'] for (_, zone), r in results.items() if zone == 'empty.test'} == {'clean'}
    zones = {z['zone']: z for z in data['zones']}
    assert zones['empty.test']['working'] and zones['empty.test']['test'] == 'none'
    assert (zones['expired.test']['test'], zones['expired.test']['errors']) == ('failed', {'servfail': 2})
    assert (zones['refused.test']['test'], zones['refused.test']['errors']) == ('failed', {'refused': 2})
    for zone in ('expired.test', 'refused.test'):
        assert {r['status'] for (_, name), r in results.items() if name == zone} == {'untrusted'}
    # the zones answered their test points; their error answers make them "not working" all the same
    assert zones['zen.spamhaus.org']['test'] == 'ok' and not zones['zen.spamhaus.org']['working']
    assert zones['zen.spamhaus.org']['errors'] == {'open_resolver': 1, 'rate_limited': 1, 'typo': 1, 'undocumented': 1}
    assert zones['dbl.spamhaus.org']['errors'] == {'ip_query': 1}
    listed = {(r['subject'], r['zone'], c['code']) for r in data['listed'] for c in r['listings']}
    expected = {
        (subject, zone, answer)
        for zone, truth in (('zen.spamhaus.org', ZEN_TRUTH), ('dbl.spamhaus.org', DBL_TRUTH))
        for subject, (status, answers) in truth.items()
        if status == 'listed'
        for answer in answers
    }
    assert listed == expected  # error answers are never listings
    _metrics_and_alerts(tmp_path, tmp_path / 'mailinfra_dnsbl.prom', expected, data)


def _series(line: str) -> tuple[str, float]:
    name, value = line.rsplit(' ', 1)
    labels = name.replace('{', '{instance="mon1:9100",host="mon1",', 1) if '{' in name else name
    if '{' not in labels:
        labels += '{instance="mon1:9100",host="mon1"}'
    return labels.replace(',}', '}'), float(value)


def _listing_alert(group: str, kind: str, zone: str, code: str, subjects: list[str], first: int) -> dict[str, Any]:
    """The MailinfraDnsblListed alert promtool must see for a listing of the catalogue's ``zone``."""
    since = time.strftime('%Y-%m-%d %H:%M:%S +0000 UTC', time.gmtime(first))
    info = load_catalogue().get(zone)
    assert info is not None
    labels = {'instance': 'mon1:9100', 'host': 'mon1', 'subject': group, 'subject_kind': kind, 'zone': zone}
    return {
        'exp_labels': {**labels, 'severity': 'critical', 'code': code},
        'exp_annotations': {
            'summary': f'{group} is listed on {zone}',
            'description': f'The {kind} {group} is listed on {zone} (answer {code}), listed since {since}.',
            'meaning': info.codes[code],
            'delisting_url': info.delisting_url,
            'listed_since': since,
            'listed_names': ', '.join(sorted(subjects)),
        },
    }


def _metrics_and_alerts(tmp_path: Path, textfile: Path, listed: set[tuple[str, str, str]], data: Any) -> None:
    """The textfile passes promtool, and the rendered rules fire exactly: a listing alert per listed code
    with the catalogue's meaning, "zone not working" for the zones with errors, "check failed" for the run."""
    promtool = shutil.which('promtool')
    assert promtool is not None, 'promtool is not installed (apt-get install prometheus)'
    text = textfile.read_text(encoding='utf-8')
    check = subprocess.run([promtool, 'check', 'metrics'], input=text, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    series = [_series(line) for line in text.splitlines() if line and not line.startswith('#')]
    since = {
        (entry['subject'], entry['zone']): entry['first_seen'] for entry in data['listed_since']
    }  # what the textfile's listed_since series carry
    listing_alerts = []
    kinds = {entry['subject']: entry['kind'] for entry in data['subjects']}
    groups: dict[tuple[str, str, str], list[str]] = {}  # one alert per IP or registered domain, zone and code
    for subject, zone, code in sorted(listed):
        group = subject if kinds[subject] == 'ip' else registered_domain(subject)
        groups.setdefault((group, zone, code), []).append(subject)
    assert groups[('wild.example', 'dbl.spamhaus.org', '127.0.1.4')] == ['wild.example', 'www.wild.example']
    for (group, zone, code), subjects in sorted(groups.items()):
        first = min(since[subject, zone] for subject in subjects)
        listing_alerts.append(_listing_alert(group, kinds[subjects[0]], zone, code, subjects, first))
    not_working = sorted(zone['zone'] for zone in data['zones'] if not zone['working'])
    assert not_working == ['dbl.spamhaus.org', 'expired.test', 'refused.test', 'zen.spamhaus.org']
    rules = yaml.safe_load(GOLDEN_RULES.read_text(encoding='utf-8'))
    names = ('MailinfraDnsblListed', 'MailinfraDnsblZoneNotWorking', 'MailinfraDnsblCheckFailed')
    annotations = {rule['alert']: rule['annotations'] for rule in rules['groups'][0]['rules'] if rule['alert'] in names}
    zone_alerts = [
        {
            'exp_labels': {'instance': 'mon1:9100', 'host': 'mon1', 'zone': zone, 'severity': 'warning'},
            'exp_annotations': {
                key: value.replace('{{ $labels.zone }}', zone)
                for key, value in annotations['MailinfraDnsblZoneNotWorking'].items()
            },
        }
        for zone in not_working
    ]
    failed = {
        key: value.replace('{{ $labels.host }}', 'mon1')
        for key, value in annotations['MailinfraDnsblCheckFailed'].items()
    }
    tests = {
        'rule_files': ['dnsbl.yml'],
        'evaluation_interval': '1m',
        'tests': [
            {
                'interval': '1m',
                'input_series': [{'series': name, 'values': f'{value:.0f}x5'} for name, value in series],
                'alert_rule_test': [
                    {'eval_time': '2m', 'alertname': 'MailinfraDnsblListed', 'exp_alerts': listing_alerts},
                    {'eval_time': '2m', 'alertname': 'MailinfraDnsblZoneNotWorking', 'exp_alerts': zone_alerts},
                    {
                        'eval_time': '2m',
                        'alertname': 'MailinfraDnsblCheckFailed',
                        'exp_alerts': [
                            {
                                'exp_labels': {'instance': 'mon1:9100', 'host': 'mon1', 'severity': 'warning'},
                                'exp_annotations': failed,
                            }
                        ],
                    },
                ],
            }
        ],
    }
    shutil.copy(GOLDEN_RULES, tmp_path / 'dnsbl.yml')
    (tmp_path / 'dnsbl.test.yml').write_text(yaml.safe_dump(tests, sort_keys=False), encoding='utf-8')
    result = subprocess.run([promtool, 'test', 'rules', 'dnsbl.test.yml'], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dqs_key_in_any_case_never_shown(
    rbldnsd: Rbldnsd, tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv('MAILINFRA_DQS_KEY', DQS_KEY)
    path = _contract(tmp_path, rbldnsd.nameserver, _zones()[:1])
    code, data, output = _command(capsys, '--contract', str(path), '--ip', '192.0.2.10', '--textfile',
                                  str(tmp_path / 'dqs.prom'))  # fmt: skip
    assert code == 1 and data['listed'][0]['listings'][0]['code'] == '127.0.0.2'
    assert data['listed'][0]['query'] == f'10.2.0.192.{KEY_PLACEHOLDER}.zen.dq.spamhaus.net'
    everything = output + caplog.text + (tmp_path / 'dqs.prom').read_text(encoding='utf-8')
    assert DQS_KEY.lower() not in everything.lower()
    # the report the controller prints as JSON, and the errors of a zone that times out, too
    silent = Stub(silent=True)
    try:
        subjects = subjects_from(['192.0.2.10', '192.0.2.254'])
        good = check(subjects, _zones()[:1], [rbldnsd.nameserver], dqs_key=DQS_KEY)
        timing_out = check(subjects, _zones()[:1], [silent.nameserver], dqs_key=DQS_KEY, timeout=0.2, retries=0)
    finally:
        silent.close()
    assert [r.status for r in good.results] == ['listed', 'error']
    assert timing_out.zones[0].errors == {'timeout': 2} and {r.status for r in timing_out.results} == {'untrusted'}
    shown = json.dumps([good.to_dict(), timing_out.to_dict()]) + caplog.text
    assert KEY_PLACEHOLDER in shown and DQS_KEY.lower() not in shown.lower()


def test_zone_option_takes_any_case_and_a_trailing_dot(
    rbldnsd: Rbldnsd, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--zone ZEN.Spamhaus.org.`` was "not a zone of the contract": names compare as DNS names do."""
    path = str(_contract(tmp_path, rbldnsd.nameserver, _zones()))
    only = ('--ip', '192.0.2.10', '--no-history', '--no-textfile')
    code, data, _ = _command(
        capsys, '--contract', path, *only, '--zone', 'ZEN.Spamhaus.org.', '--zone', 'zen.spamhaus.org'
    )
    assert code == 1
    assert [(z['zone'], z['working']) for z in data['zones']] == [('zen.spamhaus.org', True)]
    assert [(r['zone'], r['status']) for r in data['results']] == [('zen.spamhaus.org', 'listed')]
    # an unknown zone is an error naming the contract's zones, the close ones first; nothing is asked
    assert main(['dnsbl', 'check', '--contract', path, *only, '--zone', 'Refused.tst']) == 64
    captured = capsys.readouterr()
    assert captured.out == ''
    assert captured.err == (
        'dnsbl: --zone Refused.tst: not a zone of the contract; its zones: refused.test, expired.test, '
        'dbl.spamhaus.org, empty.test, zen.spamhaus.org\n'
    )


@pytest.mark.parametrize('flags', [True, False], ids=['flags', 'no-flags'])
def test_custom_zones_of_the_spec_ask_host_names_and_ipv6(
    rbldnsd: Rbldnsd, tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: bool
) -> None:
    """``host_names`` and ``ipv6`` of a spec's custom zone reach the host's contract and change what is asked."""
    on = str(flags).lower()
    zones = (
        '  dnsbl:\n    custom_zones:\n'
        '      - {zone: Hosts.Test., kind: domain, operator: X, listings: {127.0.1.2: low, 127.0.1.4: phish, '
        f'127.0.1.5: malware}}, errors: {{127.0.1.255: ip query}}, host_names: {on}}}\n'
        f'      - {{zone: v6.test, kind: ip, operator: X, listings: {{127.0.0.2: listed}}, ipv6: {on}}}\n'
    )
    spec = parse_spec(edit('monitoring:\n', 'monitoring:\n' + zones, BASE), 'spec.yml', as_of=AS_OF)
    contract = host_contract(RenderContext(spec.deployment, spec.facts, spec.name, {}, TEST_DKIM), 'mta1')
    custom = [zone for zone in contract.blocklists.zones if zone.zone.endswith('.test')]
    assert [(z.zone, z.ipv6, z.host_names) for z in custom] == [('hosts.test', False, flags), ('v6.test', flags, False)]
    path = str(_contract(tmp_path, rbldnsd.nameserver, custom))
    subjects = ('--domain', 'a.subs.example', '--ip', '2001:db8::1', '--ip', '192.0.2.10')
    code, data, _ = _command(capsys, '--contract', path, *subjects, '--no-history', '--no-textfile')
    asked = {(r['subject'], r['zone']): (r['query'], r['status']) for r in data['results']}
    nibbles = '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2'
    expected = {
        ('subs.example', 'hosts.test'): ('subs.example.hosts.test', 'clean'),  # "*.subs.example": subdomains only
        ('192.0.2.10', 'v6.test'): ('10.2.0.192.v6.test', 'clean'),
    }
    if flags:
        expected[('a.subs.example', 'hosts.test')] = ('a.subs.example.hosts.test', 'listed')
        expected[('2001:db8::1', 'v6.test')] = (f'{nibbles}.v6.test', 'listed')
    assert asked == expected
    assert code == (1 if flags else 0)
    for result in data['results']:  # what rbldnsd answers kdig, as the check read it
        assert sorted(result['answers']) == rbldnsd.dig(result['query']), result['query']
    listed = {(r['subject'], c['code']) for r in data['listed'] for c in r['listings']}
    assert listed == ({('a.subs.example', '127.0.1.5'), ('2001:db8::1', '127.0.0.2')} if flags else set())


SOA = '$SOA 3600 ns.test. hostmaster.test. 0 3600 600 86400 60\n$NS 3600 ns.test.\n'
LISTING = f'{SOA}$DATASET ip4set:sbl @\n:127.0.0.2:SBL listed\n127.0.0.2\n{{}}'
"""A ZEN-style zone: its test point, and ``{}``."""
STEPS: tuple[tuple[dict[str, str] | None, str], ...] = (
    # what rbldnsd serves at each run (None: not running), and the pair's status
    ({'zen': LISTING.format('192.0.2.10\n')}, 'listed'),
    ({'zen': LISTING.format('192.0.2.10 :127.255.255.254:open resolver\n')}, 'error'),  # an error answer
    (None, 'untrusted'),  # timeouts
    ({'zen': '$TIMESTAMP 2020:01:01 +1d\n' + LISTING.format('192.0.2.10\n')}, 'untrusted'),  # expired: SERVFAIL
    ({'zen': LISTING.format('192.0.2.10\n'), 'acl': '127.0.0.0/8 :refuse\n'}, 'untrusted'),  # REFUSED
    ({'zen': LISTING.format('')}, 'clean'),  # delisted
)


def test_a_listing_is_kept_across_error_answers_and_cleared_by_a_real_delisting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Listed, then an error answer, no answer, SERVFAIL and REFUSED: the textfile keeps the listing as it was (same
    labels, first seen, the time of its last confirming answer), and the alert keeps firing; a real delisting clears
    it and the alert resolves. The textfiles of the six runs go through promtool with the rendered rules."""
    port = _free_port()
    path = contract(tmp_path, f'127.0.0.1:{port}', ('zen.spamhaus.org',))
    textfiles: list[dict[str, float]] = []
    statuses = []
    for files, _ in STEPS:
        root = _data_root(files or {})
        datasets = tuple(f'zen.spamhaus.org:{kind}:{name}' for name, kind in (('zen', 'combined'), ('acl', 'acl'))
                         if name in (files or {}))  # fmt: skip
        try:
            with contextlib.ExitStack() as stack:
                if files is not None:
                    stack.enter_context(_serving(root, datasets, port, listed=False))
                code = main(['dnsbl', 'check', '--contract', str(path), '--format', 'json', '--timeout', '0.3',
                             '--retries', '0'])  # fmt: skip
        finally:
            shutil.rmtree(root, ignore_errors=True)
        data = json.loads(capsys.readouterr().out)
        statuses.append({r['subject']: r['status'] for r in data['results']}['192.0.2.10'])
        assert code == (1 if statuses[-1] == 'listed' else 0 if statuses[-1] == 'clean' else 2)
        text = (tmp_path / 'mailinfra_dnsbl.prom').read_text(encoding='utf-8')
        textfiles.append(dict(_series(line) for line in text.splitlines() if line and not line.startswith('#')))
    assert statuses == [status for _, status in STEPS]
    labels = (
        '{instance="mon1:9100",host="mon1",code="127.0.0.2",severity="critical",subject="192.0.2.10",'
        'subject_group="192.0.2.10",subject_kind="ip",zone="zen.spamhaus.org"}'
    )
    pair = '{instance="mon1:9100",host="mon1",subject="192.0.2.10",subject_kind="ip",zone="zen.spamhaus.org"}'
    listed, since, confirmed = (
        'mailinfra_dnsbl_listed' + labels,
        'mailinfra_dnsbl_listed_since_timestamp_seconds' + pair,
        'mailinfra_dnsbl_listed_confirmed_timestamp_seconds' + pair,
    )
    kept = textfiles[:5]
    assert all(metrics.get(listed) == 1 for metrics in kept)  # the same series, whatever the answer
    assert len({metrics[since] for metrics in kept}) == 1
    assert len({metrics[confirmed] for metrics in kept[1:]}) == 1  # the first run's answer, not confirmed since
    assert kept[1][confirmed] <= kept[4]['mailinfra_dnsbl_last_run_timestamp_seconds{instance="mon1:9100",host="mon1"}']
    assert not any(name.startswith('mailinfra_dnsbl_listed') for name in textfiles[5])  # delisted: gone
    with connect(Store('sqlite', path=str(tmp_path / 'agent.db'))) as db:
        (row,) = [row for row in history(db) if row.subject == '192.0.2.10']
    assert row.cleared is not None and int(kept[0][since]) == row.first_seen
    # promtool: each run's textfile scraped for 5 minutes; a series the next file lacks goes stale at once
    names = sorted({name for metrics in textfiles for name in metrics})
    series = []
    for name in names:
        values: list[str] = []
        for index, metrics in enumerate(textfiles):
            if name in metrics:
                values += [f'{metrics[name]:.0f}'] * 5
            else:
                values += ['stale' if index and name in textfiles[index - 1] else '_'] + ['_'] * 4
        series.append({'series': name, 'values': ' '.join(values)})
    alert = _listing_alert('192.0.2.10', 'ip', 'zen.spamhaus.org', '127.0.0.2', ['192.0.2.10'], int(kept[0][since]))
    cases = [
        {'eval_time': f'{minute}m', 'alertname': 'MailinfraDnsblListed', 'exp_alerts': [alert] if minute < 25 else []}
        for minute in (2, 7, 12, 17, 22, 27)
    ]
    tests = {
        'rule_files': ['dnsbl.yml'],
        'evaluation_interval': '1m',
        'tests': [{'interval': '1m', 'input_series': series, 'alert_rule_test': cases}],
    }
    shutil.copy(GOLDEN_RULES, tmp_path / 'dnsbl.yml')
    (tmp_path / 'kept.test.yml').write_text(yaml.safe_dump(tests, sort_keys=False), encoding='utf-8')
    promtool = shutil.which('promtool')
    assert promtool is not None, 'promtool is not installed (apt-get install prometheus)'
    result = subprocess.run([promtool, 'test', 'rules', 'kept.test.yml'], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
