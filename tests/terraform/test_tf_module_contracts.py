"""Module layout, documentation and the shared input/output contracts."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import pytest
from tf_helpers import DNS_MODULES, IP_MODULES, MODULES, MODULES_DIR

FILES = ('main.tf', 'variables.tf', 'outputs.tf', 'versions.tf', 'README.md')


@cache
def load(module: str, name: str) -> dict[str, Any]:
    with (MODULES_DIR / module / name).open(encoding='utf-8') as fh:
        return hcl2.load(fh)


def _label(key: str) -> str:
    return key.strip('"')


def _text(value: str) -> str:
    """The text of a python-hcl2 string literal or heredoc."""
    value = value[1:-1] if value.startswith('"') and value.endswith('"') else value
    m = re.fullmatch(r'<<-?(\w+)\n(.*)\n\s*\1', value, re.DOTALL)
    return (m.group(2) if m else value).strip()


def blocks(module: str, name: str, kind: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for group in load(module, name).get(kind, []):
        for label, body in group.items():
            if not label.startswith('__'):
                out[_label(label)] = body
    return out


def variables(module: str) -> dict[str, dict[str, Any]]:
    return blocks(module, 'variables.tf', 'variable')


def outputs(module: str) -> dict[str, dict[str, Any]]:
    return blocks(module, 'outputs.tf', 'output')


def test_expected_modules_exist():
    assert DNS_MODULES == ['dns_cloudflare', 'dns_rfc2136', 'dns_route53']
    assert IP_MODULES == ['ip_aws', 'ip_hetzner', 'ip_linode', 'ip_ovh', 'ip_static', 'ip_vultr']


@pytest.mark.parametrize('module', MODULES)
def test_standard_files(module):
    missing = [f for f in FILES if not (MODULES_DIR / module / f).is_file()]
    assert missing == []
    assert 'required_version' in load(module, 'versions.tf')['terraform'][0]


@pytest.mark.parametrize('module', MODULES)
def test_variables_are_typed_described_and_collections_not_nullable(module):
    problems = []
    for name, body in variables(module).items():
        if 'type' not in body:
            problems.append(f'{name}: no type')
        description = _text(body.get('description', ''))
        if not description or not description.endswith('.') or not description[0].isupper():
            problems.append(f'{name}: description must be full sentences')
        collection = re.match(r'\$\{(map|list|set|object)\(', body.get('type', ''))
        if collection and body.get('nullable') is not False:
            problems.append(f'{name}: collections need nullable = false')
    assert problems == []


@pytest.mark.parametrize('module', MODULES)
def test_outputs_are_described(module):
    undescribed = [n for n, b in outputs(module).items() if not _text(b.get('description', '')).endswith('.')]
    assert undescribed == []


@pytest.mark.parametrize('module', MODULES)
def test_no_count_on_resources(module):
    text = '\n'.join(p.read_text(encoding='utf-8') for p in sorted((MODULES_DIR / module).glob('*.tf')))
    assert not re.search(r'^\s*count\s*=', text, re.MULTILINE), 'use for_each over maps, not count'


@pytest.mark.parametrize('module', MODULES)
def test_readme_documents_every_input_and_output(module):
    readme = (MODULES_DIR / module / 'README.md').read_text(encoding='utf-8')
    missing = [n for n in [*variables(module), *outputs(module)] if f'`{n}`' not in readme]
    assert missing == []


def _same_across(modules: list[str], getter, name: str, field: str) -> set[str]:
    return {getter(m)[name][field] for m in modules}


@pytest.mark.parametrize('name', ['zone', 'records'])
def test_dns_modules_share_input_contract(name):
    assert len(_same_across(DNS_MODULES, variables, name, 'type')) == 1


@pytest.mark.parametrize('module', DNS_MODULES)
def test_dns_modules_share_output_contract(module):
    assert 'fqdns' in outputs(module)


@pytest.mark.parametrize('name', ['ips', 'forward_records'])
def test_ip_modules_share_input_contract(name):
    assert len(_same_across(IP_MODULES, variables, name, 'type')) == 1


@pytest.mark.parametrize('module', IP_MODULES)
def test_ip_modules_share_output_contract(module):
    assert {'addresses', 'addresses_by_pool', 'ptr_records'} <= set(outputs(module))


def test_contract_types_are_the_documented_ones():
    records = variables('dns_cloudflare')['records']['type']
    assert records == '${map(object({name = string, type = string, ttl = number, values = list(string)}))}'
    ips = variables('ip_static')['ips']['type']
    assert ips == '${map(object({pool = string, host = string, ptr = string, address = optional(string)}))}'


def test_readme_paths_exist():
    for module in MODULES:
        assert Path(MODULES_DIR / module / 'README.md').stat().st_size > 200
