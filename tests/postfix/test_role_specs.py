"""The roles' defaults and argument specs stay in step, and the inventory satisfies the argument specs."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from mailinfra_iac import load_spec

from ..conftest import AS_OF, ROOT
from .role_files import EXAMPLES, context_of, host_variables

ROLES = ['postfix', 'opendkim']


def load(role: str, path: str) -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / 'roles' / role / path).read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.mark.parametrize('role', ROLES)
def test_every_default_is_specified_with_the_same_value(role: str) -> None:
    defaults = load(role, 'defaults/main.yml')
    options = load(role, 'meta/argument_specs.yml')['argument_specs']['main']['options']
    assert sorted(defaults) == sorted(options)
    for name, value in defaults.items():
        assert options[name].get('default') == value, f'{name}: default differs between defaults and argument spec'
        assert options[name].get('description'), f'{name} has no description'
        assert name.startswith(f'{role}__')


def check(value: Any, spec: dict[str, Any], where: str) -> None:
    """A small subset of Ansible's argument validation: types, required sub-options, choices."""
    kinds = {'str': str, 'int': int, 'bool': bool, 'list': list, 'dict': dict, 'path': str}
    assert isinstance(value, kinds[spec.get('type', 'str')]), f'{where}: {value!r} is not {spec.get("type")}'
    if 'choices' in spec:
        assert value in spec['choices'], f'{where}: {value!r} not in {spec["choices"]}'
    if spec.get('type') == 'list' and 'elements' in spec:
        for index, item in enumerate(value):
            check(item, {'type': spec['elements'], 'options': spec.get('options', {})}, f'{where}[{index}]')
    if spec.get('type') == 'dict' and spec.get('options'):
        options = spec['options']
        assert set(value) <= set(options), f'{where}: unknown keys {set(value) - set(options)}'
        for name, option in options.items():
            if option.get('required'):
                assert name in value, f'{where}: {name} is missing'
            if name in value:
                check(value[name], option, f'{where}.{name}')


@pytest.mark.parametrize('example', EXAMPLES, ids=[example.stem for example in EXAMPLES])
def test_the_inventory_satisfies_the_argument_specs(example: Any) -> None:
    spec = load_spec(example.relative_to(ROOT), as_of=AS_OF)
    context = context_of(spec)
    for host in spec.deployment.hosts:
        variables = host_variables(context, host)
        for role in ROLES:
            options = load(role, 'meta/argument_specs.yml')['argument_specs']['main']['options']
            produced = {name: value for name, value in variables.items() if name.startswith(f'{role}__')}
            assert produced, f'no {role} variables for {host}'
            for name, value in produced.items():
                assert name in options, f'{name} is produced but not specified'
                check(value, options[name], name)
