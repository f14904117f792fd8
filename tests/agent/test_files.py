"""replace_file: one rename, the mode (and owner) of the file it replaces, nothing left behind on failure."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from mailinfra_agent.files import replace_file


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_gets_0644_and_the_bytes(tmp_path: Path) -> None:
    target = tmp_path / 'main.cf'
    replace_file(target, b'a = 1\n')
    assert (target.read_bytes(), mode_of(target)) == (b'a = 1\n', 0o644)
    assert os.listdir(tmp_path) == ['main.cf']


def test_the_replaced_file_keeps_its_mode_and_is_a_new_inode(tmp_path: Path) -> None:
    target = tmp_path / 'config'
    target.write_bytes(b'old\n')
    target.chmod(0o640)
    before = target.stat().st_ino
    replace_file(target, b'new\n')
    assert (target.read_bytes(), mode_of(target)) == (b'new\n', 0o640)
    assert target.stat().st_ino != before


def test_like_gives_the_mode_of_another_file_and_mode_overrides_it(tmp_path: Path) -> None:
    baseline, target = tmp_path / 'config.rendered', tmp_path / 'config'
    baseline.write_bytes(b'x')
    baseline.chmod(0o600)
    replace_file(target, b'y', like=baseline)
    assert mode_of(target) == 0o600
    replace_file(target, b'z', like=baseline, mode=0o644)
    assert mode_of(target) == 0o644


def test_as_root_the_owner_of_like_is_kept(tmp_path: Path) -> None:
    baseline, target = tmp_path / 'config.rendered', tmp_path / 'config'
    baseline.write_bytes(b'x')
    os.chown(baseline, 65534, 65534)
    replace_file(target, b'y', like=baseline)
    assert (target.stat().st_uid, target.stat().st_gid) == (65534, 65534)


def test_a_failure_before_the_rename_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / 'transport_ip_isp'
    target.write_bytes(b'old\n')
    seen: list[str] = []

    def refuse(temporary: str) -> None:
        seen.append(Path(temporary).read_text())
        raise OSError('refused')

    with pytest.raises(OSError, match='refused'):
        replace_file(target, b'new\n', before_rename=refuse)
    assert seen == ['new\n']
    assert target.read_bytes() == b'old\n'
    assert os.listdir(tmp_path) == ['transport_ip_isp']
