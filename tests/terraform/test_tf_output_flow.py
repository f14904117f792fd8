"""`terraform output -json` of the high-volume example flows back into the inventory and the zone export.

The fixture data/high-volume-terraform-output.json is what the rendered root's outputs look like after
`terraform apply` at Hetzner: reactivation_alloc1 became pmta3's primary IPv4 (so host_pmta3 is the same
address), alloc2-4 are floating IPs, and pmta1/pmta2 got their own primary addresses.
"""

from __future__ import annotations

import json
from pathlib import Path

import dns.zone
import pytest
import yaml
from root_helpers import DATA, REPO

from mailinfra_iac.cli.main import main

OUTPUT = DATA / 'high-volume-terraform-output.json'
SPEC = REPO / 'examples' / 'high-volume-powermta.yml'


@pytest.fixture
def rendered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Path:
    monkeypatch.setenv('MAILINFRA_KEYS_DIR', str(tmp_path / 'keys'))
    assert main(['dkim', 'generate', str(SPEC)]) == 0
    out = tmp_path / 'out'
    args = ['render', str(SPEC), '-o', str(out), '--terraform-output', str(OUTPUT), '--as-of', '2026-11-28']
    assert main(args) == 0, capsys.readouterr().err
    return out


def addresses() -> dict[str, str]:
    return dict(json.loads(OUTPUT.read_text())['ip_addresses']['value'])


def test_fixture_has_every_allocated_address() -> None:
    values = addresses()
    assert {f'reactivation_alloc{n}' for n in range(1, 5)} | {'host_pmta1', 'host_pmta2', 'host_pmta3'} <= set(values)
    assert values['host_pmta3'] == values['reactivation_alloc1']


def test_inventory_gets_allocated_and_host_addresses(rendered: Path) -> None:
    values = addresses()
    hosts = yaml.safe_load((rendered / 'inventory' / 'hosts.yml').read_text())['all']['children']
    mta = hosts['mta']['children']['mta_powermta']['hosts']
    assert {name: host['ansible_host'] for name, host in mta.items()} == {
        'pmta1': values['host_pmta1'],
        'pmta2': values['host_pmta2'],
        'pmta3': values['host_pmta3'],
    }
    pmta3 = yaml.safe_load((rendered / 'inventory' / 'host_vars' / 'pmta3.yml').read_text())
    assert [(ip['id'], ip['address']) for ip in pmta3['mta_base__sending_ips']] == [
        (f'reactivation_alloc{n}', values[f'reactivation_alloc{n}']) for n in range(1, 5)
    ]


def test_zone_export_is_complete(rendered: Path) -> None:
    values = addresses()
    zones = rendered / 'dns' / 'zones'
    assert not (zones / 'PENDING').exists()
    zone = dns.zone.from_file(str(zones / 'shopmax.example.zone'), 'shopmax.example', relativize=True)
    assert [r.address for r in zone.find_rdataset('rx2.mta', 'A')] == [values['reactivation_alloc2']]
    assert [r.address for r in zone.find_rdataset('pmta1.mta', 'A')] == [values['host_pmta1']]
    assert [r.address for r in zone.find_rdataset('ops1.mta', 'A')] == [values['host_ops1']]  # monitoring, database
    assert sorted(r.address for r in zone.find_rdataset('mta-sts.bounce', 'A')) == sorted(
        [values['host_pmta1'], values['host_pmta2']]
    )
    [spf] = zone.find_rdataset('offers', 'TXT')
    text = b''.join(spf.strings).decode()
    assert text == 'v=spf1 ' + ' '.join(f'ip4:{values[f"reactivation_alloc{n}"]}' for n in range(1, 5)) + ' -all'
