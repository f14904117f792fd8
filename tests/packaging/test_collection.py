"""script/build-collection: the Ansible collection mailinfra.iac, built offline, installs and resolves its roles."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

import pytest
import yaml

from ..conftest import ROOT

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
ROLES = sorted(path.name for path in (ROOT / 'roles').iterdir() if path.is_dir())
PLAYBOOKS = sorted(path.name for path in (ROOT / 'playbooks').glob('*.yml'))


def _env(home: Path, **extra: str) -> dict[str, str]:
    """No user configuration, no network, the checkout's ansible.cfg out of reach (cwd is elsewhere)."""
    return {'PATH': f'{BIN}:/usr/bin:/bin', 'HOME': str(home), 'LANG': 'C.UTF-8', **extra}


def _build(script: Path, output: Path, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(script), str(output)], capture_output=True, text=True, env=_env(home), cwd=home, check=False
    )


@pytest.fixture(scope='module')
def tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp('collection')
    done = _build(ROOT / 'script' / 'build-collection', root / 'dist', root)
    assert done.returncode == 0, done.stderr
    version = tomllib.loads((ROOT / 'pyproject.toml').read_text(encoding='utf-8'))['project']['version']
    path = root / 'dist' / f'mailinfra-iac-{version}.tar.gz'
    assert f'Created collection for mailinfra.iac at {path}' in done.stdout
    return path


def test_tarball_lists_every_role_and_playbook(tarball: Path) -> None:
    with tarfile.open(tarball) as archive:
        names = set(archive.getnames())
        manifest = json.load(archive.extractfile('MANIFEST.json'))  # type: ignore[arg-type]
    assert ROLES and PLAYBOOKS
    for role in ROLES:
        assert f'roles/{role}/meta/main.yml' in names, role
        assert f'roles/{role}/tasks/main.yml' in names, role
    for playbook in PLAYBOOKS:
        assert f'playbooks/{playbook}' in names, playbook
    assert {'meta/runtime.yml', 'README.md', 'FILES.json'} <= names
    assert not [name for name in names if '__pycache__' in name or name.rsplit('/', 1)[-1].startswith('.')]
    info = manifest['collection_info']
    version = tarball.name.removeprefix('mailinfra-iac-').removesuffix('.tar.gz')
    assert (info['namespace'], info['name'], info['version']) == ('mailinfra', 'iac', version)


def test_galaxy_version_follows_pyproject() -> None:
    galaxy = yaml.safe_load((ROOT / 'collection' / 'galaxy.yml').read_text(encoding='utf-8'))
    project = tomllib.loads((ROOT / 'pyproject.toml').read_text(encoding='utf-8'))['project']
    assert galaxy['version'] == project['version']


def test_installed_collection_runs_its_playbook_by_name(tarball: Path, tmp_path: Path) -> None:
    collections = tmp_path / 'collections'
    install = ['ansible-galaxy', 'collection', 'install', '--offline', '-p', str(collections), str(tarball)]
    done = subprocess.run(install, capture_output=True, text=True, env=_env(tmp_path), cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr
    (tmp_path / 'hosts').write_text('[mta_postfix]\nmta1 ansible_host=192.0.2.1\n[mta_powermta]\n', encoding='utf-8')
    env = _env(tmp_path, ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_ROLES_PATH=str(tmp_path / 'none'))
    listing = ['ansible-playbook', '-i', 'hosts', '--list-tasks', 'mailinfra.iac.site']
    done = subprocess.run(listing, capture_output=True, text=True, env=env, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    # The playbook names roles by short name; inside the collection they resolve to the collection's own.
    for role in ('mta_base', 'opendkim', 'postfix'):
        assert f'mailinfra.iac.{role} : ' in done.stdout, role


def test_a_broken_link_in_a_role_stops_the_build(tmp_path: Path) -> None:
    copy = tmp_path / 'checkout'
    for part in ('script/build-collection', 'collection', 'playbooks', 'roles'):
        source, target = ROOT / part, copy / part
        if source.is_dir():
            shutil.copytree(source, target, symlinks=True, ignore=shutil.ignore_patterns('__pycache__'))
        else:
            target.parent.mkdir(parents=True)
            shutil.copy2(source, target)
    os.symlink('../../../nowhere/checker.py', copy / 'roles' / ROLES[0] / 'tasks' / 'broken')
    done = _build(copy / 'script' / 'build-collection', tmp_path / 'dist', tmp_path)
    assert done.returncode != 0
    assert f"cannot stat 'roles/{ROLES[0]}/tasks/broken'" in done.stderr
    assert not (tmp_path / 'dist').exists()
