"""molecule/shared/connection_plugins/podman_pipelined.py: modules reach a real podman container over stdin."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import ROOT

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
IMAGE = 'localhost/mailinfra-debian:12'
CONTAINER = f'mailinfra-test-pipelined-{os.getpid()}'


@pytest.fixture(scope='module')
def container() -> Iterator[str]:
    podman = shutil.which('podman')
    assert podman and os.geteuid() == 0, (
        'needs rootful podman and the images (script/setup-podman, script/build-images)'
    )
    env = {**os.environ, 'CONTAINERS_CONF': str(ROOT / 'molecule' / 'containers.conf')}
    subprocess.run(
        [podman, 'run', '-d', '--rm', '--name', CONTAINER, IMAGE, 'sleep', 'infinity'],
        check=True,
        capture_output=True,
        env=env,
    )
    try:
        yield CONTAINER
    finally:
        subprocess.run([podman, 'rm', '-f', '-t', '0', CONTAINER], check=False, capture_output=True, env=env)


def _ansible(home: Path, module: str, args: str) -> tuple[dict[str, object], list[list[str]]]:
    """Run one module through the plugin; return its result and every podman command line it ran."""
    calls = home / 'podman-calls'
    podman = home / 'podman'
    podman.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {calls}\nexec {shutil.which("podman")} "$@"\n')
    podman.chmod(0o755)
    variables = {
        'ansible_connection': 'podman_pipelined',
        'ansible_pipelining': True,
        'ansible_user': '',
        'ansible_remote_tmp': '/root/.ansible/tmp',
        'ansible_python_interpreter': '/usr/bin/python3',
        'ansible_podman_executable': str(podman),
    }
    env = {
        'PATH': f'{BIN}:/usr/bin:/bin',
        'HOME': str(home),
        'LANG': 'C.UTF-8',
        'CONTAINERS_CONF': str(ROOT / 'molecule' / 'containers.conf'),
        'ANSIBLE_CONNECTION_PLUGINS': str(ROOT / 'molecule' / 'shared' / 'connection_plugins'),
        'ANSIBLE_LOAD_CALLBACK_PLUGINS': '1',
        'ANSIBLE_STDOUT_CALLBACK': 'json',
    }
    calls.unlink(missing_ok=True)
    done = subprocess.run(
        [str(BIN / 'ansible'), 'all', '-i', f'{CONTAINER},', '-e', json.dumps(variables), '-m', module, '-a', args],
        capture_output=True,
        text=True,
        env=env,
        cwd=home,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)['plays'][0]['tasks'][0]['hosts'][CONTAINER]
    return result, [line.split() for line in calls.read_text().splitlines()]


def test_a_module_is_one_podman_exec(container: str, tmp_path: Path) -> None:
    result, calls = _ansible(tmp_path, 'ansible.builtin.command', 'id -u')
    assert result['stdout'] == '0'
    # No temporary directory, no chmod: the module comes over stdin of the one exec.
    assert [call[:3] for call in calls if call[0] == 'exec'] == [['exec', '-i', container]]


def test_files_still_arrive(container: str, tmp_path: Path) -> None:
    _ansible(tmp_path, 'ansible.builtin.copy', 'dest=/tmp/pipelined.txt content=hello mode=0644')
    result, _ = _ansible(tmp_path, 'ansible.builtin.slurp', 'src=/tmp/pipelined.txt')
    assert result['content'] == 'aGVsbG8='
