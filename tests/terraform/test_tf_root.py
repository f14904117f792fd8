"""The rendered Terraform root (terraform/main.tf.json): golden files, module contracts, provider pins, wiring."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from root_helpers import (
    DATA,
    EXAMPLES,
    example_spec,
    module_name,
    module_outputs,
    module_pins,
    module_variables,
    references,
    registry,
    rendered,
    root_of,
    spec_from,
    static_only_text,
)
from tf_helpers import MODULES_DIR

from mailinfra_iac import Spec, load_spec, render_files
from mailinfra_iac.render import RenderContext
from mailinfra_iac.render.providers import plugins
from mailinfra_iac.render.terraform import (
    REQUIRED_VERSION,
    TerraformRenderer,
    allocation_targets,
    terraform_root,
)
from tests.conftest import AS_OF, TEST_DKIM
from tests.golden_files import expected_files


def multi_provider() -> Spec:
    return load_spec(DATA / 'multi-provider.yml', as_of=AS_OF)


def all_specs() -> list[tuple[str, Spec]]:
    return [
        *[(example.stem, example_spec(example.stem)) for example in EXAMPLES],
        ('static-only', spec_from(static_only_text())),
        ('multi-provider', multi_provider()),
    ]


SPECS = all_specs()
IDS = [name for name, _ in SPECS]


@pytest.mark.parametrize('example', EXAMPLES, ids=[example.stem for example in EXAMPLES])
def test_golden_terraform_files(example: Path) -> None:
    """Same bytes as tests/golden/<example>/terraform/ (written by `python -m tests.golden_files --update`)."""
    expected = {path: content for path, content in expected_files(example).items() if path.startswith('terraform/')}
    assert expected, f'no golden Terraform files for {example.stem}: update the golden files'
    actual = rendered(example_spec(example.stem))
    assert sorted(actual) == sorted(expected)
    for path, content in actual.items():
        assert content == expected[path], f'{example.stem}/{path} differs from the golden file'


@pytest.mark.parametrize(('name', 'spec'), SPECS, ids=IDS)
def test_module_calls_pass_exactly_declared_variables(name: str, spec: Spec) -> None:
    problems = []
    for call_name, call in root_of(spec)['module'].items():
        module = module_name(call)
        declared = module_variables(module)
        given = {key for key in call if key not in ('source', 'providers', '//')}
        problems += [f'{call_name}: "{key}" is not a variable of {module}' for key in sorted(given - set(declared))]
        missing = sorted(key for key, required in declared.items() if required and key not in given)
        problems += [f'{call_name}: required variable "{key}" of {module} is missing' for key in missing]
        assert call['source'] == f'./modules/{module}'
    assert problems == []


@pytest.mark.parametrize(('name', 'spec'), SPECS, ids=IDS)
def test_providers_are_pinned_as_in_the_modules(name: str, spec: Spec) -> None:
    root = root_of(spec)
    wanted: dict[str, dict[str, str]] = {}
    for call in root['module'].values():
        wanted.update(module_pins(module_name(call)))
    assert root['terraform']['required_providers'] == wanted
    assert root['terraform']['required_version'] == REQUIRED_VERSION
    assert sorted(root.get('provider', {})) == sorted(wanted)


def test_pin_table_matches_every_module() -> None:
    for module in sorted(p.name for p in MODULES_DIR.iterdir() if p.is_dir()):
        for provider, pin in module_pins(module).items():
            assert {'source': plugins()[provider].source, 'version': plugins()[provider].version} == pin


@pytest.mark.parametrize(('name', 'spec'), SPECS, ids=IDS)
def test_every_reference_is_declared(name: str, spec: Spec) -> None:
    root = root_of(spec)
    problems = []
    for kind, first, attribute in sorted(references(root), key=str):
        if kind == 'module':
            call = root['module'].get(first)
            if call is None:
                problems.append(f'module.{first} is not called')
            elif attribute not in module_outputs(module_name(call)):
                problems.append(f'module.{first}.{attribute} is not an output of {module_name(call)}')
        elif kind == 'var' and first not in root.get('variable', {}):
            problems.append(f'var.{first} is not declared')
        elif kind == 'local' and first not in root['locals']:
            problems.append(f'local.{first} is not defined')
        elif kind == 'data' and attribute not in root.get('data', {}).get(first, {}):
            problems.append(f'data.{first}.{attribute} is not declared')
    assert problems == []


@pytest.mark.parametrize(('name', 'spec'), SPECS, ids=IDS)
def test_no_placeholders_or_secrets_left(name: str, spec: Spec) -> None:
    text = rendered(spec)['terraform/main.tf.json'].decode()
    assert '<ip:' not in text
    assert '<host:' not in text
    assert 'PRIVATE KEY' not in text
    root = json.loads(text)
    for provider, config in root.get('provider', {}).items():
        for block in config if isinstance(config, list) else [config]:
            for key, value in block.get('update', block).items():
                if key in ('api_token', 'token', 'api_key', 'key_secret'):
                    assert value.startswith('${var.'), f'{provider}.{key} must come from a variable'
                    assert root['variable'][value[6:-1]].get('sensitive') is True


@pytest.mark.parametrize(('name', 'spec'), SPECS, ids=IDS)
def test_copied_modules_are_byte_identical(name: str, spec: Spec) -> None:
    files = rendered(spec)
    used = {module_name(call) for call in root_of(spec)['module'].values()}
    copied = {path.split('/')[2] for path in files if path.startswith('terraform/modules/')}
    assert copied == used
    for module in used:
        repo_files = {p.name: p.read_bytes() for p in (MODULES_DIR / module).iterdir() if p.is_file()}
        ours = {path.rpartition('/')[2]: content for path, content in files.items() if f'/modules/{module}/' in path}
        assert ours == repo_files


def test_high_volume_wiring() -> None:
    root = root_of(example_spec('high-volume-powermta'))
    dns = root['module']['dns_shopmax_example']
    hetzner = root['module']['ip_hetzner']
    assert dns['source'] == './modules/dns_cloudflare'
    assert dns['zone_id'] == 'fedcba9876543210fedcba9876543210'
    assert dns['records']['rx1.mta/A']['values'] == ['${module.ip_hetzner.addresses["reactivation_alloc1"]}']
    assert dns['records']['pmta3.mta/A']['values'] == ['${data.hcloud_server.host_pmta3.ipv4_address}']
    spf = dns['records']['offers/TXT']['values'][0]
    assert spf.startswith('v=spf1 ip4:${module.ip_hetzner.addresses["reactivation_alloc1"]} ip4:')
    assert spf.endswith(' -all')
    # reactivation IPs are allocated at Hetzner on the servers created here; reverse DNS waits for the A records
    assert sorted(hetzner['ips']) == [f'reactivation_alloc{n}' for n in range(1, 5)]
    assert all('address' not in ip for ip in hetzner['ips'].values())
    assert hetzner['servers']['pmta3'] == {
        'server_type': 'ccx23',
        'location': 'hel1',
        'image': 'debian-12',
        'ssh_keys': '${var.hetzner_ssh_keys}',
    }
    assert hetzner['forward_records']['reactivation_alloc2'] == '${module.dns_shopmax_example.fqdns["rx2.mta/A"]}'
    # addresses the spec gives for servers created here cannot be adopted: passed on, PTR requested
    static = root['module']['ip_static']
    assert static['ips']['transactional_203_0_113_10'] == {
        'pool': 'transactional',
        'host': 'pmta1',
        'ptr': 'tx1.mta.shopmax.example',
        'address': '203.0.113.10',
    }
    assert root['data']['hcloud_server']['host_pmta1'] == {'id': '${module.ip_hetzner.server_ids["pmta1"]}'}
    assert root['locals']['host_addresses']['host_pmta1'] == '${data.hcloud_server.host_pmta1.ipv4_address}'
    assert root['output']['ptr_requests']['value'] == '${module.ip_static.ptr_requests}'
    assert 'terraform apply -target=module.ip_hetzner.hcloud_server.this' in dns['//']
    assert allocation_targets(root) == [
        'module.ip_hetzner.hcloud_server.this',
        'module.ip_hetzner.hcloud_primary_ip.this',
        'module.ip_hetzner.hcloud_floating_ip.this',
    ]


def test_txt_values_are_rendered_for_each_provider() -> None:
    root = root_of(example_spec('newsletter-publisher'))
    route53 = root['module']['dns_dailybrief_example']['records']['s2026q4._domainkey/TXT']['values'][0]
    raw = TEST_DKIM.values['rsa']
    assert route53 == raw[:255] + '""' + raw[255:]
    cloudflare = root_of(example_spec('saas-transactional'))['module']['dns_acme_example']['records']
    assert cloudflare['s2026q4._domainkey/TXT']['values'][0] == f'"{raw[:255]}" "{raw[255:]}"'
    multi = root_of(multi_provider())['module']['dns_knot_multi_example']['records']
    assert multi['s2026q4._domainkey/TXT']['values'][0] == raw


def test_reverse_zone_ptrs_stay_dns_records() -> None:
    """newsletter-publisher serves 100.51.198.in-addr.arpa itself: PTRs are records, no IP module sets them."""
    root = root_of(example_spec('newsletter-publisher'))
    reverse = root['module']['dns_100_51_198_in_addr_arpa']
    assert reverse['source'] == './modules/dns_rfc2136'
    assert reverse['records']['20/PTR']['values'] == ['n1.mail.dailybrief.example.']
    assert not [name for name in root['module'] if name.startswith('ip_')]
    assert root['locals']['known_addresses']['marketing_198_51_100_20'] == '198.51.100.20'
    assert root['output']['ptr_requests']['value'] == []
    assert root['provider']['dns'] == [
        {
            'update': {
                'server': '198.51.100.53',
                'key_name': '${var.rfc2136_key_name}',
                'key_algorithm': '${var.rfc2136_key_algorithm}',
                'key_secret': '${var.rfc2136_key_secret}',
            }
        }
    ]


def test_zonefile_zones_get_no_terraform() -> None:
    spec = spec_from(static_only_text())
    root = root_of(spec)
    assert sorted(root['module']) == ['ip_static']
    assert 'provider' not in root
    assert root['terraform']['required_providers'] == {}
    files = render_files(spec, registry=registry(), dkim=TEST_DKIM)
    assert 'dns/zones/testco.example.zone' in files


def test_multi_provider_calls() -> None:
    root = root_of(multi_provider())
    modules = root['module']
    assert sorted(modules) == [
        'dns_100_51_198_in_addr_arpa',
        'dns_aws_multi_example',
        'dns_knot_multi_example',
        'dns_multi_example',
        'ip_aws',
        'ip_hetzner',
        'ip_linode',
        'ip_ovh',
        'ip_static',
        'ip_vultr',
    ]
    assert modules['dns_knot_multi_example']['providers'] == {'dns': 'dns.server_192_0_2_53'}
    assert [config.get('alias') for config in root['provider']['dns']] == [None, 'server_192_0_2_53']
    assert modules['dns_aws_multi_example']['zone_id'] == '${var.zone_id_aws_multi_example}'
    assert modules['ip_vultr']['region'] == 'fra'
    assert modules['ip_hetzner']['existing_servers'] == {
        'hz1': {'id': '${var.hetzner_server_ids["hz1"]}', 'location': 'nbg1'}
    }
    assert modules['ip_hetzner']['ips']['hetzner_192_0_2_104']['address'] == '192.0.2.104'
    assert root['variable']['aws_region']['default'] == 'eu-central-1'
    assert root['locals']['host_addresses'] == {'host_vu1': '${var.host_addresses["vu1"]}'}
    assert sorted(modules['ip_static']['ips']) == ['static_192_0_2_120']  # 198.51.100.20 is in our reverse zone


def test_root_does_not_depend_on_terraform_outputs() -> None:
    """--terraform-output fills the inventory and zone files; the root keeps referring to module outputs."""
    spec = example_spec('high-volume-powermta')
    outputs = json.loads((DATA / 'high-volume-terraform-output.json').read_text())['ip_addresses']['value']
    with_outputs = RenderContext(spec.deployment, spec.facts, spec.name, outputs, TEST_DKIM)
    assert terraform_root(with_outputs) == root_of(spec)


def test_renderer_registers_and_writes_its_files() -> None:
    renderer = TerraformRenderer()
    assert renderer.name == 'terraform'
    files = render_files(example_spec('saas-transactional'), registry=registry(), dkim=TEST_DKIM)
    terraform = sorted(path for path in files if path.startswith('terraform/'))
    assert terraform[0] == 'terraform/main.tf.json'
    assert json.loads(files['terraform/main.tf.json'].content)['//'].startswith('Generated by mailinfra-iac')
