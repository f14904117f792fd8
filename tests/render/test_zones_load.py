"""Every rendered zone loads in BIND (named-checkzone) and Knot (kzonecheck); the zones they refuse are refused first.

The specs are every example and every spec file of the tests. Addresses that Terraform would allocate are
filled from 203.0.113.0/24 (RFC 5737), so that every zone is written rather than left pending.
named-checkzone runs with ``-i local``: the integrity checks that ``named`` itself applies when it loads a zone
(in-zone NS, MX and SRV targets); out-of-zone names would need a resolver and say nothing about our file. Each of
those checks fails the zone (``-m fail`` and the like) rather than warning, as ``named`` can be configured to.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest

from mailinfra_iac import parse_spec
from mailinfra_iac.api import load_spec, render_files
from mailinfra_iac.checks import CheckRegistry
from mailinfra_iac.cli.main import main
from mailinfra_iac.facts.records import PLACEHOLDER, derive_records
from mailinfra_iac.problems import format_path
from mailinfra_iac.render.zonefile import CnameConflict, NoNameservers, zone_text

from ..conftest import AS_OF, BASE, ROOT, TEST_DKIM, edit, position, problems


def _is_spec(path: Path) -> bool:
    return '\ndns:' in path.read_text()


SPECS = sorted(
    [
        *(ROOT / 'examples').glob('*.yml'),
        *(path for path in (ROOT / 'tests').rglob('*.yml') if 'golden' not in path.parts and _is_spec(path)),
    ]
)


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f'{name} is missing: run script/bootstrap (bind9-utils, knot-dnssecutils)'
    return path


STRICT = ['-k', 'fail', '-n', 'fail', '-m', 'fail', '-M', 'fail', '-S', 'fail']
"""Every check named-checkzone can make fatal is (bad owner names, NS/MX/SRV targets, MX or SRV at a CNAME)."""


def load_errors(zone: str, text: str, tmp_path: Path) -> list[str]:
    """What BIND and Knot say against loading the zone (empty when both load it)."""
    path = tmp_path / f'{zone}.zone'
    path.write_text(text)
    errors = []
    bind = subprocess.run(
        [_tool('named-checkzone'), '-i', 'local', *STRICT, zone, str(path)], capture_output=True, text=True, check=False
    )
    if bind.returncode != 0:
        errors.append('named-checkzone: ' + bind.stdout + bind.stderr)
    knot = subprocess.run([_tool('kzonecheck'), '-o', zone, str(path)], capture_output=True, text=True, check=False)
    if knot.returncode != 0:
        errors.append('kzonecheck: ' + knot.stdout + knot.stderr)
    return errors


def test_spec_list_covers_examples_and_fixtures() -> None:
    names = {path.relative_to(ROOT).as_posix() for path in SPECS}
    assert {'tests/fixtures/base.yml', 'tests/terraform/data/multi-provider.yml'} <= names
    assert len([name for name in names if name.startswith('examples/')]) == 3


@pytest.mark.parametrize('path', SPECS, ids=[path.relative_to(ROOT).as_posix() for path in SPECS])
def test_every_rendered_zone_loads(path: Path, tmp_path: Path) -> None:
    spec = load_spec(path, as_of=AS_OF)
    derived = derive_records(spec.deployment, spec.facts, TEST_DKIM)
    keys = sorted(
        match.group(2) if match.group(1) == 'ip' else f'host_{match.group(2)}'
        for match in (PLACEHOLDER.fullmatch(placeholder) for placeholder in derived.unresolved())
        if match
    )
    addresses = {key: f'203.0.113.{index + 1}' for index, key in enumerate(keys)}
    files = render_files(spec, renderers=['dns'], addresses=addresses, dkim=TEST_DKIM)
    zones = {name[len('dns/zones/') : -len('.zone')]: file for name, file in files.items() if name.endswith('.zone')}
    assert zones, f'{path.name} renders no zone file'
    assert 'dns/zones/PENDING' not in files
    for zone, file in zones.items():
        assert load_errors(zone, file.content.decode(), tmp_path) == [], zone


ZONEFILE = '      nameservers: [ns.testco.example]\n      nameserver_addresses: {ns.testco.example: [192.0.2.53]}\n'
TRACKED = '  - domain: news.testco.example\n'
"""Where a tracking hostname (a CNAME) goes in the base spec."""
CNAME_NS = TRACKED + '    tracking: {hostname: ns.news.testco.example, target: track.esp.example}\n'

REFUSED = {
    'zonefile zone without nameservers': (ZONEFILE, '', 'zonefile\nhosts:', 'dns.zones[0].provider'),
    'in-zone nameserver without address': (
        ZONEFILE,
        '      nameservers: [ns1.testco.example]\n',
        'ns1.testco.example]',
        'dns.zones[0].nameservers[0]',
    ),
    'apex as nameserver without address': (
        ZONEFILE,
        '      nameservers: [testco.example]\n',
        'testco.example]\nhosts',
        'dns.zones[0].nameservers[0]',
    ),
    'address given for another name': (
        ZONEFILE,
        '      nameservers: [mta1.testco.example]\n      nameserver_addresses: {ns2.testco.example: [192.0.2.53]}\n',
        'ns2.testco.example:',
        'dns.zones[0].nameserver_addresses.ns2.testco.example',
    ),
    'address for a nameserver outside every managed zone': (
        ZONEFILE,
        '      nameservers: [ns.provider.example]\n      nameserver_addresses: {ns.provider.example: [192.0.2.53]}\n',
        'ns.provider.example:',
        'dns.zones[0].nameserver_addresses.ns.provider.example',
    ),
}


@pytest.mark.parametrize('case', REFUSED, ids=list(REFUSED))
def test_unloadable_zone_is_refused_at_its_place(case: str) -> None:
    old, new, marker, path = REFUSED[case]
    text = edit(old, new)
    found = [problem for problem in problems(text) if problem.check == 'zone-nameservers']
    assert len(found) == 1, [str(problem) for problem in problems(text)]
    [problem] = found
    assert format_path(problem.path) == path
    assert (problem.line, problem.column) == position(text, marker)
    assert problem.expected


def test_nameserver_that_is_a_cname_is_refused() -> None:
    text = edit(TRACKED, CNAME_NS, edit(ZONEFILE, '      nameservers: [ns.news.testco.example]\n'))
    found = [problem for problem in problems(text) if problem.check == 'zone-nameservers']
    assert [problem.message.split(':')[0] for problem in found] == [
        'nameserver ns.news.testco.example of zone testco.example is a CNAME (a tracking hostname)'
    ], [str(problem) for problem in problems(text)]


def test_nameserver_in_another_managed_zone_needs_an_address() -> None:
    text = edit(
        '    - name: testco.example\n',
        '    - name: 2.0.192.in-addr.arpa\n      provider: zonefile\n      nameservers: [ns9.testco.example]\n'
        '    - name: testco.example\n',
    )
    [problem] = [problem for problem in problems(text) if problem.check == 'zone-nameservers']
    assert 'inside zone testco.example, which we publish' in problem.message
    assert (problem.line, problem.column) == position(text, 'ns9.testco.example')


@pytest.mark.parametrize(
    'nameservers',
    [
        '      nameservers: [mta1.testco.example]\n',  # a host of the deployment: its A record is there already
        '      nameservers: [ns.provider.example]\n',  # out of zone: no glue needed
        '      nameservers: [ns.testco.example]\n      nameserver_addresses: {ns.testco.example: [2001:db8::53]}\n',
        '      nameservers: [ns.testco.example, ns.provider.example]\n'
        '      nameserver_addresses: {ns.testco.example: [192.0.2.53, 2001:db8::53]}\n',
    ],
    ids=['deployment-host', 'out-of-zone', 'ipv6-glue', 'mixed'],
)
def test_accepted_nameservers_load(nameservers: str, tmp_path: Path) -> None:
    spec = parse_spec(edit(ZONEFILE, nameservers), 'spec.yml', as_of=AS_OF)
    files = render_files(spec, renderers=['dns'], dkim=TEST_DKIM)
    text = files['dns/zones/testco.example.zone'].content.decode()
    assert load_errors('testco.example', text, tmp_path) == []


@pytest.mark.parametrize('case', [case for case in REFUSED if 'address given' not in case and 'outside' not in case])
def test_what_the_check_refuses_bind_refuses(case: str, tmp_path: Path) -> None:
    """The same zones, written without the check (derive_records runs no checks), do not load."""
    old, new, _, _ = REFUSED[case]
    no_checks = parse_spec(edit(old, new), 'spec.yml', as_of=AS_OF, checks=_no_checks())
    records = derive_records(no_checks.deployment, no_checks.facts, TEST_DKIM).by_zone()['testco.example']
    servers = no_checks.deployment.dns.zones[0].nameservers
    if not servers:
        with pytest.raises(NoNameservers, match=r'zone testco\.example has no nameservers'):
            zone_text('testco.example', records, servers, 3600)
        return
    errors = load_errors('testco.example', zone_text('testco.example', records, servers, 3600), tmp_path)
    assert len(errors) == 2, errors
    assert 'has no address records' in errors[0]
    assert 'missing glue' in errors[1]


def test_cname_nameserver_does_not_load_in_bind(tmp_path: Path) -> None:
    text = edit(TRACKED, CNAME_NS, edit(ZONEFILE, '      nameservers: [ns.news.testco.example]\n'))
    spec = parse_spec(text, 'spec.yml', as_of=AS_OF, checks=_no_checks())
    records = derive_records(spec.deployment, spec.facts, TEST_DKIM).by_zone()['testco.example']
    text = zone_text('testco.example', records, ['ns.news.testco.example'], 3600)
    errors = load_errors('testco.example', text, tmp_path)
    assert errors and 'is a CNAME (illegal)' in errors[0]


def test_zone_without_nameservers_is_listed_not_written() -> None:
    """A provider-served zone without "nameservers" gets no zone file (it could not load) and is named instead."""
    text = edit(ZONEFILE, '').replace('provider: zonefile', 'provider: cloudflare\n      zone_id: abc')
    files = render_files(parse_spec(text, 'spec.yml', as_of=AS_OF), renderers=['dns'], dkim=TEST_DKIM)
    assert not [name for name in files if name.endswith('.zone')]
    assert files['dns/zones/NO-NAMESERVERS'].content.decode().splitlines()[-1] == 'testco.example'


def _no_checks() -> CheckRegistry:
    return CheckRegistry()


def test_base_spec_is_unchanged_by_the_helpers() -> None:
    assert BASE.count(ZONEFILE) == 1 and BASE.count(TRACKED) == 1


def test_records_zone_format_names_the_zones_it_cannot_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / 'spec.yml'
    spec.write_text(edit(ZONEFILE, '').replace('provider: zonefile', 'provider: cloudflare\n      zone_id: abc'))
    monkeypatch.setenv('MAILINFRA_KEYS_DIR', str(tmp_path / 'keys'))
    assert main(['dkim', 'generate', str(spec)]) == 0
    capsys.readouterr()
    assert main(['records', str(spec), '--format', 'zone', '--as-of', '2026-11-28']) == 0
    out = capsys.readouterr().out
    assert 'SOA' not in out
    assert out == '; zone testco.example not exported: the spec names no "nameservers" for it\n'


# --- a tracking CNAME is alone at its name (dnspython dropped the CNAME or its neighbours without a word) ---

NEWS = '  - domain: news.testco.example\n'


def _tracked(hostname: str, target: str = 't.esp.example') -> str:
    return edit(NEWS, f'{NEWS}    tracking: {{hostname: {hostname}, target: {target}}}\n')


TRACKING_CLASHES = {
    'zone apex': 'testco.example',
    'sending domain (SPF)': 'news.testco.example',
    'return-path domain (MX, SPF)': 'bounces.testco.example',
    'DMARC name': '_dmarc.testco.example',
    'PTR name (A)': 'tx1.testco.example',
    'host (A)': 'mta1.testco.example',
    'MTA-STS host (A)': 'mta-sts.bounces.testco.example',
    'DKIM name': 's2026q4._domainkey.testco.example',
}


@pytest.mark.parametrize('hostname', TRACKING_CLASHES.values(), ids=list(TRACKING_CLASHES))
def test_tracking_cname_beside_other_records_is_refused_at_its_place(hostname: str) -> None:
    text = _tracked(hostname)
    found = [problem for problem in problems(text) if problem.severity == 'error']
    assert [problem.check for problem in found] == ['tracking-hostname'], [str(problem) for problem in found]
    [problem] = found
    assert format_path(problem.path) == 'sending_domains[1].tracking.hostname'
    assert (problem.line, problem.column) == position(text, f'{hostname}, target')
    assert 'a CNAME must be the only record at its name' in problem.message


def test_one_tracking_name_with_two_targets_is_refused() -> None:
    first = '    dmarc: {p: none, rua: [dmarc@testco.example]}\n  - domain: news'
    text = edit(first, first.replace('\n', '\n    tracking: {hostname: click.testco.example, target: a.esp.example}\n'))
    text = edit(NEWS, f'{NEWS}    tracking: {{hostname: click.testco.example, target: b.esp.example}}\n', text)
    [problem] = [problem for problem in problems(text) if problem.check == 'tracking-hostname']
    assert format_path(problem.path) == 'sending_domains[1].tracking.hostname'
    assert 'with target a.esp.example' in problem.message


def test_tracking_names_of_their_own_load(tmp_path: Path) -> None:
    """A CNAME beside nothing, and one click host shared by two domains with one target, load and are kept."""
    first = '    dmarc: {p: none, rua: [dmarc@testco.example]}\n  - domain: news'
    text = edit(first, first.replace('\n', '\n    tracking: {hostname: click.testco.example, target: t.esp.example}\n'))
    text = edit(NEWS, f'{NEWS}    tracking: {{hostname: click.testco.example, target: t.esp.example}}\n', text)
    files = render_files(parse_spec(text, 'spec.yml', as_of=AS_OF), renderers=['dns'], dkim=TEST_DKIM)
    zone = files['dns/zones/testco.example.zone'].content.decode()
    assert load_errors('testco.example', zone, tmp_path) == []
    assert 'click 3600 IN CNAME t.esp.example.' in zone.splitlines()


@pytest.mark.parametrize('hostname', ['testco.example', 'tx1.testco.example', 'bounces.testco.example'])
def test_zone_text_refuses_a_cname_beside_other_records(hostname: str) -> None:
    """Without the check (derive_records runs none), the zone file is refused rather than written without a record."""
    spec = parse_spec(_tracked(hostname), 'spec.yml', as_of=AS_OF, checks=_no_checks())
    records = derive_records(spec.deployment, spec.facts, TEST_DKIM).by_zone()['testco.example']
    with pytest.raises(CnameConflict, match=f'{hostname} in zone testco.example would hold a CNAME and '):
        zone_text('testco.example', records, ['ns.testco.example'], 3600)


# --- names made from the spec (prefix + domain) stay within 253 characters and labels within 63 ---


def _long(length: int, zone: str = 'testco.example') -> str:
    """A name of ``length`` characters under ``zone``, in labels of at most 63."""
    labels, left = [], length - len(zone) - 1
    while left > 0:
        size = min(63, left - 1 if left > 64 else left)
        labels.append('x' * size)
        left -= size + 1
    return '.'.join([*labels, zone])


def test_long_name_helper() -> None:
    for length in (100, 233, 234, 247, 253):
        name = _long(length)
        assert len(name) == length and max(len(label) for label in name.split('.')) <= 63 and '' not in name.split('.')


OTHER_ZONE = '    - name: vendor.example\n      provider: zonefile\n      nameservers: [ns.provider.example]\n'
LONG_NAMES = {
    # edits, marker, field: the first derived name over the limit is named at the field that makes it
    'Ed25519 selector of 63 characters (64 with "e")': (
        [('selectors: [s2026q4], algorithm', f'selectors: [{"s" * 63}], algorithm')],
        's' * 63,
        'sending_domains[1].dkim.selectors[0]',
    ),
    'DKIM name over 253': (
        [('news.testco.example', _long(234))],
        's2026q4], algorithm',
        'sending_domains[1].dkim.selectors[0]',
    ),
    '_dmarc name over 253': (
        [('news.testco.example', _long(247))],
        _long(247) + '\n',
        'sending_domains[1].domain',
    ),
    'MTA-STS names of a return path': (
        [(NEWS, f'{NEWS}    return_path: {_long(245)}\n')],
        _long(245),
        'sending_domains[1].return_path',
    ),
    'report authorisation in another managed zone': (
        [
            ('    - name: testco.example\n', OTHER_ZONE + '    - name: testco.example\n'),
            (
                'algorithm: rsa+ed25519}\n    dmarc: {p: none, rua: [dmarc@testco.example]}',
                'algorithm: rsa+ed25519}\n    dmarc: {p: none, rua: [dmarc@testco.example, '
                f'r@{_long(230, "vendor.example")}]}}',
            ),
        ],
        'r@x',
        'sending_domains[1].dmarc.rua[1]',
    ),
    'feedback-loop domain': (
        [('\nmonitoring:', f'\ninbound: {{fbl_address: fbl@{_long(243)}}}\nmonitoring:')],
        'fbl@',
        'inbound.fbl_address',
    ),
}


@pytest.mark.parametrize('case', LONG_NAMES, ids=list(LONG_NAMES))
def test_derived_name_over_the_dns_limits_is_refused_at_its_field(case: str) -> None:
    edits, marker, path = LONG_NAMES[case]
    text = BASE
    for old, new in edits:
        text = text.replace(old, new)
    found = [problem for problem in problems(text) if problem.severity == 'error']
    assert {problem.check for problem in found} == {'dns-name-length'}, [str(problem) for problem in found]
    [problem] = [problem for problem in found if format_path(problem.path) == path]
    assert (problem.line, problem.column) == position(text, marker)
    assert problem.expected


def test_names_at_the_dns_limits_load(tmp_path: Path) -> None:
    """A sending domain whose longest record name (the Ed25519 DKIM name) has 253 characters renders and loads."""
    domain = _long(233)
    text = BASE.replace('news.testco.example', domain)
    files = render_files(parse_spec(text, 'spec.yml', as_of=AS_OF), renderers=['dns'], dkim=TEST_DKIM)
    zone = files['dns/zones/testco.example.zone'].content.decode()
    assert load_errors('testco.example', zone, tmp_path) == []
    assert len(f's2026q4e._domainkey.{domain}') == 253
    assert f's2026q4e._domainkey.{domain.removesuffix(".testco.example")} ' in zone


def test_percent_in_a_report_address_is_escaped_in_its_uri(tmp_path: Path) -> None:
    """The spec allows "%" in a local part; in a mailto: URI it starts an escape, so it is written "%25"."""
    text = edit(
        'dmarc: {p: none, rua: [dmarc@testco.example]}\n  - domain: news',
        'dmarc: {p: none, rua: ["d%zz@testco.example"], ruf: ["f%41@testco.example"]}\n  - domain: news',
    )
    text = edit('\nmonitoring:', '\ninbound: {tls_rpt: {rua: ["tls%rpt@testco.example"]}}\nmonitoring:', text)
    files = render_files(parse_spec(text, 'spec.yml', as_of=AS_OF), renderers=['dns'], dkim=TEST_DKIM)
    values = [v for r in json.loads(files['dns/records.json'].content)['records'] for v in r['values']]
    uris = {uri for value in values for uri in re.findall(r'mailto:[^,;]+', value)}
    assert {'mailto:d%25zz@testco.example', 'mailto:f%2541@testco.example', 'mailto:tls%25rpt@testco.example'} <= uris
    assert {unquote(uri) for uri in uris} >= {'mailto:d%zz@testco.example', 'mailto:tls%rpt@testco.example'}
    zone = files['dns/zones/testco.example.zone'].content.decode()
    assert load_errors('testco.example', zone, tmp_path) == []


# --- mail domains are host names: RFC 5321 section 4.1.2 Domains (LDH); BIND's check-names refuses "_" too ---

UNDERSCORE = {
    'sending domain (an envelope domain, RFC 5321 section 4.1.2)': (
        ('news.testco.example]\n', 'n_ws.testco.example]\n'),
        ('domain: news.testco.example\n', 'domain: n_ws.testco.example\n'),
        'n_ws.testco.example\n',
        'sending_domains[1].domain',
    ),
    'return path (MX, mta-sts A)': (
        (NEWS, NEWS + '    return_path: b_x.testco.example\n'),
        None,
        'b_x.testco.example',
        'sending_domains[1].return_path',
    ),
    'unsubscribe host (A)': (
        (
            '\nmonitoring:',
            '\nfeedback:\n  unsubscribe: {hostname: u_s.testco.example, tls_certificate: /a.pem, tls_key: /a.key}\n'
            'monitoring:',
        ),
        None,
        'u_s.testco.example',
        'feedback.unsubscribe.hostname',
    ),
}


@pytest.mark.parametrize('case', UNDERSCORE, ids=list(UNDERSCORE))
def test_underscore_in_a_host_name_is_refused_at_its_field(case: str) -> None:
    first, second, marker, path = UNDERSCORE[case]
    text = edit(*first)
    if second is not None:
        text = edit(*second, text)
    [problem] = [problem for problem in problems(text) if problem.severity == 'error']
    assert format_path(problem.path) == path
    assert (problem.line, problem.column) == position(text, marker)
    assert 'no "_"' in (problem.expected or '')


def test_bind_refuses_an_underscore_in_an_mx_or_a_owner(tmp_path: Path) -> None:
    """BIND agrees with RFC 5321: the base zone with the return path renamed does not load (check-names)."""
    files = render_files(parse_spec(BASE, 'spec.yml', as_of=AS_OF), renderers=['dns'], dkim=TEST_DKIM)
    zone = files['dns/zones/testco.example.zone'].content.decode()
    assert 'bounces.news 3600 IN MX' in zone
    errors = load_errors('testco.example', zone.replace('bounces.news', 'b_ounces.news'), tmp_path)
    assert errors and 'bad owner name (check-names)' in errors[0]


def test_underscore_in_a_tracking_name_loads(tmp_path: Path) -> None:
    """A CNAME's owner and target are not host names to check-names: "_" stays allowed there."""
    text = _tracked('c_k.testco.example', 't_x.esp.example')
    files = render_files(parse_spec(text, 'spec.yml', as_of=AS_OF), renderers=['dns'], dkim=TEST_DKIM)
    zone = files['dns/zones/testco.example.zone'].content.decode()
    assert 'c_k 3600 IN CNAME t_x.esp.example.' in zone.splitlines()
    assert load_errors('testco.example', zone, tmp_path) == []


# --- the names an allocation's ptr_pattern makes are host names (A, PTR, HELO) ---

CLOUD = ('    provider: static\n    address: 192.0.2.1\n', '    provider: hetzner\n    region: fsn1\n    size: cx22\n')
BULK = '        ptr: bulk2.testco.example\n'
PATTERNS = {
    'underscore (check-names)': ("{count: 2, ptr_pattern: 'b_{n}.testco.example'}", 'b_1.testco.example'),
    'underscore from the pool name': ("{count: 2, ptr_pattern: '{pool}-{n}.testco.example'}", 'bulk_eu-1'),
    'space and empty label (renderer crashed)': ("{count: 2, ptr_pattern: 'b {n}..testco.example'}", 'b 1..'),
    'trailing dot': ("{count: 2, ptr_pattern: 'b{n}.testco.example.'}", 'it ends with a dot'),
    'label of 64 at n=10 (renderer crashed)': (
        "{count: 10, ptr_pattern: '" + 'x' * 62 + "{n}.testco.example'}",
        'has 64 characters',
    ),
}


@pytest.mark.parametrize('case', PATTERNS, ids=list(PATTERNS))
def test_ptr_pattern_giving_no_host_name_is_refused_at_its_place(case: str) -> None:
    allocate, said = PATTERNS[case]
    text = edit(BULK, f'{BULK}    allocate: {allocate}\n', edit(*CLOUD))
    if 'pool name' in case:
        text = text.replace('  bulk:\n', '  bulk_eu:\n').replace('[tx, bulk]', '[tx, bulk_eu]')
        text = text.replace('pool: bulk\n', 'pool: bulk_eu\n')
    found = [problem for problem in problems(text) if problem.severity == 'error']
    assert [problem.check for problem in found] == ['allocated-ptr-name'], [str(problem) for problem in found]
    [problem] = found
    assert format_path(problem.path).endswith('.allocate.ptr_pattern')
    assert (problem.line, problem.column) == position(text, allocate[allocate.index("'") :])
    assert said in problem.message


def test_ptr_pattern_giving_a_single_label_is_named_so() -> None:
    """ "b1" is outside the zones too (ptr-outside-zones); allocated-ptr-name says what is wrong with the name."""
    text = edit(BULK, f"{BULK}    allocate: {{count: 2, ptr_pattern: 'b{{n}}'}}\n", edit(*CLOUD))
    found = {problem.check: problem.message for problem in problems(text) if problem.severity == 'error'}
    assert sorted(found) == ['allocated-ptr-name', 'ptr-outside-zones']
    assert found['allocated-ptr-name'].endswith(
        '"b1", which is not a host name: it is a single label; a host name has its domain too, e.g. "mta1.example.com"'
    )


def test_ptr_pattern_of_host_names_loads(tmp_path: Path) -> None:
    text = edit(BULK, f"{BULK}    allocate: {{count: 12, ptr_pattern: '{'x' * 61}{{n}}.{{host}}.testco.example'}}\n")
    spec = parse_spec(edit(*CLOUD, text), 'spec.yml', as_of=AS_OF)
    derived = derive_records(spec.deployment, spec.facts, TEST_DKIM)
    matches = [m for m in map(PLACEHOLDER.fullmatch, derived.unresolved()) if m]
    keys = sorted(m.group(2) if m.group(1) == 'ip' else f'host_{m.group(2)}' for m in matches)
    addresses = {key: f'203.0.113.{index + 1}' for index, key in enumerate(keys)}
    files = render_files(spec, renderers=['dns'], addresses=addresses, dkim=TEST_DKIM)
    zone = files['dns/zones/testco.example.zone'].content.decode()
    assert f'{"x" * 61}12.mta1 3600 IN A 203.0.113.' in zone
    assert load_errors('testco.example', zone, tmp_path) == []


# --- a managed reverse zone holds PTRs only: names inside it are outside the zones for every other record ---

REVERSE = edit(
    '    - name: testco.example\n',
    '    - name: 2.0.192.in-addr.arpa\n      provider: zonefile\n      nameservers: [ns.testco.example]\n'
    '    - name: testco.example\n',
)
IN_REVERSE = {
    'return path (MX, SPF, MTA-STS were dropped)': (
        f'{NEWS}    return_path: b.2.0.192.in-addr.arpa\n',
        'b.2.0.192.in-addr.arpa',
        'sending_domains[1].return_path',
    ),
    'tracking host (CNAME was dropped)': (
        f'{NEWS}    tracking: {{hostname: c.2.0.192.in-addr.arpa, target: t.esp.example}}\n',
        '{hostname',
        'sending_domains[1].tracking',
    ),
}


@pytest.mark.parametrize('case', IN_REVERSE, ids=list(IN_REVERSE))
def test_name_in_a_reverse_zone_is_outside_the_zones(case: str) -> None:
    new, marker, path = IN_REVERSE[case]
    text = edit(NEWS, new, REVERSE)
    found = [problem for problem in problems(text) if problem.severity == 'error']
    assert [problem.check for problem in found] == ['domain-outside-zones'], [str(problem) for problem in found]
    assert format_path(found[0].path) == path
    assert (found[0].line, found[0].column) == position(text, marker)
    assert 'in-addr.arpa' not in (found[0].expected or '')


def test_report_address_in_a_reverse_zone_is_not_ours_to_authorise() -> None:
    """The authorisation TXT would go in the reverse zone, which gets PTRs only: the warning, not the advice."""
    rua = 'rua: [dmarc@testco.example]}\n  - domain: news'
    text = edit(rua, rua.replace('testco.example]', 'testco.example, d@r.2.0.192.in-addr.arpa]'), REVERSE)
    [problem] = [problem for problem in problems(text) if problem.check == 'dmarc-external-rua']
    assert problem.severity == 'warning' and 'the owner of r.2.0.192.in-addr.arpa must' in problem.message
