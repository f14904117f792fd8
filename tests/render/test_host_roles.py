"""Hosts without the "mta" role: inventory groups, no MTA variables or files, DNS records and Terraform for them."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from mailinfra_iac import Spec, parse_spec, render_files
from mailinfra_iac.cli.explain import explain_text
from mailinfra_iac.render import RenderContext
from mailinfra_iac.render.inventory import InventoryRenderer
from mailinfra_iac.render.rolevars import default_role_vars
from mailinfra_iac.render.rolevars.core import CoreVars
from mailinfra_iac.render.rolevars.mta_base import MtaBaseVars

from ..checks.test_host_roles import EVERY_ROLE
from ..conftest import AS_OF, BASE, TEST_DKIM, edit

SEPARATE = edit(
    'pools: [tx, bulk]\n',
    'pools: [tx, bulk]\n'
    '  mon1: {fqdn: mon1.testco.example, provider: static, address: 192.0.2.5, ssh_user: admin, '
    'roles: [monitoring, database]}\n',
    edit(
        'monitoring:\n',
        'monitoring:\n  alerts: [{kind: email, target: ops@testco.example}]\n'
        '  smarthost: {host: relay.example.net, sender: alerts@testco.example}\n',
    ),
)
"""The base spec and a separate existing machine for monitoring and the database."""


def spec_of(text: str) -> Spec:
    spec = parse_spec(text, 'spec.yml', as_of=AS_OF)
    assert [problem for problem in spec.problems if problem.severity != 'advice'] == []
    return spec


def files_of(text: str) -> dict[str, bytes]:
    return {path: output.content for path, output in render_files(spec_of(text), dkim=TEST_DKIM).items()}


def groups(files: dict[str, bytes]) -> dict[str, Any]:
    children: dict[str, Any] = yaml.safe_load(files['inventory/hosts.yml'])['all']['children']
    return children


def test_role_groups_hold_their_hosts_and_mta_groups_only_mta_hosts() -> None:
    found = groups(files_of(SEPARATE))
    assert found['monitoring'] == {'hosts': {'mon1': {'ansible_host': '192.0.2.5', 'ansible_user': 'admin'}}}
    assert found['database'] == {'hosts': {'mon1': {}}}
    assert 'dns_authoritative' not in found  # a group only for a role some host has
    assert list(found['mta']['children']['mta_postfix']['hosts']) == ['mta1']
    assert found['mta']['children']['mta_powermta']['hosts'] == {}
    assert list(found['inbound_mx']['hosts']) == ['mta1']  # default inbound hosts: the MTA hosts
    pools_and_streams = {name: value for name, value in found.items() if name.startswith(('pool_', 'stream_'))}
    assert all(list(value['hosts']) == ['mta1'] for value in pools_and_streams.values())


def test_co_located_roles_keep_connection_variables_in_the_mta_group() -> None:
    found = groups(files_of(EVERY_ROLE))
    assert found['mta']['children']['mta_postfix']['hosts']['mta1']['ansible_host'] == '192.0.2.1'
    assert found['monitoring'] == {'hosts': {'mta1': {}}}
    # ops1 (database, dns) is a VM: its address comes from Terraform, its name until then
    assert found['database'] == {'hosts': {'ops1': {'ansible_host': 'ops1.testco.example', 'ansible_user': 'root'}}}
    assert found['dns_authoritative'] == {'hosts': {'ops1': {}}}


def test_default_roles_add_no_group() -> None:
    found = groups(files_of(BASE))
    assert not {'monitoring', 'database', 'dns_authoritative'} & set(found)


MTA_PREFIXES = ('mailinfra__', 'mta_base__', 'opendkim__', 'postfix__', 'powermta__')


def test_a_host_without_the_mta_role_gets_no_mta_variables_or_files() -> None:
    files = files_of(SEPARATE)
    mon1 = yaml.safe_load(files.get('inventory/host_vars/mon1.yml', b'{}')) or {}
    assert not [name for name in mon1 if name.startswith(MTA_PREFIXES)]
    assert not [path for path in files if path.startswith('mta/mon1/') and re.search('postfix|opendkim|pmta', path)]
    assert 'mon1' not in files['inventory/group_vars/all.yml'].decode()
    mta1 = yaml.safe_load(files['inventory/host_vars/mta1.yml'])
    assert mta1['mta_base__hostname'] == 'mta1.testco.example'


def test_a_host_no_role_covers_has_no_host_vars_file() -> None:
    spec = spec_of(SEPARATE)
    context = RenderContext(spec.deployment, spec.facts, spec.name, {}, TEST_DKIM)
    written = {output.path for output in InventoryRenderer([CoreVars(), MtaBaseVars()]).render(context)}
    assert 'inventory/host_vars/mta1.yml' in written
    assert 'inventory/host_vars/mon1.yml' not in written


class MonitoringVars:
    """A role that runs on monitoring hosts only (``host_roles``)."""

    name = 'probe'
    host_roles = frozenset({'monitoring'})

    def group_vars(self, context: RenderContext) -> dict[str, Any]:
        return {}

    def host_vars(self, context: RenderContext, host: str) -> dict[str, Any]:
        return {'probe__host': host}


def test_a_role_says_on_which_hosts_it_runs() -> None:
    spec = spec_of(SEPARATE)
    context = RenderContext(spec.deployment, spec.facts, spec.name, {}, TEST_DKIM)
    renderer = InventoryRenderer([*default_role_vars(), MonitoringVars()])
    mon1 = renderer.host_vars(context, 'mon1')
    assert mon1['probe__host'] == 'mon1'
    assert not [name for name in mon1 if name.startswith(MTA_PREFIXES)]
    assert 'probe__host' not in renderer.host_vars(context, 'mta1')
    written = {output.path for output in renderer.render(context)}
    assert 'inventory/host_vars/mon1.yml' in written


def test_dns_records_name_the_host_but_mx_only_mta_hosts() -> None:
    records = json.loads(files_of(SEPARATE)['dns/records.json'])
    assert all(ptr['host'] == 'mta1' for ptr in records['provider_ptrs'])
    flat = records['records']
    a_records = [record for record in flat if record.get('type') == 'A' and record['name'].startswith('mon1')]
    assert [record['values'] for record in a_records] == [['192.0.2.5']]
    mx = [value for record in flat if record.get('type') == 'MX' for value in record['values']]
    assert mx and all('mta1.testco.example' in value for value in mx)


def test_terraform_creates_the_vm_without_sending_ips() -> None:
    root = json.loads(files_of(EVERY_ROLE)['terraform/main.tf.json'])
    hetzner = root['module']['ip_hetzner']
    assert hetzner['servers'] == {
        'ops1': {'image': 'debian-12', 'location': 'fsn1', 'server_type': 'cx22', 'ssh_keys': '${var.hetzner_ssh_keys}'}
    }
    assert hetzner['ips'] == {}
    carried = [ip for call in root['module'].values() for ip in call.get('ips', {}).values()]
    assert carried and all(ip['host'] == 'mta1' for ip in carried)
    assert root['locals']['host_addresses'] == {'host_ops1': '${data.hcloud_server.host_ops1.ipv4_address}'}
    assert set(root['locals']['pool_ips']) == {'tx', 'bulk'}


def test_explain_lists_roles() -> None:
    text = explain_text(spec_of(EVERY_ROLE))
    assert '  mta1: mta1.testco.example [static] 192.0.2.1; MTA postfix; pools tx, bulk; roles mta, monitoring' in text
    assert '  ops1: ops1.testco.example [hetzner, fsn1] allocated by Terraform; roles database, dns' in text
    assert 'roles' not in explain_text(spec_of(BASE))
