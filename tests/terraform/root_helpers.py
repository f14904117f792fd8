"""Helpers for the tests of the rendered Terraform root (imported by name; see conftest.py)."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
from tf_helpers import MODULES_DIR, REPO, run_terraform

from mailinfra_iac import Spec, load_spec, parse_spec
from mailinfra_iac.dkim.source import DkimSource
from mailinfra_iac.render import RenderContext, RendererRegistry, default_registry
from mailinfra_iac.render.terraform import TerraformRenderer, terraform_root
from tests.conftest import AS_OF, BASE, TEST_DKIM

EXAMPLES = sorted((REPO / 'examples').glob('*.yml'))
GOLDEN = REPO / 'tests' / 'golden'
DATA = Path(__file__).resolve().parent / 'data'
MIN_VERSION = (1, 5, 0)


def registry() -> RendererRegistry:
    """The default renderers, with the Terraform one whether or not it is registered there yet."""
    renderers = default_registry()
    if 'terraform' not in renderers.names():
        renderers.register(TerraformRenderer())
    return renderers


def example_spec(name: str) -> Spec:
    return load_spec(REPO / 'examples' / f'{name}.yml', as_of=AS_OF)


def spec_from(text: str) -> Spec:
    return parse_spec(text, 'spec.yml', as_of=AS_OF)


def root_of(spec: Spec, dkim: DkimSource = TEST_DKIM) -> dict[str, Any]:
    return terraform_root(RenderContext(spec.deployment, spec.facts, spec.name, {}, dkim))


def rendered(spec: Spec, dkim: DkimSource = TEST_DKIM) -> dict[str, bytes]:
    context = RenderContext(spec.deployment, spec.facts, spec.name, {}, dkim)
    return {output.path: output.content for output in TerraformRenderer().render(context)}


def static_only_text() -> str:
    """The base spec: a zonefile zone and a static host, so the root needs no provider at all."""
    return BASE


def _label(key: str) -> str:
    return key.strip('"')


@cache
def module_blocks(module: str, file: str, kind: str) -> dict[str, dict[str, Any]]:
    with (MODULES_DIR / module / file).open(encoding='utf-8') as handle:
        parsed = hcl2.load(handle)
    return {
        _label(name): body
        for group in parsed.get(kind, [])
        for name, body in group.items()
        if not name.startswith('__')
    }


def module_variables(module: str) -> dict[str, bool]:
    """Variable name -> required (no default) of a repository module."""
    return {name: 'default' not in body for name, body in module_blocks(module, 'variables.tf', 'variable').items()}


def module_outputs(module: str) -> list[str]:
    return sorted(module_blocks(module, 'outputs.tf', 'output'))


def module_pins(module: str) -> dict[str, dict[str, str]]:
    """Provider local name -> {source, version} from a module's versions.tf."""
    with (MODULES_DIR / module / 'versions.tf').open(encoding='utf-8') as handle:
        terraform = hcl2.load(handle)['terraform'][0]
    pins: dict[str, dict[str, str]] = {}
    for group in terraform.get('required_providers', []):
        for name, body in group.items():
            if not name.startswith('__'):
                pins[name] = {key: value.strip('"') for key, value in body.items() if key in ('source', 'version')}
    return pins


def module_name(call: dict[str, Any]) -> str:
    return str(call['source']).rpartition('/')[2]


REFERENCE = re.compile(r'\b(module|var|local|data)\.([A-Za-z_][\w-]*)(?:\.([A-Za-z_][\w-]*))?')


def interpolations(text: str) -> list[str]:
    """The expressions of the ``${...}`` sequences of a Terraform template (``$${`` is a literal)."""
    found, index = [], 0
    while (start := text.find('${', index)) >= 0:
        if start > 0 and text[start - 1] == '$':
            index = start + 2
            continue
        depth, end = 0, start + 1
        while end < len(text):
            depth += {'{': 1, '}': -1}.get(text[end], 0)
            if depth == 0:
                break
            end += 1
        found.append(text[start + 2 : end])
        index = end + 1
    return found


def references(value: Any) -> set[tuple[str, str, str | None]]:
    """(kind, name, attribute) of every module./var./local./data. reference in the templates of a JSON value."""
    found: set[tuple[str, str, str | None]] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key != '//':
                found |= references(item)
    elif isinstance(value, list):
        for item in value:
            found |= references(item)
    elif isinstance(value, str):
        for expression in interpolations(value):
            found |= {match.groups() for match in REFERENCE.finditer(expression)}
    return found


# --------------------------------------------------------------------------------------------------
# Stub modules: the real variables.tf (with its validations) and outputs of the same names, no provider.
# --------------------------------------------------------------------------------------------------

FAKE_NET = '198.18.0.0/15'  # RFC 2544 benchmarking range: never a real sending address
_ADDRESSES = (
    '{ for id, ip in var.ips : id => ip.address != null ? ip.address : '
    f'cidrhost("{FAKE_NET}", OFFSET + index(sort(keys(var.ips)), id) + 1) }}'
)
STUB_OUTPUTS = {
    'fqdns': '{ for id, r in var.records : id => r.name == "@" ? var.zone : "${r.name}.${var.zone}" }',
    'record_ids': '{ for id in keys(var.records) : id => "stub-${id}" }',
    'addresses': 'local.addresses',
    'addresses_by_pool': (
        '{ for pool in distinct([for ip in values(var.ips) : ip.pool]) : '
        'pool => sort([for id, ip in var.ips : local.addresses[id] if ip.pool == pool]) }'
    ),
    'ptr_records': '{ for id, ip in var.ips : local.addresses[id] => ip.ptr }',
    'ptr_requests': 'sort([for id, ip in var.ips : "${local.addresses[id]} -> ${ip.ptr}"])',
    'server_ids': '{ for i, host in sort(keys(var.servers)) : host => tostring(1000 + i) }',
    'floating_ips': '[]',
    'allocation_ids': '{ for id in keys(var.ips) : id => "eipalloc-${id}" }',
}
STUB_HOST_NET = '198.19.255.0/24'


def write_stub_module(module: str, target: Path, offset: int = 0) -> None:
    """A provider-less stand-in for ``module``: its own variables.tf, and the same outputs.

    Allocated addresses are taken from 198.18.0.0/15 from ``offset`` on, in IP id order."""
    target.mkdir(parents=True)
    (target / 'variables.tf').write_bytes((MODULES_DIR / module / 'variables.tf').read_bytes())
    outputs = {name: {'value': '${' + STUB_OUTPUTS[name] + '}'} for name in module_outputs(module)}
    stub: dict[str, Any] = {'output': outputs}
    if 'records' in module_variables(module):
        outputs['received'] = {'value': '${var.records}'}
    if 'ips' in module_variables(module):
        stub['locals'] = {'addresses': '${' + _ADDRESSES.replace('OFFSET', str(offset)) + '}'}
        outputs['received_forward_records'] = {'value': '${var.forward_records}'}
    (target / 'stub.tf.json').write_text(json.dumps(stub, indent=2), encoding='utf-8')


def stubbed_root(root: dict[str, Any], target: Path, tfvars: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``root`` to ``target`` with provider modules replaced by stubs, so real Terraform can plan it offline.

    Provider blocks and pins go (no plugin can be installed here); each ``data.hcloud_server`` becomes a local
    that still evaluates its ``id`` expression. Returns tfvars for the variables that have no default.
    """
    root = json.loads(json.dumps(root))
    root.pop('provider', None)
    root['terraform'].pop('required_providers', None)
    data = root.pop('data', {})
    servers = data.pop('hcloud_server', {})
    assert data == {}, f'data sources without a stub: {sorted(data)}'
    stub_servers = {
        name: {'id': body['id'], 'ipv4_address': f'${{cidrhost("{STUB_HOST_NET}", {i + 1})}}'}
        for i, (name, body) in enumerate(sorted(servers.items()))
    }
    text = json.dumps(root).replace('data.hcloud_server.', 'local.stub_hcloud_server.')
    root = json.loads(text)
    if stub_servers:
        root['locals']['stub_hcloud_server'] = stub_servers
    for number, call in enumerate(root['module'].values()):
        name = module_name(call)
        if name == 'ip_static':
            (target / 'modules' / name).mkdir(parents=True, exist_ok=True)
            for path in sorted((MODULES_DIR / name).glob('*.tf')):
                (target / 'modules' / name / path.name).write_bytes(path.read_bytes())
        elif not (target / 'modules' / name).exists():
            write_stub_module(name, target / 'modules' / name, offset=256 * number)
        call.pop('providers', None)
    for module, call in root['module'].items():
        if module_name(call) == 'ip_static':
            continue
        received = 'received' if 'records' in call else 'received_forward_records'
        root['output'][f'received_{module}'] = {'value': f'${{module.{module}.{received}}}'}
    (target / 'main.tf.json').write_text(json.dumps(root, indent=2), encoding='utf-8')
    tfvars = dict(tfvars or {})
    for name, variable in root.get('variable', {}).items():
        if 'default' not in variable and name not in tfvars:
            tfvars[name] = _dummy(variable['type'], name)
    (target / 'test.tfvars.json').write_text(json.dumps(tfvars), encoding='utf-8')
    return tfvars


def _dummy(type_: str, name: str) -> Any:
    if type_.startswith('map('):
        return {}
    if type_.startswith('list('):
        return []
    return f'dummy-{name}'


def apply_offline(terraform: str, directory: Path, var_file: str | None = None) -> dict[str, Any]:
    """init, apply and ``output -json`` of a provider-less root; returns the output values."""
    extra = [f'-var-file={var_file}'] if var_file else []
    steps = (
        ['init', '-backend=false', '-input=false', '-no-color'],
        ['apply', '-auto-approve', '-input=false', '-no-color', '-lock=false', *extra],
    )
    for args in steps:
        proc = run_terraform(terraform, args, directory)
        assert proc.returncode == 0, f'terraform {args[0]} failed:\n{proc.stdout}\n{proc.stderr}'
    proc = run_terraform(terraform, ['output', '-json'], directory)
    assert proc.returncode == 0, proc.stderr
    return {name: value['value'] for name, value in json.loads(proc.stdout).items()}
