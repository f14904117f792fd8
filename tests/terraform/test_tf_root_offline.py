"""Rendered roots run by real Terraform (>= 1.5) offline.

A root that needs no provider (static addresses, zone files) is planned and applied as rendered. Roots that need
providers cannot be initialised here (no registry), so they are planned and applied with each provider module
replaced by a stub: the module's own variables.tf (types and validation rules) and outputs of the same names.
That checks the JSON syntax, every expression, the module arguments against the real variable declarations,
the wiring between modules, and the outputs; what the providers do with the values is out of reach.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from root_helpers import (
    DATA,
    EXAMPLES,
    MIN_VERSION,
    apply_offline,
    example_spec,
    registry,
    root_of,
    spec_from,
    static_only_text,
    stubbed_root,
)

from mailinfra_iac import Spec, load_spec, render
from mailinfra_iac.cli.main import main
from mailinfra_iac.facts.records import PLACEHOLDER
from mailinfra_iac.terraform import Terraform, TerraformError, find_terraform
from tests.conftest import AS_OF, TEST_DKIM


@pytest.fixture(scope='module')
def terraform() -> str:
    try:
        return find_terraform(minimum=MIN_VERSION).path
    except TerraformError as error:
        pytest.fail(f'these tests run real Terraform >= 1.5 (on PATH or $MAILINFRA_TERRAFORM): {error}')


def test_static_only_root_plans_and_applies_as_rendered(terraform: str, tmp_path: Path) -> None:
    spec = spec_from(static_only_text())
    out = render(spec, tmp_path / 'out', registry=registry(), dkim=TEST_DKIM)
    runner = Terraform(out / 'terraform', find_terraform(terraform))
    runner.init(backend=False)
    plan = runner.plan()
    assert plan.changes  # new output values
    assert plan.plan_file is not None and plan.plan_file.is_file()
    runner.apply()
    outputs = runner.output()
    values = {name: output['value'] for name, output in outputs.items()}
    assert values == {
        'ip_addresses': {
            'bulk_192_0_2_20': '192.0.2.20',
            'bulk_192_0_2_21': '192.0.2.21',
            'tx_192_0_2_10': '192.0.2.10',
        },
        'addresses_by_pool': {'bulk': ['192.0.2.20', '192.0.2.21'], 'tx': ['192.0.2.10']},
        'ptr_requests': [
            '192.0.2.10 -> tx1.testco.example',
            '192.0.2.20 -> bulk1.testco.example',
            '192.0.2.21 -> bulk2.testco.example',
        ],
    }
    assert not runner.plan(out=None).changes
    # `terraform output -json` goes back into a render
    (tmp_path / 'tf.json').write_text(json.dumps(outputs), encoding='utf-8')
    spec_file = tmp_path / 'spec.yml'
    spec_file.write_text(static_only_text(), encoding='utf-8')
    assert main(['dkim', 'generate', str(spec_file), '--keys', str(tmp_path / 'keys')]) == 0
    args = ['render', str(spec_file), '-o', str(tmp_path / 'again'), '--keys', str(tmp_path / 'keys')]
    assert main([*args, '--terraform-output', str(tmp_path / 'tf.json'), '--as-of', '2026-11-28']) == 0


def managed_by_terraform(spec: Spec, fqdn: str) -> bool:
    zones = [zone for zone in spec.deployment.dns.zones if fqdn == zone.name or fqdn.endswith('.' + zone.name)]
    return max(zones, key=lambda zone: len(zone.name)).provider != 'zonefile'


STUB_VARS = {
    'multi-provider': {
        'host_addresses': {'vu1': '192.0.2.150'},
        'hetzner_server_ids': {'hz1': '4711'},
        'ovh_ip_block': '203.0.113.0/28',
        'zone_id_aws_multi_example': 'Z0123456789ABCDEFGHIJ',
        'vultr_instance_ids': {'vu1': 'cb676a46-66fd-4dfb-b839-443f2e6c0b60'},
        'linode_instance_ids': {'li1': '12345678'},
    }
}


def _specs() -> list[tuple[str, Spec]]:
    return [
        *[(example.stem, example_spec(example.stem)) for example in EXAMPLES],
        ('multi-provider', load_spec(DATA / 'multi-provider.yml', as_of=AS_OF)),
    ]


@pytest.mark.parametrize(('name', 'spec'), _specs(), ids=[name for name, _ in _specs()])
def test_root_with_stub_modules_applies(terraform: str, tmp_path: Path, name: str, spec: Spec) -> None:
    root = root_of(spec)
    stubbed_root(root, tmp_path, STUB_VARS.get(name))
    outputs = apply_offline(terraform, tmp_path, 'test.tfvars.json')
    addresses = outputs['ip_addresses']
    # every IP, and every machine without an address in the spec, has an address after apply
    wanted = {ip.id for ip in spec.facts.ips}
    wanted |= {f'host_{host}' for host, h in spec.deployment.hosts.items() if h.address is None}
    assert set(addresses) == wanted
    for ip in spec.facts.ips:
        if ip.address is not None:
            assert addresses[ip.id] == ip.address
    assert outputs['addresses_by_pool'] == {
        pool: sorted(addresses[ip.id] for ip in spec.facts.ips if ip.pool == pool)
        for pool in {ip.pool for ip in spec.facts.ips}
    }
    # the DNS modules received every record with the allocated addresses filled in
    ptrs = {ip.id: ip.ptr for ip in spec.facts.ips}
    for module, received in outputs.items():
        if module.startswith('received_dns_'):
            values = [value for record in received.values() for value in record['values']]
            assert not [value for value in values if PLACEHOLDER.search(value) or '${' in value]
        if module.startswith('received_ip_'):
            # forward_records points reverse DNS at the A record of each IP's own PTR name, where Terraform writes it
            ips = root['module'][module.removeprefix('received_')]['ips']
            assert received == {ip_id: ptrs[ip_id] for ip_id in ips if managed_by_terraform(spec, ptrs[ip_id])}
    if name == 'high-volume-powermta':
        dns = outputs['received_dns_shopmax_example']
        assert dns['rx1.mta/A']['values'] == [addresses['reactivation_alloc1']]
        assert dns['pmta1.mta/A']['values'] == [addresses['host_pmta1']]
        spf = dns['offers/TXT']['values'][0]
        assert spf == 'v=spf1 ' + ' '.join(f'ip4:{addresses[f"reactivation_alloc{n}"]}' for n in range(1, 5)) + ' -all'
