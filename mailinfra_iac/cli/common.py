"""Helpers shared by the command modules."""

from __future__ import annotations

import json
from pathlib import Path

from ..problems import MailinfraError


def addresses_from(path: str | None) -> dict[str, str]:
    """Addresses Terraform allocated: the ``ip_addresses`` output of ``terraform output -json``."""
    if path is None:
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding='utf-8'))
        output = data.get('ip_addresses', data)
        values = output.get('value', output)
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
            raise ValueError('expected {"ip_addresses": {"value": {IP_ID: ADDRESS}}} from `terraform output -json`')
        return dict(values)
    except (OSError, ValueError, AttributeError) as error:
        raise MailinfraError(f'cannot read Terraform outputs from {path}: {error}') from None
