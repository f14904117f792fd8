"""Where the DNS record list (`facts.records`) gets DKIM public keys: the key store and rotation state, or a table."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from ..problems import MailinfraError
from . import KeyStore, load_rotation


@dataclass(frozen=True)
class DkimTxt:
    """A DKIM record to publish: ``<selector>._domainkey.<domain>`` TXT ``value``."""

    selector: str
    algorithm: str
    value: str


class DkimSource(Protocol):
    """Public DKIM records for a domain, given the selectors the spec publishes."""

    def records(self, domain: str, wanted: list[tuple[str, str]]) -> tuple[list[DkimTxt], list[tuple[str, str]]]:
        """Return (records to publish, wanted (selector, algorithm) pairs that have no key)."""
        ...


class MissingDkimKeys(MailinfraError):
    """Keys the spec publishes but the key store does not hold."""

    def __init__(self, missing: list[tuple[str, str, str]], where: str) -> None:
        self.missing = missing
        lines = ', '.join(f'{selector}._domainkey.{domain} ({algorithm})' for domain, selector, algorithm in missing)
        super().__init__(
            f'no DKIM key for {lines} in {where}; create them with `mailinfra dkim generate SPEC` '
            '(keys stay outside the repository)'
        )


class StaticDkimSource:
    """A fixed table ``{(domain, selector): txt value}``: for tests and for keys managed elsewhere."""

    def __init__(self, values: Mapping[tuple[str, str], str]) -> None:
        self._values = dict(values)

    def records(self, domain: str, wanted: list[tuple[str, str]]) -> tuple[list[DkimTxt], list[tuple[str, str]]]:
        found, missing = [], []
        for selector, algorithm in wanted:
            value = self._values.get((domain, selector))
            if value is None:
                missing.append((selector, algorithm))
            else:
                found.append(DkimTxt(selector, algorithm, value))
        return found, missing


class KeyStoreDkimSource:
    """Public keys from the key store (``.pub.txt`` files, never the private keys); the rotation state adds
    retiring and revoked selectors."""

    def __init__(self, store: KeyStore, client: str) -> None:
        self.store = store
        self.client = client

    def records(self, domain: str, wanted: list[tuple[str, str]]) -> tuple[list[DkimTxt], list[tuple[str, str]]]:
        rotation = load_rotation(self.store, self.client, domain)
        published = {
            record.selector: DkimTxt(record.selector, str(record.algorithm), record.value)
            for record in rotation.dns_records()
        }
        missing = []
        for selector, algorithm in wanted:
            if selector in published:
                continue
            value = self.store.public_record(self.client, domain, selector, algorithm)
            if value is None:
                missing.append((selector, algorithm))
            else:
                published[selector] = DkimTxt(selector, algorithm, value)
        return [published[selector] for selector in sorted(published)], missing
