"""The remediation paths of the ISP catalogue (catalogue/remediation.yml)."""

from __future__ import annotations

import pytest

from mailinfra_iac.catalogue import remediation as module
from mailinfra_iac.catalogue.isps import builtin_isps
from mailinfra_iac.catalogue.remediation import Remediation, remediation, remediations


def test_every_entry_is_a_catalogued_provider_and_every_big_provider_has_one() -> None:
    known = set(builtin_isps())
    assert set(remediations()) <= known, 'remediation.yml names a provider the ISP catalogue lacks'
    assert {'gmail', 'yahoo', 'microsoft'} <= set(remediations())
    assert all(entry.url.startswith('https://') and entry.source for entry in remediations().values())


def test_lookup() -> None:
    gmail = remediation('gmail')
    assert gmail is not None and gmail.kind == 'support form'
    assert gmail.url == 'https://support.google.com/mail/troubleshooter/2696779'
    assert remediation('a-provider-of-the-spec') is None


def test_a_bad_entry_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match='expected an https:// URL'):
        Remediation(url='http://example.com/form', kind='support form', note='n', source='s')
    with pytest.raises(ValueError):
        Remediation.model_validate({'url': 'https://example.com/', 'kind': 'phone', 'note': 'n', 'source': 's'})

    class Files:
        def __init__(self, text: str) -> None:
            self.text = text

        def joinpath(self, name: str) -> Files:
            return self

        def read_text(self, encoding: str) -> str:
            return self.text

    remediations.cache_clear()
    try:
        monkeypatch.setattr(module.resources, 'files', lambda package: Files('gmail: {url: ftp://x, kind: x}\n'))
        with pytest.raises(ValueError, match=r'catalogue/remediation\.yml: gmail: '):
            remediations()
        remediations.cache_clear()
        monkeypatch.setattr(module.resources, 'files', lambda package: Files('- a list\n'))
        with pytest.raises(ValueError, match='expected a mapping'):
            remediations()
    finally:
        monkeypatch.undo()
        remediations.cache_clear()
    assert 'gmail' in remediations()
