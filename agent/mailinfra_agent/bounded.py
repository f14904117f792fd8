"""Running an outside command (postconf, postfix, a reload command) with a time limit, as every host service here does.

A service that waits for ever on a hung command stops doing its job (the shaping service stops converging, a warm-up
timer never ends), so each command gets :data:`TIMEOUT` seconds. When they pass, its whole process group is killed:
``subprocess.run(timeout=...)`` kills only the command itself and then waits for its pipes, which a child it started
(``postfix reload`` runs ``postfix-script``) may hold open. The caller then sees an ordinary failure: exit code
:data:`TIMED_OUT` (as coreutils ``timeout``) and a line saying so on stderr.

A command that exits while something it started still holds its output open is not waited for beyond :data:`GRACE`
seconds more: the pipes are closed and its own exit code returned. What it left behind is left running, as a shell
would: ``postfix reload`` ends with ``postsuper &`` (the queue's structure check and repair), which must finish.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Sequence

__all__ = ['GRACE', 'TIMED_OUT', 'TIMEOUT', 'kill_group', 'run_bounded']

TIMEOUT = 300.0
"""Seconds a command may take (``postfix check`` of a large configuration takes a few; a reload under a second)."""
TIMED_OUT = 124
"""The exit code given to a command that was killed at its time limit."""
GRACE = 2.0
"""Seconds the output pipes are still read after the command itself exited."""


def run_bounded(argv: Sequence[str], timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    """``argv`` with captured text output, killed with its process group after ``timeout`` (default :data:`TIMEOUT`)
    seconds; read until :data:`GRACE` seconds after it exited if something it left behind still holds its output.
    OSError when it cannot start (as ``subprocess.run``)."""
    limit = TIMEOUT if timeout is None else timeout
    process = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: killed whole at the limit
    )
    with process:  # closes the pipes whatever happens
        try:
            out, err, exited = _read(process, time.monotonic() + limit)
        except BaseException:  # interrupted (Ctrl-C, a signal's exception): in its own session, nothing else stops it
            kill_group(process)
            raise
        if exited:  # what it left behind holding the pipes runs on; they close here
            process.wait()
        else:  # at the limit
            kill_group(process)
        stdout, stderr = _text(out), _text(err)
    if not exited:
        note = f'{argv[0]}: no answer within {limit:g} s: killed'
        return subprocess.CompletedProcess(list(argv), TIMED_OUT, stdout, f'{stderr}{note}\n')
    return subprocess.CompletedProcess(list(argv), process.returncode, stdout, stderr)


def _read(process: subprocess.Popen[bytes], deadline: float) -> tuple[bytes, bytes, bool]:
    """Read both pipes until they close and the command exits, until :data:`GRACE` seconds after it exited, or until
    ``deadline``: (stdout, stderr, whether it exited). The command is not reaped here (a
    pidfd tells its exit), so its process id, and its group's, cannot be reused before :func:`kill_group`."""
    assert process.stdout is not None and process.stderr is not None
    chunks: dict[int, list[bytes]] = {process.stdout.fileno(): [], process.stderr.fileno(): []}
    pidfd = os.pidfd_open(process.pid)
    exited = False
    open_pipes = len(chunks)
    try:
        with selectors.DefaultSelector() as selector:
            for fd in (*chunks, pidfd):
                selector.register(fd, selectors.EVENT_READ)
            while open_pipes or not exited:
                wait = deadline - time.monotonic()
                events = selector.select(max(wait, 0))
                for key, _ in events:
                    if key.fd == pidfd:
                        exited = True
                        selector.unregister(pidfd)
                        deadline = min(deadline, time.monotonic() + GRACE)
                        continue
                    data = os.read(key.fd, 65536)
                    if data:
                        chunks[key.fd].append(data)
                    else:
                        selector.unregister(key.fd)
                        open_pipes -= 1
                if wait <= 0:
                    break
    finally:
        os.close(pidfd)
    out, err = (b''.join(parts) for parts in chunks.values())
    return out, err, exited


def _text(data: bytes) -> str:
    """Output as text, as ``text=True`` gives it (universal newlines); bytes that are not UTF-8 replaced."""
    return data.decode('utf-8', 'replace').replace('\r\n', '\n').replace('\r', '\n')


def kill_group(process: subprocess.Popen[str] | subprocess.Popen[bytes]) -> None:
    """Kill ``process`` and every process of its group (it was started with ``start_new_session``)."""
    with contextlib.suppress(ProcessLookupError):  # already gone, with its group
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
