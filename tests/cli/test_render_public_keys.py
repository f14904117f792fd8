"""`mailinfra render` publishes DKIM keys from the public records alone and never opens a private key."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailinfra_iac.cli.main import main

from ..conftest import BASE

_opened: list[str] | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _opened is not None and event == 'open' and isinstance(args[0], str | bytes):
        _opened.append(str(args[0]))


sys.addaudithook(_audit)


@pytest.fixture
def opened() -> Iterator[list[str]]:
    """Every file the process opens while the fixture is active."""
    global _opened
    _opened = []
    try:
        yield _opened
    finally:
        _opened = None


@pytest.fixture
def spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv('MAILINFRA_KEYS_DIR', str(tmp_path / 'keys'))
    path = tmp_path / 'spec.yml'
    path.write_text(BASE)
    assert main(['dkim', 'generate', str(path)]) == 0
    return path


def _tree(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob('*')) if p.is_file()}


def test_render_opens_no_private_key(spec: Path, tmp_path: Path, opened: list[str]) -> None:
    assert main(['render', str(spec), '-o', str(tmp_path / 'out')]) == 0
    keys = [path for path in opened if path.endswith('.key')]
    assert keys == []
    assert any(path.endswith('.pub.txt') for path in opened)  # the audit hook does see the key store


@pytest.mark.parametrize('how', ['delete', 'unreadable'])
def test_render_without_private_keys_is_byte_identical(
    spec: Path, tmp_path: Path, how: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(['render', str(spec), '-o', str(tmp_path / 'with')]) == 0
    private = sorted((tmp_path / 'keys').rglob('*.key'))
    assert len(private) == 3
    for path in private:
        if how == 'delete':
            path.unlink()
        else:  # root could still read it: make it something that fails to load as well
            path.write_bytes(b'not a key')
            path.chmod(0o000)
    capsys.readouterr()
    assert main(['render', str(spec), '-o', str(tmp_path / 'without')]) == 0, capsys.readouterr().err
    assert _tree(tmp_path / 'without') == _tree(tmp_path / 'with')


def test_a_missing_public_record_is_a_clear_error(
    spec: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    [public, *_] = sorted((tmp_path / 'keys').rglob('*.pub.txt'))
    public.unlink()
    capsys.readouterr()
    assert main(['render', str(spec), '-o', str(tmp_path / 'out')]) == 1
    assert (
        'is missing next to the private key; `mailinfra dkim generate SPEC` writes it again' in capsys.readouterr().err
    )
    assert main(['dkim', 'generate', str(spec)]) == 0
    assert public.exists()


def test_generate_reports_kept_keys_without_loading_them(
    spec: Path, tmp_path: Path, opened: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(['dkim', 'generate', str(spec)]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()[:3]] == ['kept'] * 3
    assert [path for path in opened if path.endswith('.key')] == []


@pytest.mark.parametrize('damage', ['loose-mode', 'deleted'])
def test_generate_still_checks_kept_private_key_files(
    spec: Path, tmp_path: Path, damage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    [private, *_] = sorted((tmp_path / 'keys').rglob('*.key'))
    if damage == 'loose-mode':
        private.chmod(0o644)
        expected = 'is accessible by other users (mode 0644)'
    else:
        private.unlink()
        expected = f'no rsa key at {private}'
    capsys.readouterr()
    assert main(['dkim', 'generate', str(spec)]) == 1
    assert expected in capsys.readouterr().err


def test_generate_rewrites_a_missing_public_record(spec: Path, tmp_path: Path) -> None:
    [public, *_] = sorted((tmp_path / 'keys').rglob('*.pub.txt'))
    text = public.read_text()
    public.unlink()
    assert main(['dkim', 'generate', str(spec)]) == 0
    assert public.read_text() == text
