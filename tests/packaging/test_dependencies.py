"""Every third-party import of a package is a declared dependency of its distribution, and versions agree."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path

import mailinfra_agent
import mailinfra_iac

from ..conftest import ROOT

INDIRECT = {'pydantic-core': 'pydantic'}
"""Imported distributions that come with a declared one: pydantic pins its own pydantic-core exactly."""


def normalise(name: str) -> str:
    return re.sub(r'[-_.]+', '-', name).lower()


def declared(pyproject: Path, extras: bool = False) -> set[str]:
    """Distribution names a pyproject.toml depends on (with ``extras``, also those of its optional groups)."""
    project = tomllib.loads(pyproject.read_text(encoding='utf-8'))['project']
    requirements = list(project.get('dependencies', []))
    if extras:
        requirements += [r for group in project.get('optional-dependencies', {}).values() for r in group]
    names = set()
    for requirement in requirements:
        match = re.match(r'\s*([A-Za-z0-9][A-Za-z0-9._-]*)', requirement)
        assert match, f'{pyproject}: cannot read requirement {requirement!r}'
        names.add(normalise(match.group(1)))
    return names


def imported_modules(package: Path) -> dict[str, set[str]]:
    """Top-level module name -> files of ``package`` that import it (absolute imports only)."""
    found: dict[str, set[str]] = {}
    for path in sorted(package.rglob('*.py')):
        for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split('.')[0], set()).add(path.relative_to(package.parent).as_posix())
    return found


def undeclared(
    imports: Mapping[str, Iterable[str]], own: str, dependencies: set[str], distributions: Mapping[str, list[str]]
) -> list[str]:
    """One line per third-party import that no declared dependency provides."""
    problems = []
    for module, files in sorted(imports.items()):
        if module == own or module in sys.stdlib_module_names or module == '__future__':
            continue
        # Not installed here (an optional extra, say): the distribution must then be named like the module.
        providers = {normalise(name) for name in distributions.get(module, [module])}
        providers |= {INDIRECT[name] for name in providers if name in INDIRECT}
        if not providers & dependencies:
            problems.append(f'{module} (from {", ".join(sorted(providers))}) imported by {", ".join(sorted(files))}')
    return problems


def test_controller_imports_are_declared() -> None:
    imports = imported_modules(Path(mailinfra_iac.__file__).parent)
    assert {'pydantic', 'yaml', 'python_terraform'} <= set(imports)
    dependencies = declared(ROOT / 'pyproject.toml')
    assert undeclared(imports, 'mailinfra_iac', dependencies, metadata.packages_distributions()) == []


def test_agent_imports_are_declared_with_extras() -> None:
    imports = imported_modules(Path(mailinfra_agent.__file__).parent)
    dependencies = declared(ROOT / 'agent' / 'pyproject.toml', extras=True)
    assert undeclared(imports, 'mailinfra_agent', dependencies, metadata.packages_distributions()) == []


def test_an_undeclared_import_is_reported(tmp_path: Path) -> None:
    package = tmp_path / 'pkg'
    (package / 'sub').mkdir(parents=True)
    (package / '__init__.py').write_text('import os\nfrom . import sub\nfrom pkg.sub import thing\n')
    (package / 'sub' / '__init__.py').write_text('import yaml.constructor\nfrom pydantic_core import core_schema\n')
    (package / 'sub' / 'late.py').write_text('def f():\n    import not_installed_anywhere\n')
    imports = imported_modules(package)
    assert set(imports) == {'os', 'pkg', 'yaml', 'pydantic_core', 'not_installed_anywhere'}
    distributions = metadata.packages_distributions()
    assert undeclared(imports, 'pkg', {'pyyaml', 'pydantic'}, distributions) == [
        'not_installed_anywhere (from not-installed-anywhere) imported by pkg/sub/late.py'
    ]
    assert undeclared(imports, 'pkg', {'pydantic', 'not-installed-anywhere'}, distributions) == [
        'yaml (from pyyaml) imported by pkg/sub/__init__.py'
    ]


def test_python_terraform_is_a_declared_dependency() -> None:
    assert 'python-terraform' in declared(ROOT / 'pyproject.toml')
    assert 'python-terraform' not in declared(ROOT / 'agent' / 'pyproject.toml', extras=True)


def test_one_version_for_both_distributions() -> None:
    controller = tomllib.loads((ROOT / 'pyproject.toml').read_text(encoding='utf-8'))['project']
    agent = tomllib.loads((ROOT / 'agent' / 'pyproject.toml').read_text(encoding='utf-8'))['project']
    assert controller['version'] == agent['version'] == mailinfra_iac.__version__ == mailinfra_agent.__version__
    assert f'mailinfra-agent=={agent["version"]}' in controller['dependencies']


def test_the_agent_never_depends_on_controller_libraries() -> None:
    agent = declared(ROOT / 'agent' / 'pyproject.toml', extras=True)
    assert not agent & {'pydantic', 'jinja2', 'cryptography', 'python-terraform', 'pyyaml', 'mailinfra-iac'}
