"""Every Molecule scenario in podman uses the pipelined podman connection (molecule/README.md)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..conftest import ROOT

SCENARIOS = sorted(
    path.parent for path in (ROOT / 'molecule').glob('*/molecule.yml') if 'podman' in path.read_text(encoding='utf-8')
)


def _config(scenario: Path) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load((scenario / 'molecule.yml').read_text(encoding='utf-8'))
    return config


def _fast_podman() -> dict[str, Any]:
    spec = importlib.util.spec_from_file_location(
        'default_render_inventory', ROOT / 'molecule/default/render_inventory.py'
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fast: dict[str, Any] = module.FAST_PODMAN
    return fast


def test_every_podman_scenario_is_listed() -> None:
    assert [path.name for path in SCENARIOS] == ['default', 'feedback', 'monitoring', 'mta_base', 'powermta']


@pytest.mark.parametrize('scenario', SCENARIOS, ids=lambda path: path.name)
def test_scenario_uses_the_pipelined_connection(scenario: Path) -> None:
    config = _config(scenario)
    plugins = config['ansible']['cfg']['defaults'].get('connection_plugins')
    assert plugins == '${MOLECULE_PROJECT_DIRECTORY}/molecule/shared/connection_plugins'
    assert (ROOT / 'molecule/shared/connection_plugins/podman_pipelined.py').is_file()
    if 'render_inventory.py' in config['dependency'].get('command', ''):
        # The inventory comes from render_inventory.py, which adds FAST_PODMAN to the container's host.
        options = _fast_podman()
        assert 'FAST_PODMAN' in (scenario / 'render_inventory.py').read_text(encoding='utf-8')
    else:
        options = config['provisioner'].get('connection_options', {})
    assert options.get('ansible_connection') == 'podman_pipelined'
    assert options.get('ansible_pipelining') is True
