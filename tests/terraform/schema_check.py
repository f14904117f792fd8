"""Check Terraform resource bodies against the offline provider schemas.

The schemas live in ``tests/data/tf_schemas/<provider>.json`` and are written by
``script/extract-tf-schemas``. A body is given the way Terraform's JSON syntax (``.tf.json``)
writes it: a dict of argument name to value, where a nested block is a dict or a list of
dicts, and ``dynamic`` maps a block name to ``{"for_each": ..., "content": {...}}``.
``hcl_body_to_json`` converts a body parsed by python-hcl2 into that shape.

Usage::

    from schema_check import check_resource
    problems = check_resource('cloudflare_dns_record', {'zone_id': '...', 'name': 'x', ...})
    assert problems == []

Limits: values are not type-checked (they are usually expressions), and the schema data
cannot always tell a nested *attribute* (``settings = {...}``) from a nested *block*
(``settings {...}``), so both spellings are accepted for nested objects.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA_DIR = Path(__file__).resolve().parents[1] / 'data' / 'tf_schemas'

# Arguments Terraform itself handles on every resource or data block.
META_ARGUMENTS = frozenset({'count', 'for_each', 'depends_on', 'provider', 'lifecycle', 'provisioner', 'connection'})

# Resource types built into Terraform (terraform.io/builtin/terraform): no provider schema.
BUILTIN_RESOURCES: dict[str, dict[str, Any]] = {
    'terraform_data': {
        'attributes': {
            'id': {'computed': True, 'optional': False, 'required': False},
            'input': {'computed': False, 'optional': True, 'required': False},
            'output': {'computed': True, 'optional': False, 'required': False},
            'triggers_replace': {'computed': False, 'optional': True, 'required': False},
        },
        'blocks': {},
    },
}


@cache
def load_schemas(schema_dir: Path = SCHEMA_DIR) -> dict[str, dict[str, Any]]:
    """All schema files of ``schema_dir``, keyed by provider local name (file stem)."""
    return {path.stem: json.loads(path.read_text(encoding='utf-8')) for path in sorted(schema_dir.glob('*.json'))}


def find_schema(
    resource_type: str, *, kind: str = 'resource', schema_dir: Path = SCHEMA_DIR
) -> tuple[dict[str, Any] | None, str]:
    """Return (schema, provider) for a type, or (None, reason)."""
    if kind == 'resource' and resource_type in BUILTIN_RESOURCES:
        return BUILTIN_RESOURCES[resource_type], 'terraform'
    section = 'resources' if kind == 'resource' else 'data_sources'
    for provider, doc in load_schemas(schema_dir).items():
        if resource_type in doc.get(section, {}):
            return doc[section][resource_type], provider
    label = 'resource' if kind == 'resource' else 'data source'
    return None, f'no schema for {label} type "{resource_type}" in {schema_dir} (run script/extract-tf-schemas)'


def check_resource(
    resource_type: str, attrs: Mapping[str, Any], *, kind: str = 'resource', schema_dir: Path = SCHEMA_DIR
) -> list[str]:
    """Return every problem found in one resource (or data source) body; empty means none.

    Reported: unknown attributes and blocks, required attributes or blocks that are missing,
    computed-only attributes that are set, and the same inside nested and dynamic blocks.
    """
    schema, reason = find_schema(resource_type, kind=kind, schema_dir=schema_dir)
    if schema is None:
        return [reason]
    body = {k: v for k, v in attrs.items() if k not in META_ARGUMENTS}
    return _check_body(resource_type, schema, body)


def _check_body(where: str, schema: Mapping[str, Any], body: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    attributes: Mapping[str, Any] = schema.get('attributes', {})
    blocks: Mapping[str, Any] = schema.get('blocks', {})

    dynamic = _dynamic_blocks(where, body.get('dynamic'), problems)
    for name, value in body.items():
        if name == 'dynamic':
            continue
        if name in attributes:
            flags = attributes[name]
            if flags.get('computed') and not (flags.get('optional') or flags.get('required')):
                problems.append(f'{where}: "{name}" is computed by the provider and cannot be set')
        elif name in blocks:
            for i, item in enumerate(_block_items(value)):
                problems += _check_body(f'{where}.{name}[{i}]', blocks[name], item)
        else:
            problems.append(f'{where}: unknown attribute or block "{name}"')

    for name, contents in dynamic.items():
        if name not in blocks:
            problems.append(f'{where}: unknown block "{name}" in dynamic block')
            continue
        for content in contents:
            problems += _check_body(f'{where}.dynamic.{name}', blocks[name], content)

    for name, flags in attributes.items():
        if flags.get('required') and name not in body:
            problems.append(f'{where}: required attribute "{name}" is missing')
    for name, flags in blocks.items():
        if flags.get('required') and name not in body and name not in dynamic:
            problems.append(f'{where}: required block "{name}" is missing')
    return problems


def _block_items(value: Any) -> list[Mapping[str, Any]]:
    """The bodies of a nested block value; an expression (string) cannot be looked into."""
    if isinstance(value, Mapping):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, Mapping)]
    return []


def _dynamic_blocks(where: str, value: Any, problems: list[str]) -> dict[str, list[Mapping[str, Any]]]:
    out: dict[str, list[Mapping[str, Any]]] = {}
    for group in _block_items(value):
        for name, spec in group.items():
            for item in _block_items(spec):
                if 'content' not in item:
                    problems.append(f'{where}: dynamic "{name}" has no content block')
                    continue
                out.setdefault(name, []).extend(_block_items(item['content']))
    return out


# --------------------------------------------------------------------------------------
# python-hcl2 adapter
# --------------------------------------------------------------------------------------


def _unquote(label: str) -> str:
    return label[1:-1] if len(label) >= 2 and label[0] == label[-1] == '"' else label


def hcl_body_to_json(body: Any) -> Any:
    """Convert a python-hcl2 (v7/v8) body to the ``.tf.json`` shape used by check_resource.

    Drops ``__comments__``/``__is_block__`` markers and unquotes block labels, so that
    ``dynamic "mx" {...}`` becomes ``{"dynamic": [{"mx": {...}}]}``.
    """
    if isinstance(body, list):
        return [hcl_body_to_json(item) for item in body]
    if not isinstance(body, Mapping):
        return body
    return {_unquote(k): hcl_body_to_json(v) for k, v in body.items() if k not in ('__comments__', '__is_block__')}


def hcl_blocks(parsed: Mapping[str, Any], kind: str = 'resource') -> list[tuple[str, str, dict[str, Any]]]:
    """(type, name, body) of every ``resource`` (or ``data``) block in a python-hcl2 document."""
    found: list[tuple[str, str, dict[str, Any]]] = []
    for group in parsed.get(kind, []):
        for rtype, named in group.items():
            if rtype in ('__comments__', '__is_block__'):
                continue
            for name, body in named.items():
                if name in ('__comments__', '__is_block__'):
                    continue
                found.append((_unquote(rtype), _unquote(name), hcl_body_to_json(body)))
    return found
