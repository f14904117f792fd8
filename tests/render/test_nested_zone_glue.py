"""A nameserver inside a managed child zone, named by the parent zone too: its addresses go into both zones
(glue in the parent), so BIND and Knot load both."""

from __future__ import annotations

from pathlib import Path

from mailinfra_iac import parse_spec
from mailinfra_iac.api import render_files
from mailinfra_iac.facts.records import derive_records

from ..conftest import AS_OF, TEST_DKIM, edit
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
