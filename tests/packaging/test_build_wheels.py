"""script/build-wheels: the agent role's wheelhouse, the same bytes from the same sources."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ..conftest import ROOT

pytestmark = pytest.mark.slow

SCRIPT = ROOT / 'script' / 'build-wheels'


def build(output: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), '--json', '--output', str(output), *args], capture_output=True, text=True
    )


def test_same_sources_give_the_same_wheel_and_an_unchanged_wheelhouse(tmp_path: Path) -> None:
    first = build(tmp_path / 'a')
    assert first.returncode == 0, first.stderr
    built = json.loads(first.stdout)
    wheel = tmp_path / 'a' / built['agent']
    assert built['changed'] is True
    assert built['wheels'] == [built['agent']]
    assert built['agent'] == f'mailinfra_agent-{built["version"]}-py3-none-any.whl'
    # The timestamps of the sources do not reach the wheel.
    os.utime(ROOT / 'agent' / 'mailinfra_agent' / '__init__.py')
    second = build(tmp_path / 'b')
    assert second.returncode == 0, second.stderr
    assert (tmp_path / 'b' / built['agent']).read_bytes() == wheel.read_bytes()
    # Rebuilding into the same wheelhouse leaves it alone, mtime included.
    mtime = wheel.stat().st_mtime_ns
    again = build(tmp_path / 'a')
    assert json.loads(again.stdout)['changed'] is False
    assert wheel.stat().st_mtime_ns == mtime
    names = zipfile.ZipFile(wheel).namelist()
    assert 'mailinfra_agent/cli.py' in names
    assert not [name for name in names if '__pycache__' in name or name.endswith('.pyc')]


def test_another_version_of_the_agent_is_removed(tmp_path: Path) -> None:
    (tmp_path / 'mailinfra_agent-0.0.1-py3-none-any.whl').write_bytes(b'old')
    (tmp_path / 'other-1.0-py3-none-any.whl').write_bytes(b'kept')
    result = build(tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)['wheels'] == sorted(
        [json.loads(result.stdout)['agent'], 'other-1.0-py3-none-any.whl']
    )


def test_a_bad_extra_name_is_refused(tmp_path: Path) -> None:
    result = build(tmp_path, '--extra', 'dns;rm')
    assert result.returncode != 0
    assert 'not an extra name' in result.stderr
    assert 'Traceback' not in result.stderr
