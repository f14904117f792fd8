"""Where the project's non-Python parts (Ansible roles, Terraform modules) live.

Three places, the first that has both ``roles/`` and ``terraform/modules/`` wins:

1. ``$MAILINFRA_PROJECT``, when set (it must then hold them: a wrong value is an error, not a fallback);
2. the checkout the package is imported from (the package's parent directory);
3. the copy bundled in the wheel, ``mailinfra_iac/_data/`` (setup.py puts it there at build time).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .problems import MailinfraError

PROJECT_ENV = 'MAILINFRA_PROJECT'
PACKAGE_DIR = Path(__file__).resolve().parent
BUNDLED_DIR = PACKAGE_DIR / '_data'
"""Where a built wheel carries roles/ and terraform/modules/."""


@dataclass(frozen=True)
class DataRoot:
    """A directory holding ``roles/`` and ``terraform/modules/``, and where it was found."""

    path: Path
    origin: str
    """``$MAILINFRA_PROJECT``, ``checkout`` or ``bundled``."""

    @property
    def roles(self) -> Path:
        return self.path / 'roles'

    @property
    def modules(self) -> Path:
        return self.path / 'terraform' / 'modules'

    def describe(self) -> str:
        """One line for ``mailinfra --version``."""
        if self.origin == 'bundled':
            return f'roles and Terraform modules: bundled in the wheel ({self.path})'
        if self.origin == 'checkout':
            return f'roles and Terraform modules: checkout at {self.path}'
        return f'roles and Terraform modules: {self.path} (from ${PROJECT_ENV})'


def _complete(root: Path) -> bool:
    return (root / 'roles').is_dir() and (root / 'terraform' / 'modules').is_dir()


def data_root() -> DataRoot:
    """The roles and modules in use: ``$MAILINFRA_PROJECT``, else the checkout, else the wheel's bundled copy."""
    configured = os.environ.get(PROJECT_ENV)
    if configured:
        root = Path(configured)
        if not _complete(root):
            raise MailinfraError(f'{PROJECT_ENV}={configured} has no roles/ and terraform/modules/')
        return DataRoot(root, PROJECT_ENV)
    if _complete(PACKAGE_DIR.parent):
        return DataRoot(PACKAGE_DIR.parent, 'checkout')
    if _complete(BUNDLED_DIR):
        return DataRoot(BUNDLED_DIR, 'bundled')
    raise MailinfraError(
        f'no roles/ and terraform/modules/ beside the package ({PACKAGE_DIR.parent}) nor bundled in it '
        f'({BUNDLED_DIR}): install mailinfra-iac from a wheel, run it from a checkout, or set {PROJECT_ENV} to one'
    )


def project_root() -> Path:
    """The directory holding ``roles/`` and ``terraform/modules/`` (see :func:`data_root`)."""
    return data_root().path
