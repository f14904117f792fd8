"""A nameserver inside a managed child zone, named by the parent zone too: its addresses go into both zones
(glue in the parent), so BIND and Knot load both. A child served by the parent's own servers is delegated in the
parent's zone file, so a host of the child named by the parent (an MX) loads too."""

from __future__ import annotations

from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

from mailinfra_iac import parse_spec
from mailinfra_iac.api import render_files
from mailinfra_iac.cli.main import main
from mailinfra_iac.facts.records import derive_records, served_delegations
from mailinfra_iac.render.zonefile import zone_files

from ..conftest import AS_OF, TEST_DKIM, edit
from ..dnsserver.knot import KnotServer
from .test_zones_load import ZONEFILE, load_errors

NS = '      nameservers: [ns.sub.testco.example]\n      nameserver_addresses: {ns.sub.testco.example: [192.0.2.53]}\n'
NESTED = edit(ZONEFILE, NS + '    - name: sub.testco.example\n      provider: zonefile\n' + NS)


def _zones(text: str) -> dict[str, str]:
    spec = parse_spec(text, 'spec.yml', as_of=AS_OF)
    files = render_files(spec, renderers=['dns'], addresses={}, dkim=TEST_DKIM)
    return {
        name[len('dns/zones/') : -len('.zone')]: file.content.decode()
        for name, file in files.items()
        if name.endswith('.zone')
    }


def test_nested_zones_both_load(tmp_path: Path) -> None:
    zones = _zones(NESTED)
    assert set(zones) == {'testco.example', 'sub.testco.example'}
    for zone, text in zones.items():
        assert load_errors(zone, text, tmp_path) == [], zone


def test_glue_is_in_the_parent_and_the_child() -> None:
    spec = parse_spec(NESTED, 'spec.yml', as_of=AS_OF)
    records = derive_records(spec.deployment, spec.facts, TEST_DKIM).records
    found = sorted((r.zone, r.name, r.values) for r in records if r.type == 'A' and r.purpose == 'nameserver')
    assert found == [('sub.testco.example', 'ns', ('192.0.2.53',)), ('testco.example', 'ns.sub', ('192.0.2.53',))]


def test_no_glue_where_the_parent_does_not_name_the_server() -> None:
    text = edit(ZONEFILE, ZONEFILE + '    - name: sub.testco.example\n      provider: zonefile\n' + NS)
    spec = parse_spec(text, 'spec.yml', as_of=AS_OF)
    records = derive_records(spec.deployment, spec.facts, TEST_DKIM).records
    assert [(r.zone, r.name) for r in records if r.name.startswith('ns')] == [
        ('sub.testco.example', 'ns'),
        ('testco.example', 'ns'),
    ]


# --- a child zone served by the parent's own servers is delegated in the parent's zone file ---

SITES = edit(
    ZONEFILE,
    ZONEFILE + '    - name: sites.testco.example\n      provider: zonefile\n      nameservers: [ns.testco.example]\n',
    edit('fqdn: mta1.testco.example', 'fqdn: mta1.sites.testco.example'),
)
"""The MTA (the MX of the return-path domains in the parent) lives in a child zone with the same nameservers."""


def test_parent_naming_a_host_of_a_child_zone_loads(tmp_path: Path) -> None:
    """Without NS for the child, the parent claims mta1.sites does not exist: BIND refuses its MX ("has no
    address records") with the integrity checks on (``-m fail``)."""
    zones = _zones(SITES)
    assert set(zones) == {'testco.example', 'sites.testco.example'}
    assert 'bounces 3600 IN MX 10 mta1.sites' in zones['testco.example'].splitlines()
    for zone, text in zones.items():
        assert load_errors(zone, text, tmp_path) == [], zone


def test_delegation_is_written_for_a_managed_child_only() -> None:
    parent = _zones(SITES)['testco.example']
    assert [line for line in parent.splitlines() if ' NS ' in line] == [
        '@ 3600 IN NS ns.testco.example.',
        'sites 3600 IN NS ns.testco.example.',
    ]
    alone = _zones(edit('fqdn: mta1.testco.example', 'fqdn: mta1.sites.testco.example'))
    assert 'sites 3600 IN NS' not in alone['testco.example']


def test_records_zone_format_writes_the_delegation_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / 'spec.yml'
    spec.write_text(SITES)
    monkeypatch.setenv('MAILINFRA_KEYS_DIR', str(tmp_path / 'keys'))
    assert main(['dkim', 'generate', str(spec)]) == 0
    capsys.readouterr()
    assert main(['records', str(spec), '--format', 'zone', '--as-of', '2026-11-28']) == 0
    assert 'sites 3600 IN NS ns.testco.example.' in capsys.readouterr().out.splitlines()


EMPTY = edit(
    ZONEFILE,
    ZONEFILE + '    - name: empty.testco.example\n      provider: zonefile\n      nameservers: [ns.testco.example]\n',
)
"""A child zone with the parent's servers and no records: no zone file of its own is written."""


def test_no_delegation_to_a_child_without_a_zone_file(tmp_path: Path) -> None:
    """NS for a child whose file nobody loads is a lame delegation: Knot serving what we write must answer
    NXDOMAIN for its names from the parent, as before the delegation, not refer to servers without the zone."""
    zones = _zones(EMPTY)
    assert set(zones) == {'testco.example'}
    assert 'empty 3600 IN NS' not in zones['testco.example']
    assert load_errors('testco.example', zones['testco.example'], tmp_path) == []
    with KnotServer(zones) as knot:
        host, port = knot.nameserver.split(':')
        answer = dns.query.udp(dns.message.make_query('x.empty.testco.example', 'A'), host, port=int(port), timeout=5)
    assert (dns.rcode.to_text(answer.rcode()), bool(answer.flags & dns.flags.AA)) == ('NXDOMAIN', True)


def test_records_zone_files_delegate_to_written_children_only() -> None:
    spec = parse_spec(EMPTY, 'spec.yml', as_of=AS_OF)
    records = derive_records(spec.deployment, spec.facts, TEST_DKIM)
    nameservers = {zone.name: list(zone.nameservers) for zone in spec.deployment.dns.zones}
    zones = zone_files(records, nameservers, 3600, delegations=served_delegations(spec.deployment))
    assert set(zones) == {'testco.example'}
    assert 'empty 3600 IN NS' not in zones['testco.example']
