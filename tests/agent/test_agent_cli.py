"""``mailinfra-agent`` as a person types it: every action's ``--help``, relative directories for postfix-check
(Debian's Postfix, root only)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailinfra_agent.cli import build_parser, main
from tests.agent.ingest_logs import contract_data
from tests.agent.test_postfix_staged_check import staged
from tests.agent.test_store_backup import contract_file, make_store

__all__ = ['staged']


def _actions(parser: argparse.ArgumentParser, path: str) -> Iterator[tuple[str, argparse.ArgumentParser, str | None]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f'{path} {name}', sub, parser.description
                yield from _actions(sub, f'{path} {name}')


def test_every_action_describes_itself_in_plain_text() -> None:
    found = list(_actions(build_parser(), 'mailinfra-agent'))
    assert len(found) >= 40
    # Each --help says what that action does (not its parent's text again), without reST markup.
    assert [path for path, sub, parent in found if not sub.description or sub.description == parent] == []
    assert [path for path, sub, _ in found if '``' in sub.format_help()] == []


def test_relative_directories_are_checked_as_absolute_ones(staged: Path) -> None:
    # `postfix -c staged check` refuses a relative directory ("-c requires absolute pathname").
    done = subprocess.run(
        [sys.executable, '-m', 'mailinfra_agent', 'postfix-check', 'check', staged.name, 'live'],
        cwd=staged.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, '')


def test_ingest_once_names_a_given_path_that_does_not_exist(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    contract = tmp_path / 'agent.json'
    contract.write_text(json.dumps(contract_data({'backend': 'sqlite', 'path': str(tmp_path / 'agent.db')}, {})))
    log = tmp_path / 'mail.log'
    log.write_text('')
    run = ['ingest', '--contract', str(contract), 'run', '--once', '--no-contract-logs', '--log', str(log)]
    assert main(run) == 0
    capsys.readouterr()
    assert main([*run, '--log', str(tmp_path / 'mial.log')]) == 2  # it read nothing and said "stored 0 events"
    assert capsys.readouterr().err.startswith(f'ingest: {tmp_path / "mial.log"}: No such file or directory (')
    # Its own reason: a directory given as a log, a path through a file.
    assert main([*run, '--log', str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith(f'ingest: {tmp_path}: not a file (')
    assert main([*run, '--log', str(log / 'x.log')]) == 2  # its own reason, not "not found"
    assert capsys.readouterr().err.startswith(f'ingest: {log / "x.log"}: Not a directory (')


def test_install_refuses_names_outside_the_directories(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    staged, live = tmp_path / 'a' / 'staged', tmp_path / 'a' / 'live'
    staged.mkdir(parents=True)
    (tmp_path / 'secret').write_text('x')
    (staged / 'main.cf').write_text('y')
    for name in ('../../secret', '/etc/hostname', 'sasl/../main.cf'):
        assert main(['postfix-check', 'install', str(staged), str(live), 'main.cf', name]) == 2
        assert capsys.readouterr().err == f'postfix-check install: {name!r}: not a relative file name\n'
    assert not live.exists()  # nothing installed, not even main.cf


def test_store_backup_onto_a_directory_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = make_store(tmp_path / 'agent.db', 1)
    contract = str(contract_file(tmp_path, {'backend': 'sqlite', 'path': str(source)}))
    (tmp_path / 'out').mkdir()
    assert main(['store', '--contract', contract, 'backup', str(tmp_path / 'out')]) == 2  # was a traceback
    assert capsys.readouterr().err == f'store: {tmp_path / "out"} is a directory: give the path of the copy\n'
    assert list((tmp_path / 'out').iterdir()) == []
