"""Inputs that used to exhaust the stack, memory or time: deep nesting, alias bombs, many unknown keys."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from mailinfra_iac.loader import parse_source, yaml_source
from mailinfra_iac.loader.yaml_source import MAX_DEPTH
from mailinfra_iac.problems import SpecInvalid

from ..conftest import BASE, edit, problems

DEEP = 600
NESTED = {
    'block sequences': '- ' * DEEP + 'x\n',
    'flow sequences': '[' * DEEP + ']' * DEEP + '\n',
    'flow mappings': '{a: ' * DEEP + '1' + '}' * DEEP + '\n',
    'block mappings': ''.join('  ' * level + 'a:\n' for level in range(DEEP)) + '  ' * DEEP + '1\n',
    'mixed block': ''.join('  ' * level + '- a:\n' for level in range(DEEP)) + '  ' * DEEP + '  x\n',
    'mixed flow': '[{a: ' * (DEEP // 2) + '1' + '}]' * (DEEP // 2) + '\n',
    'aliases of aliases': 'x0: &x0 [1]\n' + ''.join(f'x{n}: &x{n} [*x{n - 1}]\n' for n in range(1, DEEP)),
    'merge keys of merge keys': 'x0: &x0 {k: 1}\n'
    + ''.join(f'x{n}: &x{n} {{<<: *x{n - 1}}}\n' for n in range(1, DEEP)),
}


@pytest.mark.parametrize('text', NESTED.values(), ids=NESTED.keys())
def test_deep_nesting_is_a_located_error(text: str) -> None:
    with pytest.raises(SpecInvalid) as raised:
        parse_source(text, 'spec.yml')
    [problem] = raised.value.problems
    assert problem.check == 'yaml-too-deep'
    assert problem.file == 'spec.yml' and problem.line is not None and problem.column is not None
    assert f'{MAX_DEPTH} levels' in problem.message


def test_nesting_up_to_the_limit_is_read() -> None:
    text = 'a: ' + '[' * (MAX_DEPTH - 2) + ']' * (MAX_DEPTH - 2) + '\n'
    assert parse_source(text).data['a'] is not None


def laughs(levels: int, width: int = 9) -> str:
    """The "billion laughs": each level repeats the one before ``width`` times (about 320 bytes for 9 x 9)."""
    lines = ['a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]']
    lines += [f'a{n}: &a{n} [' + ', '.join([f'*a{n - 1}'] * width) + ']' for n in range(1, levels)]
    return '\n'.join(lines) + '\n'


@pytest.mark.parametrize(
    'text',
    [
        laughs(9),
        laughs(30, width=2),
        'm0: &m0 {k: v}\n' + ''.join(f'm{n}: &m{n} {{<<: [*m{n - 1}, *m{n - 1}], k{n}: v}}\n' for n in range(1, 25)),
    ],
    ids=['billion laughs', 'binary doubling', 'merge-key doubling'],
)
def test_alias_explosion_is_refused_before_building(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    built = []
    original = yaml_source._Builder.build

    def counting(self: Any, node: yaml.Node, path: Any) -> Any:
        built.append(1)
        return original(self, node, path)

    monkeypatch.setattr(yaml_source._Builder, 'build', counting)
    with pytest.raises(SpecInvalid) as raised:
        parse_source(text, 'spec.yml')
    [problem] = raised.value.problems
    assert problem.check == 'yaml-alias'
    assert problem.line is not None
    assert built == []  # refused from the node graph, nothing expanded


def test_recursive_alias_is_refused() -> None:
    with pytest.raises(SpecInvalid) as raised:
        parse_source('a: &a [1, *a]\n', 'spec.yml')
    assert [problem.check for problem in raised.value.problems] == ['yaml-alias']


def test_modest_aliases_still_work() -> None:
    limits = '&limits {limits: {max_connections: 2}}'
    text = edit(
        'injection: {port: 2526, networks: [10.0.0.0/8]}',
        'injection: {port: 2526, networks: [10.0.0.0/8]}\n'
        f'    isp_overrides: {{gmail: {limits}, yahoo: *limits, microsoft: *limits}}',
    )
    assert [p.check for p in problems(text) if p.severity == 'error'] == []


def test_merged_mappings_keep_the_first_value_of_a_key() -> None:
    data = parse_source('a: &a {k: 1}\nb: &b {k: 2}\nc: {<<: [*a, *b]}\n').data
    assert data['c'] == {'k': 1}


def _pairs_scanned(unknown: int, monkeypatch: pytest.MonkeyPatch) -> int:
    """Mapping entries the loader walks through while locating every problem of ``unknown`` unknown keys."""
    scanned = [0]
    original = yaml_source._pairs

    def counting(node: yaml.MappingNode) -> list[tuple[yaml.Node, yaml.Node]]:
        pairs = original(node)
        scanned[0] += len(pairs)
        return pairs

    monkeypatch.setattr(yaml_source, '_pairs', counting)
    text = edit('mta: auto\n', 'mta: auto\n' + ''.join(f'unknown_{n}: 1\n' for n in range(unknown)))
    found = problems(text)
    assert sum(p.check == 'schema-extra-forbidden' for p in found) == unknown
    assert all(p.line is not None for p in found)
    return scanned[0]


def test_unknown_keys_cost_linear_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Locating N unknown keys walks O(N) mapping entries (it walked N x N: 25,000 keys took two minutes)."""
    small = _pairs_scanned(1_000, monkeypatch)
    large = _pairs_scanned(10_000, monkeypatch)
    assert large < 10 * small * 1.5, (small, large)  # quadratic would be 100 x


def test_unknown_keys_in_a_nested_mapping_cost_linear_work(monkeypatch: pytest.MonkeyPatch) -> None:
    def scanned(unknown: int) -> int:
        count = [0]
        original = yaml_source._pairs

        def counting(node: yaml.MappingNode) -> list[tuple[yaml.Node, yaml.Node]]:
            pairs = original(node)
            count[0] += len(pairs)
            return pairs

        monkeypatch.setattr(yaml_source, '_pairs', counting)
        extra = ''.join(f'    unknown_{n}: 1\n' for n in range(unknown))
        found = problems(edit('    provider: static\n', '    provider: static\n' + extra))
        monkeypatch.setattr(yaml_source, '_pairs', original)
        assert sum(p.check == 'schema-extra-forbidden' for p in found) == unknown
        return count[0]

    assert scanned(10_000) < 10 * scanned(1_000) * 1.5


def test_base_spec_still_loads() -> None:
    assert isinstance(parse_source(BASE).data, dict)


@pytest.mark.parametrize('number', ['9' * 5000, '-' + '1' * 4301, '1_' * 4400 + '1'])
def test_integer_beyond_the_conversion_limit_is_a_located_error(number: str) -> None:
    # Python refuses int() of more than 4300 digits (ValueError): it was an internal error, not a problem
    with pytest.raises(SpecInvalid) as raised:
        parse_source(f'version: 1\nclient:\n  name: {number}\n', 'spec.yml')
    [problem] = raised.value.problems
    assert (problem.check, problem.file, problem.line, problem.column, problem.path) == (
        'yaml-value',
        'spec.yml',
        3,
        9,
        ('client', 'name'),
    )
    assert problem.message.startswith('cannot read value: Exceeds the limit (4300 digits)')
