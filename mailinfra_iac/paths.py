"""Where the project's non-Python parts (roles, Terraform modules) live."""

from __future__ import annotations

import os
from pathlib import Path

from .problems import MailinfraError

PROJECT_ENV = 'MAILINFRA_PROJECT'


def project_root() -> Path:
    """The checkout holding ``roles/`` and ``terraform/modules/``: ``$MAILINFRA_PROJECT`` or the package's parent."""
    root = Path(os.environ.get(PROJECT_ENV) or Path(__file__).resolve().parent.parent)
    if not (root / 'roles').is_dir() or not (root / 'terraform' / 'modules').is_dir():
        raise MailinfraError(
            f'{root} has no roles/ and terraform/modules/: run mailinfra from a checkout of mailinfra-iac '
            f'or set {PROJECT_ENV} to one'
        )
    return root
