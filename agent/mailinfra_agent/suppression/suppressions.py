"""The suppression list in the store: add (idempotent), query, list, and the keyed hash of an address.

A row is (scope, address_hash): the scope is a stream name or ``'*'`` (every stream). The address is kept
in clear unless the deployment keeps suppressions only as keyed hashes (``Retention.suppressions = 'hash'``);
the hash is always there, so a hash-only row still answers :meth:`SuppressionList.lookup`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from dataclasses import asdict, dataclass
from typing import Any, Literal

from ..feedback.events import event_key
from ..names import ascii_domain
from ..store import Database

__all__ = [
    'ALL_STREAMS',
    'REASONS',
    'Entry',
    'Reason',
    'SuppressionList',
    'address_hash',
    'address_problem',
    'canonical_address',
    'legacy_address',
    'normalise_address',
]

Reason = Literal['hard-bounce', 'soft-bounce', 'complaint', 'unsubscribe', 'import', 'manual']
REASONS: tuple[Reason, ...] = ('hard-bounce', 'soft-bounce', 'complaint', 'unsubscribe', 'import', 'manual')
ALL_STREAMS = '*'

_LOCAL = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL = re.compile(r'^(?!-)[a-z0-9-]{1,63}(?<!-)$')
_COLUMNS = 'scope, address_hash, address, reason, category, source, created, expires'


def normalise_address(address: str) -> str:
    """Trimmed, lower case, without angle brackets."""
    return address.strip().strip('<>').strip().lower()


def _split(address: str) -> tuple[str, str, str]:
    """(local part lower-cased and unquoted, "@" or "", domain as given): the domain keeps its case, since UTS 46
    maps it (``ẞ``, a final ``Σ``) differently from ``str.lower``."""
    address = address.strip().strip('<>').strip()
    local, at, domain = address.rpartition('@')
    local = local.lower()
    if len(local) >= 2 and local.startswith('"') and local.endswith('"'):
        local = re.sub(r'\\(.)', r'\1', local[1:-1])
    return local, at, domain


def canonical_address(address: str) -> str:
    """The form the list keeps and a recipient is looked up in: trimmed, without angle brackets, the local part
    lower case and unquoted (backslash escapes dropped), the domain by :func:`~mailinfra_agent.names.ascii_domain`
    (``Bücher.de.`` -> ``xn--bcher-kva.de``). A domain that cannot be mapped is left lower case:
    :func:`address_problem` refuses it."""
    local, at, domain = _split(address)
    if not at:
        return normalise_address(address)
    mapped = ascii_domain(domain)
    return f'{local}@{domain.lower() if mapped is None else mapped}'


def legacy_address(address: str) -> str | None:
    """The key the list used before UTS 46 (Python's IDNA 2003 codec: ``faß.de`` -> ``fass.de``) when it differs
    from :func:`canonical_address`: lookups try it too, so an address suppressed in that form stays suppressed."""
    canonical = canonical_address(address)
    local, _, domain = canonical.rpartition('@')
    if 'xn--' not in domain:
        return None
    try:
        unicode = '.'.join(
            label[4:].encode('ascii').decode('punycode') if label.startswith('xn--') else label
            for label in domain.split('.')
        )
        old = unicode.encode('idna').decode('ascii')
    except UnicodeError:
        return None
    return None if old == domain else f'{local}@{old}'


def address_problem(address: str) -> str | None:
    """Why ``address`` (normalised) cannot be suppressed, or None: a plain ``local@domain`` (RFC 5321 dot-atom
    local part of at most 64 octets, a DNS domain with a dot), which is also a safe Postfix map key."""
    if not address:
        return 'empty address'
    if len(address) > 254:
        return 'address longer than 254 characters'
    local, at, domain = address.rpartition('@')
    if not at or not local:
        return 'no "@" with a local part before it'
    if len(local.encode('utf-8')) > 64:
        return 'local part longer than 64 octets'
    if not _LOCAL.fullmatch(local):  # fullmatch: "$" would let a trailing newline through
        return 'local part has characters outside a dot-atom (quotes, spaces, "..")'
    labels = domain.split('.')
    if len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels):
        return f'invalid domain "{domain}"'
    return None


def address_hash(key: bytes, address: str) -> str:
    """Hex HMAC-SHA256 of the canonical address (:func:`canonical_address`) under the deployment's hash key. For
    an address the list can hold, that is the normalised one, so hashes written before UTS 46 are unchanged."""
    return hmac.new(key, canonical_address(address).encode('utf-8'), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Entry:
    """One suppression."""

    scope: str
    address_hash: str
    address: str | None
    """None when only the keyed hash is kept."""
    reason: Reason
    category: str | None
    source: str
    """What caused it: an event key, ``import:<file>:<line>``, ``manual``."""
    created: int
    expires: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def active(self, now: float) -> bool:
        return self.expires is None or self.expires > now


def _entry(row: tuple[Any, ...], keep_address: bool = True) -> Entry:
    scope, hashed, address, reason, category, source, created, expires = row
    return Entry(
        str(scope),
        str(hashed),
        None if address is None or not keep_address else str(address),
        reason,
        None if category is None else str(category),
        str(source),
        int(created),
        None if expires is None else int(expires),
    )


class SuppressionList:
    """The suppression list of a store. ``keep_address=False`` stores only keyed hashes; ``webhook=True`` writes a
    webhook outbox row (:mod:`.webhook`) in the same transaction as each new suppression."""

    def __init__(self, db: Database, key: bytes, *, keep_address: bool = True, webhook: bool = False) -> None:
        if not key:
            raise ValueError('the address hash key is empty')
        self.db = db
        self._key = key
        self.keep_address = keep_address
        self.webhook = webhook

    def hash(self, address: str) -> str:
        return address_hash(self._key, address)

    def add(
        self,
        scope: str,
        address: str,
        reason: Reason,
        source: str,
        *,
        created: float | None = None,
        category: str | None = None,
        expires: int | None = None,
    ) -> Entry | None:
        """Suppress ``address`` in ``scope``; the new entry, or None when it was already suppressed there.

        ``address`` is kept in its canonical form (``gone@Bücher.de`` as ``gone@xn--bcher-kva.de``). Raises
        ValueError for an address that :func:`address_problem` refuses or an unknown reason."""
        address = canonical_address(address)
        problem = address_problem(address)
        if problem is not None:
            raise ValueError(f'cannot suppress "{address}": {problem}')
        if reason not in REASONS:
            raise ValueError(f'unknown suppression reason "{reason}"')
        entry = Entry(
            scope,
            self.hash(address),
            address if self.keep_address else None,
            reason,
            category,
            source,
            int(time.time() if created is None else created),
            expires,
        )
        with self.db.transaction():
            inserted = self.db.execute(
                f'INSERT INTO suppressions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) '
                'ON CONFLICT (scope, address_hash) DO NOTHING RETURNING scope',
                (
                    entry.scope,
                    entry.address_hash,
                    entry.address,
                    entry.reason,
                    entry.category,
                    entry.source,
                    entry.created,
                    entry.expires,
                ),
            )
            if not inserted:
                return None
            if self.webhook:
                body = json.dumps({'event': 'suppression', **entry.as_dict()}, sort_keys=True, separators=(',', ':'))
                self.db.execute(
                    'INSERT INTO suppression_webhooks (id, body, created, next_attempt) VALUES (?, ?, ?, ?) '
                    'ON CONFLICT (id) DO NOTHING',
                    (event_key('suppression', entry.scope, entry.address_hash, entry.created), body, entry.created, 0),
                )
        return entry

    def lookup(self, address: str, stream: str, now: float | None = None) -> Entry | None:
        """The suppression that stops mail of ``stream`` to ``address`` in any spelling (its own scope first, then
        ``'*'``); the address's :func:`legacy_address` too, where it has one."""
        moment = time.time() if now is None else now
        legacy = legacy_address(address)
        hashed = self.hash(address)
        hashes = (hashed, hashed if legacy is None else self.hash(legacy))
        rows = self.db.execute(
            f'SELECT {_COLUMNS} FROM suppressions WHERE address_hash IN (?, ?) AND scope IN (?, ?) '
            'AND (expires IS NULL OR expires > ?) ORDER BY scope = ?, address_hash <> ?',
            (*hashes, stream, ALL_STREAMS, int(moment), ALL_STREAMS, hashes[0]),
        )
        return _entry(rows[0], self.keep_address) if rows else None

    def is_suppressed(self, address: str, stream: str, now: float | None = None) -> bool:
        return self.lookup(address, stream, now) is not None

    def entries(self, scope: str | None = None, *, address: str | None = None) -> list[Entry]:
        """Every suppression (of one scope, of one address), ordered by scope and address hash."""
        where: list[str] = []
        params: list[Any] = []
        if scope is not None:
            where.append('scope = ?')
            params.append(scope)
        if address is not None:
            where.append('address_hash = ?')
            params.append(self.hash(address))
        clause = f' WHERE {" AND ".join(where)}' if where else ''
        rows = self.db.execute(f'SELECT {_COLUMNS} FROM suppressions{clause} ORDER BY scope, address_hash', params)
        # keep_address=False: never an address, also from a read-only store that drop_addresses has not reached
        return [_entry(row, self.keep_address) for row in rows]

    def drop_addresses(self) -> int:
        """Keep only the keyed hash of every row (``Retention.suppressions = 'hash'``); the rows changed."""
        with self.db.transaction():
            rows = self.db.execute('UPDATE suppressions SET address = NULL WHERE address IS NOT NULL RETURNING scope')
        return len(rows)

    def remove(self, scope: str, address: str) -> bool:
        """Lift one suppression; whether there was one."""
        with self.db.transaction():
            rows = self.db.execute(
                'DELETE FROM suppressions WHERE scope = ? AND address_hash = ? RETURNING scope',
                (scope, self.hash(address)),
            )
        return bool(rows)
