"""Remediation paths of the catalogued mailbox providers: ``catalogue/remediation.yml``.

Where a sender asks a provider to lift a block or a throttle (sender support form, delisting portal,
postmaster page). Alerts on back-off actions and the audit name them.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Literal

import yaml
from pydantic import Field, ValidationError, field_validator

from ..model.base import Model


class Remediation(Model):
    """One provider's remediation path."""

    url: str = Field(description='https URL of the form, portal or page.')
    kind: Literal['support form', 'delisting portal', 'postmaster page'] = Field(description='What the URL is.')
    note: str = Field(description='What to expect there.')
    source: str = Field(description='Where the URL was found.')

    @field_validator('url')
    @classmethod
    def _https(cls, value: str) -> str:
        if not value.startswith('https://') or any(char.isspace() for char in value):
            raise ValueError(f'invalid remediation URL "{value}", expected an https:// URL')
        return value


@cache
def remediations() -> dict[str, Remediation]:
    """ISP profile name -> remediation path, in name order."""
    text = resources.files(__package__).joinpath('remediation.yml').read_text(encoding='utf-8')
    loaded = yaml.safe_load(text)
    if not isinstance(loaded, dict):
        raise ValueError('catalogue/remediation.yml: expected a mapping of ISP name -> {url, kind, note, source}')
    found = {}
    for name, entry in sorted(loaded.items()):
        try:
            found[str(name)] = Remediation.model_validate(entry)
        except ValidationError as error:
            raise ValueError(f'catalogue/remediation.yml: {name}: {error}') from None
    return found


def remediation(isp: str) -> Remediation | None:
    """The provider's remediation path, None for a provider the file does not know (a spec-defined one)."""
    return remediations().get(isp)
