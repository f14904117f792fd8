"""Running an outside command (postconf, postfix, a reload command) with a time limit, as every host service here does.

A service that waits for ever on a hung command stops doing its job (the shaping service stops converging, a warm-up
timer never ends), so each command gets :data:`TIMEOUT` seconds. When they pass, its whole process group is killed:
``subprocess.run(timeout=...)`` kills only the command itself and then waits for its pipes, which a child it started
(``postfix reload`` runs ``postfix-script``) may hold open. The caller then sees an ordinary failure: exit code
:data:`TIMED_OUT` (as coreutils ``timeout``) and a line saying so on stderr.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence

__all__ = ['TIMED_OUT', 'TIMEOUT', 'kill_group', 'run_bounded']

TIMEOUT = 300.0
"""Seconds a command may take (``postfix check`` of a large configuration takes a few; a reload under a second)."""
TIMED_OUT = 124
"""The exit code given to a command that was killed at its time limit."""


def run_bounded(argv: Sequence[str], timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    """``argv`` with captured text output, killed with its process group after ``timeout`` (default :data:`TIMEOUT`)
    seconds. OSError when it cannot start (as ``subprocess.run``)."""
    limit = TIMEOUT if timeout is None else timeout
    process = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: killed whole at the limit
    )
    with process:  # closes the pipes whatever happens
        try:
            stdout, stderr = process.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            kill_group(process)
            try:  # what it wrote before; a child that left the group may still hold the pipes
                stdout, stderr = process.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                stdout = stderr = ''
            note = f'{argv[0]}: no answer within {limit:g} s: killed'
            return subprocess.CompletedProcess(list(argv), TIMED_OUT, stdout, f'{stderr}{note}\n')
        except BaseException:  # interrupted (Ctrl-C, a signal's exception): in its own session, nothing else stops it
            kill_group(process)
            raise
    return subprocess.CompletedProcess(list(argv), process.returncode, stdout, stderr)


def kill_group(process: subprocess.Popen[str] | subprocess.Popen[bytes]) -> None:
    """Kill ``process`` and every process of its group (it was started with ``start_new_session``)."""
    with contextlib.suppress(ProcessLookupError):  # already gone, with its group
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
