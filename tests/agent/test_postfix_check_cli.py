"""``mailinfra-agent postfix-check`` as a person types it: relative directories (Debian's Postfix, root only)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.agent.test_postfix_staged_check import staged

__all__ = ['staged']


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
