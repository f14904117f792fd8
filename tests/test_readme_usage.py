"""What the README and the docs tell a new user works as written: the usage sequence, the default output in
inventories/, ansible.cfg finding it, the CLI's own description, the list of commands, the Terraform prerequisite."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mailinfra_iac.cli.main import build_parser, main
from mailinfra_iac.render import default_registry as default_renderers
from mailinfra_iac.render.terraform import MINIMUM_VERSION

from .conftest import ROOT

BIN = Path(sys.executable).parent
NEEDS_LIVE_SERVICES = ('mailinfra dns check', 'mailinfra plan')
"""Commands that need name servers or provider registries: shown in the README, not run here."""


def readme_usage_block() -> list[str]:
    readme = (ROOT / 'README.md').read_text()
    section = readme[readme.index('## Using it') :]
    start = section.index('```sh\n') + len('```sh\n')
    block = section[start : section.index('```', start)]
    return [line.split('  #')[0].strip() for line in block.splitlines() if line.strip()]


def commands() -> list[str]:
    [sub] = [action for action in build_parser()._actions if isinstance(action, argparse._SubParsersAction)]
    return list(sub.choices)


@pytest.fixture
def user_dir(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """An empty working directory with the repository's ansible.cfg, and a key store of its own."""
    work = tmp_path / 'work'
    work.mkdir()
    shutil.copy(ROOT / 'ansible.cfg', work / 'ansible.cfg')
    env = {**os.environ, 'MAILINFRA_KEYS_DIR': str(tmp_path / 'keys'), 'PATH': f'{BIN}{os.pathsep}{os.environ["PATH"]}'}
    env.pop('ANSIBLE_CONFIG', None)
    env.pop('MAILINFRA_CLIENT', None)
    return work, env


def test_readme_usage_sequence_runs_in_order(user_dir: tuple[Path, dict[str, str]]) -> None:
    work, env = user_dir
    lines = readme_usage_block()
    runnable = [line for line in lines if not line.startswith(NEEDS_LIVE_SERVICES)]
    assert [line.split()[1] for line in runnable][:3] == ['init', 'validate', 'explain']
    assert any(line.startswith('mailinfra render') for line in runnable)
    for line in runnable:
        done = subprocess.run(shlex.split(line), cwd=work, env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, f'README: `{line}` exited {done.returncode}: {done.stderr}'
    client = yaml.safe_load((work / 'mailinfra.yml').read_text())['client']['name']
    assert (work / 'inventories' / client / 'inventory' / 'hosts.yml').is_file()


def test_render_without_output_writes_into_inventories_and_ansible_finds_it(
    user_dir: tuple[Path, dict[str, str]],
) -> None:
    work, env = user_dir
    spec = str(ROOT / 'tests' / 'fixtures' / 'base.yml')
    for args in (['dkim', 'generate', spec], ['render', spec]):
        done = subprocess.run(
            [BIN / 'mailinfra', *args], cwd=work, env=env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(f'to {work / "inventories" / "testco"}')
    assert sorted(
        path.name for path in (work / 'inventories' / 'testco').iterdir() if not path.name.startswith('.')
    ) == [
        'dns',
        'inventory',
        'mta',
        'terraform',
    ]
    graph = subprocess.run(
        [BIN / 'ansible-inventory', '--graph'],
        cwd=work,
        env={**env, 'MAILINFRA_CLIENT': 'testco'},
        capture_output=True,
        text=True,
        check=False,
    )
    assert graph.returncode == 0, graph.stderr
    assert '--@mta_postfix:' in graph.stdout and '--mta1' in graph.stdout


def test_render_with_output_still_writes_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv('MAILINFRA_KEYS_DIR', str(tmp_path / 'keys'))
    spec = str(ROOT / 'tests' / 'fixtures' / 'base.yml')
    assert main(['dkim', 'generate', spec]) == 0
    assert main(['render', spec, '-o', 'elsewhere']) == 0
    assert (tmp_path / 'elsewhere' / 'inventory' / 'hosts.yml').is_file()
    assert not (tmp_path / 'inventories').exists()


def test_inventories_directory_is_kept_and_its_content_ignored() -> None:
    assert (ROOT / 'inventories' / 'README.md').is_file()
    ignored = subprocess.run(
        ['git', 'check-ignore', 'inventories/acme/inventory/hosts.yml', 'inventories/README.md'],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ignored.stdout.split() == ['inventories/acme/inventory/hosts.yml']


def test_demo_renders_into_inventories() -> None:
    demo = (ROOT / 'script' / 'demo').read_text()
    render = [line for line in demo.splitlines() if 'mailinfra render' in line]
    assert render and all(' -o "$out"' not in line and 'out/' not in line for line in render)


def test_help_describes_the_command_not_the_module(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(['--help'])
    out = capsys.readouterr().out
    assert 'Entry point' not in out and '``' not in out
    assert 'deployment spec' in out


def test_readme_intro_names_every_renderer_as_rendered_today() -> None:
    readme = (ROOT / 'README.md').read_text()
    intro = readme[: readme.index('## Using it')].lower()
    assert 'own issues' not in intro
    words = {
        'inventory': 'inventory',
        'terraform': 'terraform',
        'dns': 'dns records',
        'mta': 'postfix',
        'monitoring': 'prometheus rules',
    }
    assert sorted(words) == sorted(default_renderers().names())
    assert [name for name, word in words.items() if word not in intro] == []


def test_architecture_cli_row_lists_every_command() -> None:
    [row] = [
        line for line in (ROOT / 'docs' / 'architecture.md').read_text().splitlines() if line.startswith('| cli |')
    ]
    listed = set(re.findall(r'`([a-z]+)`', row))
    assert sorted(set(commands()) - listed) == []
    assert len(commands()) == 13


@pytest.mark.parametrize('doc', ['README.md', 'docs/install.md'])
def test_terraform_prerequisite_is_documented(doc: str) -> None:
    text = (ROOT / doc).read_text()
    version = '.'.join(map(str, MINIMUM_VERSION[:2]))
    assert f'Terraform ≥ {version}' in text
    assert 'PyPI' in text
    if doc == 'docs/install.md':
        assert 'apt-get install -y terraform' in text and 'releases.hashicorp.com' in text


def _bootstrap_check(path: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, 'PATH': path, 'PYTHON': sys.executable}
    env.pop('MAILINFRA_TERRAFORM', None)
    return subprocess.run(
        [ROOT / 'script' / 'check-terraform'], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )


def test_bootstrap_says_when_terraform_is_missing(tmp_path: Path) -> None:
    assert 'script/check-terraform' in (ROOT / 'script' / 'bootstrap').read_text()
    done = _bootstrap_check(f'{tmp_path}{os.pathsep}/usr/bin{os.pathsep}/bin')
    assert done.returncode == 0  # a machine that only validates and renders still bootstraps
    assert 'terraform: NOT READY: terraform not found on PATH' in done.stderr
    assert 'docs/install.md' in done.stderr


def test_bootstrap_says_when_terraform_is_too_old(tmp_path: Path) -> None:
    old = tmp_path / 'terraform'
    old.write_text('#!/bin/sh\necho \'{"terraform_version": "1.4.7"}\'\n')
    old.chmod(0o755)
    done = _bootstrap_check(f'{tmp_path}{os.pathsep}/usr/bin{os.pathsep}/bin')
    assert done.returncode == 0
    assert 'terraform: NOT READY: terraform 1.4.7 found at' in done.stderr and 'need >= 1.5.0' in done.stderr


def test_bootstrap_reports_a_usable_terraform() -> None:
    path = shutil.which('terraform')
    assert path, 'Terraform >= 1.5 is needed by the test suite: docs/install.md, "4. Terraform"'
    done = _bootstrap_check(os.environ['PATH'])
    assert done.returncode == 0 and done.stderr == ''
    assert done.stdout.startswith('terraform: ')
