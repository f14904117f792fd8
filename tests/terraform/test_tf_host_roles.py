"""A VM without the "mta" role: created by its provider's module like an MTA host, with no sending IP or PTR."""

from __future__ import annotations

from pathlib import Path

import pytest
from root_helpers import MIN_VERSION, apply_offline, root_of, spec_from, stubbed_root

from mailinfra_iac.terraform import TerraformError, find_terraform
from tests.checks.test_host_roles import EVERY_ROLE
from tests.conftest import edit

MANAGED_ZONE = edit('provider: zonefile\n', 'provider: rfc2136\n      server: 192.0.2.53\n', EVERY_ROLE)
"""Monitoring on the MTA host, and a Hetzner VM "ops1" for the database and DNS, in a zone Terraform updates."""


@pytest.fixture(scope='module')
def terraform() -> str:
    try:
        return find_terraform(minimum=MIN_VERSION).path
    except TerraformError as error:
        pytest.fail(f'these tests run real Terraform >= 1.5 (on PATH or $MAILINFRA_TERRAFORM): {error}')


def test_root_creates_the_vm_and_its_a_record_only() -> None:
    spec = spec_from(MANAGED_ZONE)
    assert [problem for problem in spec.problems if problem.severity != 'advice'] == []
    root = root_of(spec)
    assert root['module']['ip_hetzner']['ips'] == {}
    assert list(root['module']['ip_hetzner']['servers']) == ['ops1']
    records = root['module']['dns_testco_example']['records']
    assert records['ops1/A']['values'] == ['${data.hcloud_server.host_ops1.ipv4_address}']
    # the sending names and the MX are the MTA host's; nothing else names ops1
    named = [key for key, record in records.items() if 'ops1' in key or any('ops1' in v for v in record['values'])]
    assert named == ['ops1/A']
    assert 'ops1' not in str(root['module']['ip_static'])


def test_root_applies_offline(terraform: str, tmp_path: Path) -> None:
    root = root_of(spec_from(MANAGED_ZONE))
    stubbed_root(root, tmp_path)
    outputs = apply_offline(terraform, tmp_path, 'test.tfvars.json')
    host = outputs['ip_addresses']['host_ops1']
    assert outputs['received_dns_testco_example']['ops1/A']['values'] == [host]
    assert outputs['received_ip_hetzner'] == {}  # no reverse DNS waits for anything of ops1
    assert sorted(outputs['addresses_by_pool']) == ['bulk', 'tx']
