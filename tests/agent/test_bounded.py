"""Outside commands run with a time limit: a hung command (and what it started) is killed, and the caller sees a
failure, not a wait for ever"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mailinfra_agent import bounded
from mailinfra_agent.postfix import staged_check


def test_a_command_that_answers_gives_its_output_and_exit_code() -> None:
    result = bounded.run_bounded(['sh', '-c', 'echo out; echo err >&2; exit 3'])
    assert (result.returncode, result.stdout, result.stderr) == (3, 'out\n', 'err\n')


def test_a_hung_command_and_the_child_holding_its_pipes_are_killed(tmp_path: Path) -> None:
    marker = tmp_path / 'child'
    # The child keeps stdout open and would write the marker after 3 s: killed with its group, it never does (and
    # had the call waited for the command's 60 s, the marker would be there).
    result = bounded.run_bounded(['sh', '-c', f'echo before; (sleep 3; touch {marker}) & sleep 60'], timeout=0.5)
    assert result.returncode == bounded.TIMED_OUT
    assert result.stdout == 'before\n'
    assert 'no answer within 0.5 s: killed' in result.stderr
    time.sleep(3.5)
    assert not marker.exists()


def test_a_command_whose_child_keeps_the_pipe_open_returns_when_it_exits(tmp_path: Path) -> None:
    """As ``postfix reload``, whose ``postsuper &`` keeps its pipes: the command's own result, not a wait for the
    limit (exit 124); the child left behind is not killed and finishes its work."""
    marker = tmp_path / 'finished'
    script = tmp_path / 'reload'
    script.write_text(f'#!/bin/sh\necho reloading\n(sleep 4; echo ok > {marker}) &\necho done >&2\nexit 3\n')
    script.chmod(0o755)
    result = bounded.run_bounded([str(script)], timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (3, 'reloading\n', 'done\n')
    assert not marker.exists()  # returned before the child ended
    for _ in range(600):
        if marker.exists():
            break
        time.sleep(0.1)
    assert marker.read_text() == 'ok\n'


def test_a_command_that_closes_its_pipes_is_still_waited_for() -> None:
    result = bounded.run_bounded(['sh', '-c', 'echo early; exec >&- 2>&-; sleep 1; exit 5'], timeout=60)
    assert (result.returncode, result.stdout) == (5, 'early\n')


def _fake_postfix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> None:
    """A ``postfix`` command first on PATH that runs ``script``."""
    fake = tmp_path / 'bin' / 'postfix'
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\n{script}')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv('PATH', f'{fake.parent}{os.pathsep}{os.environ["PATH"]}')


def test_a_hung_postfix_check_is_killed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_postfix(tmp_path, monkeypatch, 'echo checking\nsleep 60\n')
    monkeypatch.setattr(bounded, 'TIMEOUT', 0.5)
    code, output = staged_check.postfix_check(str(tmp_path))
    assert code == bounded.TIMED_OUT
    assert output.startswith('checking')
    assert 'postfix check: no answer within 0.5 s: killed' in output


def test_postfix_check_still_gives_postfix_s_own_answer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_postfix(tmp_path, monkeypatch, '[ -t 2 ] && echo "on a terminal: $*" >&2\nexit 1\n')
    code, output = staged_check.postfix_check(str(tmp_path))
    assert code == 1
    assert output.strip() == f'on a terminal: -c {tmp_path} check'


def test_an_interrupted_caller_takes_its_command_down(tmp_path: Path) -> None:
    """The command runs in its own session, out of reach of the terminal's Ctrl-C: an interrupted caller kills it."""
    pid_file = tmp_path / 'pid'
    code = (
        'import sys; from mailinfra_agent.bounded import run_bounded; '
        f'run_bounded(["sh", "-c", "echo $$ > {pid_file}; exec sleep 60"])'
    )
    caller = subprocess.Popen([sys.executable, '-c', code], stderr=subprocess.DEVNULL)
    for _ in range(600):  # the command has started (up to a minute on a loaded machine)
        if pid_file.exists() and pid_file.read_text().strip():
            break
        time.sleep(0.1)
    command = int(pid_file.read_text())
    caller.send_signal(signal.SIGINT)
    assert caller.wait() != 0  # KeyboardInterrupt
    with pytest.raises(ProcessLookupError):
        os.kill(command, 0)  # killed and reaped, not left sleeping
