"""The import contracts of .importlinter hold for the tree, and each one fails on an import that breaks it."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / '.importlinter'
LINT_IMPORTS = Path(sys.executable).with_name('lint-imports')

# (contract id, new module in a copy of the tree, its text): one import each contract forbids
VIOLATIONS = [
    ('controller-layers', 'mailinfra_iac/dnscheck/violation.py', 'from ..api import Spec\n'),  # live check -> api
    ('controller-layers', 'mailinfra_iac/render/violation.py', 'from ..checks import default_registry\n'),  # siblings
    ('controller-layers', 'mailinfra_iac/facts/violation.py', 'from ..render import base\n'),  # facts -> renderer
    ('controller-layers', 'mailinfra_iac/newlayer.py', '"""A top-level module given no layer."""\n'),  # exhaustive
    ('agent-independent', 'mailinfra_agent/violation.py', 'import mailinfra_iac.problems\n'),
    ('agent-dependencies', 'mailinfra_agent/violation.py', 'import pydantic\n'),
    ('agent-shared-leaves', 'mailinfra_agent/dns/violation.py', 'from .. import cli\n'),
    ('controller-uses-agent-libraries', 'mailinfra_iac/cli/violation.py', 'from mailinfra_agent import commands\n'),
]


def contract_ids() -> set[str]:
    parser = configparser.ConfigParser()
    parser.read(CONFIG)
    return {section.split(':', 2)[2] for section in parser.sections() if section.startswith('importlinter:contract:')}


def lint_imports(cwd: Path, *args: str, pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    if not LINT_IMPORTS.exists():
        pytest.fail(f'{LINT_IMPORTS} not found: install requirements-dev.txt', pytrace=False)
    env = dict(os.environ)
    if pythonpath is not None:
        env['PYTHONPATH'] = str(pythonpath)  # ahead of the editable installs of the real packages
    command = [str(LINT_IMPORTS), '--config', str(CONFIG), '--no-cache', *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_the_tree_keeps_every_contract() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f'Contracts: {len(contract_ids())} kept, 0 broken.' in result.stdout


def test_every_contract_has_a_breaking_case() -> None:
    assert {contract for contract, _, _ in VIOLATIONS} == contract_ids()


@pytest.mark.parametrize(('contract', 'module', 'text'), VIOLATIONS, ids=[f'{c}:{m}' for c, m, _ in VIOLATIONS])
def test_a_forbidden_import_breaks_its_contract(tmp_path: Path, contract: str, module: str, text: str) -> None:
    ignore = shutil.ignore_patterns('__pycache__', '*.egg-info')
    shutil.copytree(ROOT / 'mailinfra_iac', tmp_path / 'mailinfra_iac', ignore=ignore)
    shutil.copytree(ROOT / 'agent' / 'mailinfra_agent', tmp_path / 'mailinfra_agent', ignore=ignore)
    assert lint_imports(tmp_path, '--contract', contract, pythonpath=tmp_path).returncode == 0  # the copy is clean
    (tmp_path / module).write_text(text)
    result = lint_imports(tmp_path, '--contract', contract, pythonpath=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'Contracts: 0 kept, 1 broken.' in result.stdout
    assert module.removesuffix('.py').replace('/', '.') in result.stdout  # the report names the culprit
