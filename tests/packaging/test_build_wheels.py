"""script/build-wheels: the agent role's wheelhouse, the same bytes from the same sources."""

from __future__ import annotations

import contextlib
import fcntl
import importlib.machinery
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..conftest import ROOT

pytestmark = pytest.mark.slow

SCRIPT = ROOT / 'script' / 'build-wheels'
LOCK = '.build-wheels.lock'


def build(output: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), '--json', '--output', str(output), *args], capture_output=True, text=True
    )


def idna(built: dict[str, str]) -> str:
    """The idna wheel a run reported (the agent's dependency: UTS 46 for suppressed addresses)."""
    wheels = [wheel for wheel in built['wheels'] if wheel.startswith('idna-')]
    assert len(wheels) == 1, built['wheels']
    return wheels[0]


def test_same_sources_give_the_same_wheel_and_an_unchanged_wheelhouse(tmp_path: Path) -> None:
    first = build(tmp_path / 'a')
    assert first.returncode == 0, first.stderr
    built = json.loads(first.stdout)
    wheel = tmp_path / 'a' / built['agent']
    assert built['changed'] is True
    assert built['wheels'] == sorted([built['agent'], idna(built)])  # the agent's one dependency
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
    # Another wheel in the directory is kept but not reported: only what this run needs is.
    built = json.loads(result.stdout)
    assert built['wheels'] == sorted([built['agent'], idna(built)])
    assert not (tmp_path / 'mailinfra_agent-0.0.1-py3-none-any.whl').exists()
    assert (tmp_path / 'other-1.0-py3-none-any.whl').read_bytes() == b'kept'


def fake_wheel(directory: Path, name: str, version: str) -> str:
    """A minimal wheel pip accepts as a candidate (metadata only)."""
    file_name = f'{name}-{version}-py3-none-any.whl'
    info = f'{name}-{version}.dist-info'
    with zipfile.ZipFile(directory / file_name, 'w') as archive:
        archive.writestr(f'{info}/METADATA', f'Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n')
        archive.writestr(
            f'{info}/WHEEL', 'Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n'
        )
        archive.writestr(f'{info}/RECORD', '')
    return file_name


def test_the_wheels_of_another_runs_extras_are_not_reported(tmp_path: Path) -> None:
    """Two plays share one wheelhouse with different extras: each gets exactly its own set, so the
    second play's downloads never change what the first installs on its next run (idempotence)."""
    dns = fake_wheel(tmp_path, 'dnspython', '9.9.9')
    metrics = fake_wheel(tmp_path, 'prometheus_client', '9.9.9')
    # 9.9.9 is newer than any release on the index, so pip takes these from the wheelhouse.
    first = build(tmp_path, '--extra', 'dns')
    assert first.returncode == 0, first.stderr
    reported = json.loads(first.stdout)
    assert reported['wheels'] == sorted([reported['agent'], idna(reported), dns])
    second = build(tmp_path, '--extra', 'metrics')
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)['wheels'] == sorted([reported['agent'], idna(reported), metrics])
    again = build(tmp_path, '--extra', 'dns')
    assert json.loads(again.stdout) == {**reported, 'changed': False}


def test_a_bad_extra_name_is_refused(tmp_path: Path) -> None:
    result = build(tmp_path, '--extra', 'dns;rm')
    assert result.returncode != 0
    assert 'not an extra name' in result.stderr
    assert 'Traceback' not in result.stderr


def copy_checkout(tmp_path: Path) -> Path:
    """script/build-wheels and agent/ in a checkout of their own, whose sources a test may change."""
    checkout = tmp_path / 'checkout'
    (checkout / 'script').mkdir(parents=True)
    shutil.copy2(SCRIPT, checkout / 'script' / 'build-wheels')
    shutil.copytree(ROOT / 'agent', checkout / 'agent', ignore=shutil.ignore_patterns('__pycache__', '*.egg-info'))
    return checkout


def build_in(checkout: Path, output: Path, *args: str, pip_fails: bool = False) -> subprocess.CompletedProcess[str]:
    """A run of ``checkout``'s build-wheels; with ``pip_fails`` every ``python -m pip`` it starts exits 3."""
    env = dict(os.environ)
    if pip_fails:
        fake = output.parent / 'no-pip' / 'pip'
        fake.mkdir(parents=True, exist_ok=True)
        (fake / '__init__.py').write_text('')
        (fake / '__main__.py').write_text('raise SystemExit(3)\n')
        env['PYTHONPATH'] = str(fake.parent)
    command = [sys.executable, str(checkout / 'script' / 'build-wheels'), '--json', '--output', str(output), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env)


def built(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    reported: dict[str, Any] = json.loads(result.stdout)
    return reported


def test_an_unchanged_checkout_runs_no_pip_and_a_changed_source_builds_again(tmp_path: Path) -> None:
    """Every play of a Molecule scenario runs build-wheels: after the first build an unchanged checkout runs no pip
    (here any pip run would fail), while a changed source file gives a new wheel."""
    checkout, output = copy_checkout(tmp_path), tmp_path / 'wheelhouse'
    first = built(build_in(checkout, output, '--extra', 'metrics'))
    wheel = output / first['agent']
    before, mtime = wheel.read_bytes(), wheel.stat().st_mtime_ns
    assert built(build_in(checkout, output, '--extra', 'metrics', pip_fails=True)) == {**first, 'changed': False}
    assert wheel.read_bytes() == before and wheel.stat().st_mtime_ns == mtime
    # --refresh runs pip whatever the wheelhouse records
    refreshed = build_in(checkout, output, '--extra', 'metrics', '--refresh', pip_fails=True)
    assert refreshed.returncode != 0 and 'pip wheel' in refreshed.stderr, refreshed.stderr
    # Other extras download theirs, but the agent wheel of the same sources is not built again.
    other = build_in(checkout, output, pip_fails=True)
    assert other.returncode != 0 and 'pip download' in other.stderr, other.stderr
    with (checkout / 'agent' / 'mailinfra_agent' / '__init__.py').open('a') as source:
        source.write('# changed\n')
    changed = built(build_in(checkout, output, '--extra', 'metrics'))
    assert changed == {**first, 'changed': True}
    assert wheel.read_bytes() != before
    assert zipfile.ZipFile(wheel).read('mailinfra_agent/__init__.py').endswith(b'# changed\n')


def test_a_wheel_changed_or_removed_in_the_wheelhouse_is_made_again(tmp_path: Path) -> None:
    checkout, output = copy_checkout(tmp_path), tmp_path / 'wheelhouse'
    first = built(build_in(checkout, output))
    wheel = output / first['agent']
    original = wheel.read_bytes()
    wheel.write_bytes(b'not the wheel')
    assert built(build_in(checkout, output))['changed'] is True
    assert wheel.read_bytes() == original
    (output / idna(first)).unlink()
    assert built(build_in(checkout, output)) == {**first, 'changed': True}
    assert (output / idna(first)).is_file()


def test_a_missing_constraint_file_is_refused(tmp_path: Path) -> None:
    result = build(tmp_path / 'wheelhouse', '--constraint', str(tmp_path / 'absent.txt'))
    assert result.returncode != 0
    assert f'no constraint file {tmp_path / "absent.txt"}' in result.stderr
    assert 'Traceback' not in result.stderr


def test_a_python_without_pip_is_named(tmp_path: Path) -> None:
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(tmp_path / 'venv')], check=True)
    python = tmp_path / 'venv' / 'bin' / 'python'
    result = subprocess.run(
        [str(python), str(SCRIPT), '--output', str(tmp_path / 'wheelhouse')], capture_output=True, text=True
    )
    assert result.returncode != 0
    assert 'has no pip' in result.stderr and str(python) in result.stderr, result.stderr
    assert 'Traceback' not in result.stderr


@contextlib.contextmanager
def read_only(directory: Path) -> Iterator[None]:
    """``directory`` on a read-only bind mount (writes fail with EROFS, root's too)."""
    if subprocess.run(['mount', '--bind', str(directory), str(directory)], capture_output=True).returncode != 0:
        pytest.skip('no bind mounts here')
    try:
        subprocess.run(['mount', '-o', 'remount,bind,ro', str(directory)], check=True)
        yield
    finally:
        subprocess.run(['umount', str(directory)], check=True)


def test_a_read_only_wheelhouse_with_its_wheels_is_used(tmp_path: Path) -> None:
    """A wheelhouse made before and mounted read-only: the run reports its wheels, it does not fail on the lock
    or the record; one it would have to change fails with a message."""
    checkout, output = copy_checkout(tmp_path), tmp_path / 'wheelhouse'
    first = built(build_in(checkout, output))
    (output / LOCK).unlink()  # as a wheelhouse copied from elsewhere
    with read_only(output):
        assert built(build_in(checkout, output, pip_fails=True)) == {**first, 'changed': False}
    (output / first['agent']).write_bytes(b'not the wheel')
    with read_only(output):
        result = build_in(checkout, output)
    assert result.returncode != 0
    assert f'cannot update {output}' in result.stderr, result.stderr
    assert 'Traceback' not in result.stderr


def test_the_record_names_the_sources_the_wheel_was_built_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """agent/ changes after the run hashed it and before it copied it (a save in an editor): the record must name
    the copy pip built, so putting the file back builds again instead of keeping the wheel of the other sources."""
    checkout, output = copy_checkout(tmp_path), tmp_path / 'wheelhouse'
    module = load_script(checkout)
    source = checkout / 'agent' / 'mailinfra_agent' / '__init__.py'
    original = source.read_bytes()
    copytree = shutil.copytree

    def change_then_copy(*args: Any, **kwargs: Any) -> Any:
        if source.read_bytes() == original:  # the first (outer) call; copytree calls itself for subdirectories
            source.write_bytes(original + b'# changed during the run\n')
        return copytree(*args, **kwargs)

    monkeypatch.setattr(shutil, 'copytree', change_then_copy)
    monkeypatch.setattr(sys, 'argv', ['build-wheels', '--output', str(output)])
    assert module.main() == 0
    monkeypatch.undo()
    source.write_bytes(original)  # the change is undone: the wheel must be built from these sources again
    again = built(build_in(checkout, output))
    assert again['changed'] is True
    assert zipfile.ZipFile(output / again['agent']).read('mailinfra_agent/__init__.py') == original


def load_script(checkout: Path) -> Any:
    """``checkout``'s build-wheels as a module, to run its ``main`` in this process."""
    loader = importlib.machinery.SourceFileLoader('build_wheels_under_test', str(checkout / 'script' / 'build-wheels'))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(module)
    return module


def test_a_run_waits_for_the_lock_a_bounded_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another run holds the wheelhouse's lock: this one gives up after LOCK_WAIT with a message, never hangs."""
    module = load_script(copy_checkout(tmp_path))
    output = tmp_path / 'wheelhouse'
    output.mkdir()
    monkeypatch.setattr(module, 'LOCK_WAIT', 0)
    monkeypatch.setattr(sys, 'argv', ['build-wheels', '--output', str(output)])
    with (output / LOCK).open('a') as other:
        fcntl.flock(other, fcntl.LOCK_EX)
        with pytest.raises(SystemExit) as raised:
            module.main()
    assert str(raised.value).startswith(f'build-wheels: another run has held {output / LOCK} for over 0 s')
