"""Deterministic serialisation shared by the renderers."""

from __future__ import annotations

import json
from typing import Any

import yaml

try:
    _Dumper: type = yaml.CSafeDumper
except AttributeError:  # pragma: no cover - PyYAML without libyaml
    _Dumper = yaml.SafeDumper


class _NoAliases(_Dumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def to_yaml(data: Any, header: str = '') -> bytes:
    """YAML with sorted keys, no aliases, block style, and a comment header."""
    body = yaml.dump(
        data,
        Dumper=_NoAliases,
        sort_keys=True,
        default_flow_style=False,
        allow_unicode=True,
        width=1000,
        explicit_start=True,
    )
    lines = ''.join(f'# {line}\n' if line else '#\n' for line in header.splitlines())
    return (lines + body).encode('utf-8')


def to_json(data: Any) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + '\n').encode('utf-8')
