"""Rendering with the PowerMTA role variables, whether or not ``default_role_vars()`` lists them yet."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from mailinfra_iac import Spec, load_spec, render_files
from mailinfra_iac.render import DnsRecordsRenderer, RendererRegistry
from mailinfra_iac.render.inventory import InventoryRenderer
from mailinfra_iac.render.mta_configs import MtaConfigRenderer
from mailinfra_iac.render.rolevars import RoleVars, default_role_vars
from mailinfra_iac.render.rolevars.powermta import PowerMtaVars

from ..conftest import AS_OF, ROOT, TEST_DKIM

EXAMPLE = ROOT / 'examples' / 'high-volume-powermta.yml'


def role_vars() -> list[RoleVars]:
    roles = default_role_vars()
    if not any(role.name == PowerMtaVars.name for role in roles):
        roles.append(PowerMtaVars())
    return roles


def registry() -> RendererRegistry:
    inventory = InventoryRenderer(role_vars())
    return RendererRegistry([inventory, DnsRecordsRenderer(), MtaConfigRenderer(inventory)])


def example(path: Path = EXAMPLE) -> Spec:
    return load_spec(path, as_of=AS_OF)


def render(spec: Spec, addresses: dict[str, str] | None = None) -> dict[str, bytes]:
    files = render_files(spec, registry=registry(), addresses=addresses, dkim=TEST_DKIM)
    return {path: output.content for path, output in files.items()}


def host_vars(files: dict[str, bytes], host: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(files[f'inventory/host_vars/{host}.yml'])
    return loaded


def group_vars(files: dict[str, bytes]) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(files['inventory/group_vars/all.yml'])
    return loaded


def run_role_tasks(
    role: Path, variables: dict[str, Any], tasks: list[dict[str, Any]], tmp_path: Path, *options: str
) -> subprocess.CompletedProcess[str]:
    """``tasks`` on localhost with the role's variables: later files win (its defaults, these inventory variables,
    its internal ``vars/main.yml``)."""
    (tmp_path / 'host.yml').write_text(yaml.safe_dump(variables))
    playbook = [
        {
            'hosts': 'localhost',
            'gather_facts': False,
            'vars_files': [
                str(role / 'defaults' / 'main.yml'),
                str(tmp_path / 'host.yml'),
                str(role / 'vars' / 'main.yml'),
            ],
            'tasks': tasks,
        }
    ]
    (tmp_path / 'play.yml').write_text(yaml.safe_dump(playbook))
    return run_playbook(tmp_path, *options)


def run_playbook(tmp_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """``tmp_path/play.yml`` run by this venv's ansible-playbook on localhost (local connection, no colour), with
    ``options`` (``--check``)."""
    env = {
        **os.environ,
        'ANSIBLE_PYTHON_INTERPRETER': sys.executable,
        'ANSIBLE_LOCAL_TEMP': str(tmp_path / 'ansible-local'),
        'ANSIBLE_NOCOLOR': '1',
    }
    return subprocess.run(
        [
            str(Path(sys.executable).parent / 'ansible-playbook'),
            '-c',
            'local',
            '-i',
            'localhost,',
            *options,
            'play.yml',
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
