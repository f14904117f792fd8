"""Every resource in terraform/modules matches the schema of the provider version it pins."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import pytest
from schema_check import SCHEMA_DIR, check_resource, hcl_blocks, load_schemas
from tf_helpers import MODULES, MODULES_DIR


@cache
def parsed(path: Path) -> dict[str, Any]:
    with path.open(encoding='utf-8') as fh:
        return hcl2.load(fh)


def module_blocks(kind: str) -> list[tuple[str, str, str, dict[str, Any]]]:
    out = []
    for module in MODULES:
        for tf in sorted((MODULES_DIR / module).glob('*.tf')):
            for rtype, name, body in hcl_blocks(parsed(tf), kind):
                out.append((module, rtype, name, body))
    return out


RESOURCES = module_blocks('resource')
DATA_SOURCES = module_blocks('data')


def test_modules_declare_resources():
    assert RESOURCES, 'no resource blocks found under terraform/modules'


@pytest.mark.parametrize(
    ('module', 'rtype', 'name', 'body'), RESOURCES, ids=[f'{m}:{t}.{n}' for m, t, n, _ in RESOURCES]
)
def test_resource_matches_provider_schema(module, rtype, name, body):
    assert check_resource(rtype, body) == []


@pytest.mark.parametrize(
    ('module', 'rtype', 'name', 'body'), DATA_SOURCES, ids=[f'{m}:data.{t}.{n}' for m, t, n, _ in DATA_SOURCES]
)
def test_data_source_matches_provider_schema(module, rtype, name, body):
    assert check_resource(rtype, body, kind='data') == []


# --------------------------------------------------------------------------------------
# The pinned provider version is the one the schema data was generated from.
# --------------------------------------------------------------------------------------


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split('.'))


def constraint_allows(constraint: str, version: str) -> bool:
    """Evaluate a Terraform version constraint (=, !=, >, >=, <, <=, ~>) for a plain x.y.z version."""
    have = _version_tuple(version)
    for part in constraint.split(','):
        m = re.fullmatch(r'\s*(~>|>=|<=|!=|=|>|<)?\s*(\d+(?:\.\d+)*)\s*', part)
        if not m:
            raise ValueError(f'unsupported constraint {part!r}')
        op, raw = m.group(1) or '=', m.group(2)
        want = _version_tuple(raw)
        padded = want + (0,) * (3 - len(want))
        ok = {
            '=': have == padded,
            '!=': have != padded,
            '>': have > padded,
            '>=': have >= padded,
            '<': have < padded,
            '<=': have <= padded,
            '~>': have >= padded and have[: len(want) - 1] == want[: len(want) - 1],
        }[op]
        if not ok:
            return False
    return True


def test_constraint_evaluator():
    assert constraint_allows('~> 5.14.0', '5.14.3')
    assert not constraint_allows('~> 5.14.0', '5.15.0')
    assert constraint_allows('~> 5.14', '5.99.0')
    assert not constraint_allows('~> 5.14', '6.0.0')
    assert constraint_allows('>= 1.2, < 2.0', '1.9.9')
    assert not constraint_allows('= 3.4.3', '3.4.4')


def _literal(value: str) -> str:
    """python-hcl2 v8 keeps the quotes of string literals."""
    return value[1:-1] if value.startswith('"') and value.endswith('"') else value


PINS = [
    (module, local, {k: _literal(v) for k, v in spec.items() if not k.startswith('__')})
    for module in MODULES
    for block in parsed(MODULES_DIR / module / 'versions.tf').get('terraform', [])
    for group in block.get('required_providers', [])
    for local, spec in group.items()
    if not local.startswith('__')
]


@pytest.mark.parametrize(('module', 'local', 'spec'), PINS, ids=[f'{m}:{lo}' for m, lo, _ in PINS])
def test_pinned_version_is_the_schema_version(module, local, spec):
    schemas = load_schemas()
    assert local in schemas, f'no schema data for provider "{local}" in {SCHEMA_DIR}'
    provider = schemas[local]['provider']
    assert spec['source'] == provider['source']
    assert constraint_allows(spec['version'], provider['version']), (
        f'{module} pins {local} "{spec["version"]}", but the schema data is for {provider["version"]}'
    )


def test_every_used_provider_is_pinned():
    pinned = {(m, lo) for m, lo, _ in PINS}
    schemas = load_schemas()
    for module, rtype, _name, _body in RESOURCES + DATA_SOURCES:
        if rtype == 'terraform_data':
            continue
        provider = next(p for p, doc in schemas.items() if rtype in doc['resources'] or rtype in doc['data_sources'])
        assert (module, provider) in pinned, f'{module} uses {rtype} but does not pin provider "{provider}"'


def test_schema_files_are_sorted_and_normalised():
    for path in sorted(SCHEMA_DIR.glob('*.json')):
        text = path.read_text(encoding='utf-8')
        assert text == json.dumps(json.loads(text), indent=1, sort_keys=True) + '\n', f'{path.name} is not normalised'
