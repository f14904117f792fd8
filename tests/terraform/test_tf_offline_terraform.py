"""What real Terraform can check here without provider plugins.

Provider plugins cannot be installed offline, so `terraform validate` and `plan` of the
modules themselves are out of reach. Two things need no provider:

* a module's variables.tf on its own: `terraform plan` of a root made of it runs the
  module's own validation blocks on the inputs we give;
* ip_static, which has no resources at all, applied for real through a root module.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from tf_helpers import MODULES_DIR, find_terraform, run_terraform

MIN_VERSION = (1, 5, 0)  # the modules' required_version

CF_ZONE_ID = '0123456789abcdef0123456789abcdef'
DKIM_RAW = 'v=DKIM1; k=rsa; p=' + 'A' * 392

DNS_RECORDS = {
    'apex-mx': {'name': '@', 'type': 'MX', 'ttl': 300, 'values': ['10 mx1.example.com.', '20 mx2.example.com.']},
    'mx1-a': {'name': 'mx1', 'type': 'A', 'ttl': 300, 'values': ['203.0.113.10']},
    'spf': {'name': '@', 'type': 'TXT', 'ttl': 300, 'values': ['v=spf1 ip4:203.0.113.0/28 -all']},
    'dkim': {'name': 's2026q3._domainkey', 'type': 'TXT', 'ttl': 300, 'values': [DKIM_RAW]},
    'dmarc': {'name': '_dmarc', 'type': 'TXT', 'ttl': 300, 'values': ['v=DMARC1; p=reject']},
}
CAA = {'name': '@', 'type': 'CAA', 'ttl': 300, 'values': ['0 issue "letsencrypt.org"']}

IPS = {
    'mta1-a': {'pool': 'transactional', 'host': 'mta1', 'ptr': 'mta1-a.example.com'},
    'mta1-b': {'pool': 'bulk', 'host': 'mta1', 'ptr': 'mta1-b.example.com'},
}
STATIC_IPS = {
    'mta1-a': {'pool': 'transactional', 'host': 'mta1', 'ptr': 'mta1-a.example.com', 'address': '203.0.113.11'},
    'mta1-b': {'pool': 'bulk', 'host': 'mta1', 'ptr': 'mta1-b.example.com', 'address': '203.0.113.10'},
    'mta2-a': {'pool': 'bulk', 'host': 'mta2', 'ptr': 'mta2-a.example.com', 'address': '203.0.113.2'},
}

VALID_INPUTS = {
    'dns_cloudflare': {'zone': 'example.com', 'zone_id': CF_ZONE_ID, 'records': {**DNS_RECORDS, 'caa': CAA}},
    'dns_route53': {'zone': 'example.com', 'zone_id': 'Z0123456789ABCDEFGHIJ', 'records': {**DNS_RECORDS, 'caa': CAA}},
    'dns_rfc2136': {'zone': 'example.com', 'records': DNS_RECORDS},
    'ip_aws': {'ips': IPS, 'instance_ids': {'mta1': 'i-0123456789abcdef0'}},
    'ip_hetzner': {
        'ips': IPS,
        'servers': {'mta1': {'server_type': 'cx22', 'location': 'fsn1', 'image': 'debian-12'}},
    },
    'ip_linode': {'ips': IPS, 'instance_ids': {'mta1': '12345678'}},
    'ip_ovh': {'ips': STATIC_IPS, 'ip_block': '203.0.113.0/28'},
    'ip_static': {'ips': STATIC_IPS, 'forward_records': {'mta1-a': 'mta1-a.example.com'}},
    'ip_vultr': {'ips': IPS, 'region': 'fra', 'instance_ids': {'mta1': 'cb676a46-66fd-4dfb-b839-443f2e6c0b60'}},
}


def _with_record(module: str, record: dict) -> dict:
    inputs = json.loads(json.dumps(VALID_INPUTS[module]))
    inputs['records']['bad'] = record
    return inputs


def _with_ip(module: str, **changes) -> dict:
    inputs = json.loads(json.dumps(VALID_INPUTS[module]))
    first = sorted(inputs['ips'])[0]
    inputs['ips'][first].update(changes)
    return inputs


INVALID_INPUTS = [
    *[
        (
            m,
            _with_record(m, {'name': 'x', 'type': 'SRV', 'ttl': 300, 'values': ['0 5 5060 sip.example.com.']}),
            'Each record type must be one of',
        )
        for m in ('dns_cloudflare', 'dns_route53', 'dns_rfc2136')
    ],
    *[
        (
            m,
            _with_record(m, {'name': '@', 'type': 'MX', 'ttl': 300, 'values': ['mx.example.com.']}),
            'MX values must have the form "PREFERENCE EXCHANGE"',
        )
        for m in ('dns_cloudflare', 'dns_route53', 'dns_rfc2136')
    ],
    *[
        (
            m,
            _with_record(m, {'name': 'www.example.com.', 'type': 'A', 'ttl': 300, 'values': ['203.0.113.1']}),
            'Each record name must be "@" or a name relative to the zone',
        )
        for m in ('dns_cloudflare', 'dns_route53', 'dns_rfc2136')
    ],
    ('dns_rfc2136', _with_record('dns_rfc2136', CAA), 'CAA cannot be written over RFC 2136'),
    (
        'dns_rfc2136',
        _with_record('dns_rfc2136', {'name': '10', 'type': 'PTR', 'ttl': 300, 'values': ['a.', 'b.']}),
        'A CNAME or PTR record must have exactly one value',
    ),
    (
        'dns_cloudflare',
        _with_record('dns_cloudflare', {'name': 'x', 'type': 'A', 'ttl': 10, 'values': ['203.0.113.1']}),
        'Each TTL must be 1 (automatic) or a whole number of seconds from 30 to 86400',
    ),
    (
        'dns_cloudflare',
        {**VALID_INPUTS['dns_cloudflare'], 'zone_id': 'example.com'},
        'The zone_id must be 32 lower-case hexadecimal characters',
    ),
    (
        'dns_route53',
        {**VALID_INPUTS['dns_route53'], 'zone': 'Example.com.'},
        'The zone must be a lower-case domain name',
    ),
    *[
        (
            m,
            _with_ip(m, ptr='mta1-a.example.com.'),
            'Each ptr must be a fully qualified host name without a trailing dot',
        )
        for m in sorted(VALID_INPUTS)
        if m.startswith('ip_')
    ],
    *[
        (m, _with_ip(m, address='203.0.113.0/28'), 'Each address must be null or a single IPv4 or IPv6 address')
        for m in sorted(VALID_INPUTS)
        if m.startswith('ip_')
    ],
    ('ip_static', _with_ip('ip_static', address=None), 'Each IP needs an address: ip_static cannot allocate addresses'),
    (
        'ip_hetzner',
        {
            **VALID_INPUTS['ip_hetzner'],
            'servers': {'mta1': {'server_type': 'cx22', 'location': 'Falkenstein', 'image': 'debian-12'}},
        },
        'Each server location must be a Hetzner location name',
    ),
    (
        'ip_vultr',
        {**VALID_INPUTS['ip_vultr'], 'instance_ids': {'mta1': '12345'}},
        'Each instance id must be a Vultr instance UUID',
    ),
    (
        'ip_ovh',
        {**VALID_INPUTS['ip_ovh'], 'readiness_timeout': '2 minutes'},
        'The readiness_timeout must be null or a duration',
    ),
    (
        'ip_aws',
        {**VALID_INPUTS['ip_aws'], 'instance_ids': {'mta1': 'mta1'}},
        'Each instance id must be an EC2 instance id',
    ),
]


@pytest.fixture(scope='module')
def terraform() -> str:
    return find_terraform(MIN_VERSION)


def _squash(text: str) -> str:
    return re.sub(r'\s+', ' ', text)


def plan_variables(terraform: str, module: str, inputs: dict, tmp: Path):
    """Plan a root made of the module's variables.tf alone, with the given inputs."""
    shutil.copy(MODULES_DIR / module / 'variables.tf', tmp / 'variables.tf')
    (tmp / 'inputs.tfvars.json').write_text(json.dumps(inputs), encoding='utf-8')
    init = run_terraform(terraform, ['init', '-backend=false', '-input=false', '-no-color'], tmp)
    assert init.returncode == 0, init.stdout + init.stderr
    return run_terraform(
        terraform, ['plan', '-input=false', '-no-color', '-lock=false', '-var-file=inputs.tfvars.json'], tmp
    )


def test_modules_all_have_valid_sample_inputs():
    assert sorted(VALID_INPUTS) == sorted(p.name for p in MODULES_DIR.iterdir() if p.is_dir())


@pytest.mark.parametrize('module', sorted(VALID_INPUTS))
def test_valid_inputs_pass_module_validation(terraform, module, tmp_path):
    proc = plan_variables(terraform, module, VALID_INPUTS[module], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ('module', 'inputs', 'message'), INVALID_INPUTS, ids=[f'{m}-{i}' for i, (m, _, _) in enumerate(INVALID_INPUTS)]
)
def test_invalid_inputs_are_rejected(terraform, module, inputs, message, tmp_path):
    proc = plan_variables(terraform, module, inputs, tmp_path)
    assert proc.returncode != 0, f'{module} accepted invalid input'
    assert message in _squash(proc.stdout + proc.stderr)


def test_ip_static_applies_and_reports_ptr_requests(terraform, tmp_path):
    root = {
        'module': {'ips': {'source': str(MODULES_DIR / 'ip_static'), **VALID_INPUTS['ip_static']}},
        'output': {
            name: {'value': f'${{module.ips.{name}}}'}
            for name in ('addresses', 'addresses_by_pool', 'ptr_records', 'ptr_requests')
        },
    }
    (tmp_path / 'main.tf.json').write_text(json.dumps(root), encoding='utf-8')
    for args in (
        ['init', '-backend=false', '-input=false', '-no-color'],
        ['apply', '-auto-approve', '-input=false', '-no-color', '-lock=false'],
    ):
        proc = run_terraform(terraform, args, tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    out = run_terraform(terraform, ['output', '-json'], tmp_path)
    assert out.returncode == 0, out.stderr
    values = {k: v['value'] for k, v in json.loads(out.stdout).items()}
    assert values == {
        'addresses': {'mta1-a': '203.0.113.11', 'mta1-b': '203.0.113.10', 'mta2-a': '203.0.113.2'},
        'addresses_by_pool': {'bulk': ['203.0.113.10', '203.0.113.2'], 'transactional': ['203.0.113.11']},
        'ptr_records': {
            '203.0.113.10': 'mta1-b.example.com',
            '203.0.113.11': 'mta1-a.example.com',
            '203.0.113.2': 'mta2-a.example.com',
        },
        'ptr_requests': [
            '203.0.113.10 -> mta1-b.example.com',
            '203.0.113.11 -> mta1-a.example.com',
            '203.0.113.2 -> mta2-a.example.com',
        ],
    }


@pytest.mark.parametrize('module', sorted(VALID_INPUTS))
def test_terraform_reads_module_configuration(terraform, module):
    """`terraform providers` decodes the whole configuration (not resource bodies) offline."""
    proc = run_terraform(terraform, ['providers', '-no-color'], MODULES_DIR / module)
    assert proc.returncode == 0, proc.stdout + proc.stderr
