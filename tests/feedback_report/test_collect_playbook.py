"""playbooks/feedback-collect.yml against two local-connection hosts with real SQLite stores (no Molecule).

Each host is this machine with its own contract naming its own store, so the whole path is real: the agent's
``store backup`` on the host, ``fetch``, the 0600 copy on the controller, then ``mailinfra feedback report`` over
both copies, which must equal the report over one store holding both hosts' events.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mailinfra_iac.cli.main import main
from tests.agent.test_store_backup import contract_file

from .conftest import hand_built
from .test_stores import host_b_events, make_store

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = ROOT / 'playbooks' / 'feedback-collect.yml'
AGENT = Path(sys.executable).parent / 'mailinfra-agent'


def host(tmp_path: Path, name: str, store: Path) -> dict[str, Any]:
    directory = tmp_path / name
    directory.mkdir()
    contract = contract_file(directory, {'backend': 'sqlite', 'path': str(store)})
    return {
        'ansible_connection': 'local',
        'ansible_python_interpreter': sys.executable,
        'ansible_become': False,  # already root here; on real hosts the play becomes root
        'feedback_collect__contract': str(contract),
        'feedback_collect__executable': str(AGENT),
        'feedback_collect__user': 'root',
    }


def play(tmp_path: Path, hosts: dict[str, dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    inventory = tmp_path / 'inventory.json'
    inventory.write_text(
        json.dumps({'all': {'children': {'mta': {'hosts': hosts}}, 'vars': {'mailinfra__client': {'name': 'acme'}}}}),
        encoding='utf-8',
    )
    env = {
        **os.environ,
        'MAILINFRA_FEEDBACK_DIR': str(tmp_path / 'collected'),
        'ANSIBLE_LOCAL_TEMP': str(tmp_path / 'ansible-local'),
        'ANSIBLE_REMOTE_TEMP': str(tmp_path / 'ansible-remote'),
        'ANSIBLE_NOCOLOR': '1',
    }
    return subprocess.run(
        [str(Path(sys.executable).parent / 'ansible-playbook'), '-i', str(inventory), str(PLAYBOOK)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope='module')
def tools() -> None:
    if shutil.which('runuser') is None or not AGENT.exists() or os.geteuid() != 0:
        pytest.fail('needs root, runuser and the mailinfra-agent of this venv (pip install -e agent)')


def test_collects_two_hosts_and_reports_them_as_one(
    tools: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = make_store(tmp_path / 'mx1.db', hand_built())
    b = make_store(tmp_path / 'mx2.db', host_b_events())
    both = make_store(tmp_path / 'both.db', hand_built() + host_b_events())
    # hand_built() and host_b_events() make new keys on each call: "both" holds other keys, the same figures.
    result = play(tmp_path, {'mx1': host(tmp_path, 'mx1', a), 'mx2': host(tmp_path, 'mx2', b)})
    assert result.returncode == 0, result.stdout + result.stderr
    copies = [tmp_path / 'collected' / 'acme' / name / 'store.sqlite' for name in ('mx1', 'mx2')]
    for copy in copies:
        assert stat.S_IMODE(copy.stat().st_mode) == 0o600
        assert stat.S_IMODE(copy.parent.stat().st_mode) == 0o700
        assert sorted(path.name for path in copy.parent.iterdir()) == ['store.sqlite']
    assert f'mailinfra feedback report --store sqlite:{copies[0]} --store sqlite:{copies[1]}' in result.stdout
    # Nothing left on the "hosts" but their stores.
    assert not list(Path('/tmp').glob('ansible.*.feedback-collect'))

    assert main(['feedback', 'report', *(f'--store=sqlite:{copy}' for copy in copies), '--format', 'json']) == 0
    merged = json.loads(capsys.readouterr().out)
    assert main(['feedback', 'report', f'--store=sqlite:{both}', '--format', 'json']) == 0
    assert merged == json.loads(capsys.readouterr().out)
    assert merged['total']['sent'] > 0

    # A second run replaces the copies with the stores' new state.
    make_store(a, hand_built())
    assert play(tmp_path, {'mx1': host(tmp_path, 'mx1b', a), 'mx2': host(tmp_path, 'mx2b', b)}).returncode == 0
    assert main(['feedback', 'report', f'--store=sqlite:{copies[0]}', '--format', 'json']) == 0
    assert json.loads(capsys.readouterr().out)['total']['sent'] == 2 * (merged['total']['sent'] - 6)


def test_a_host_without_a_store_fails_clearly_and_the_others_are_collected(tools: None, tmp_path: Path) -> None:
    a = make_store(tmp_path / 'mx1.db', hand_built())
    missing = tmp_path / 'mx2.db'
    result = play(tmp_path, {'mx1': host(tmp_path, 'mx1', a), 'mx2': host(tmp_path, 'mx2', missing)})
    assert result.returncode != 0
    assert f'mx2: store not collected: store: no such store: {missing}: nothing to collect' in result.stdout
    assert (tmp_path / 'collected' / 'acme' / 'mx1' / 'store.sqlite').is_file()
    assert sorted((tmp_path / 'collected' / 'acme' / 'mx2').iterdir()) == []  # no copy, no partial file
    assert not missing.exists()
