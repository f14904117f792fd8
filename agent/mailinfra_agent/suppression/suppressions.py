"""The suppression list in the store: add (idempotent), query, list, and the keyed hash of an address.

A row is (scope, address_hash): the scope is a stream name or ``'*'`` (every stream). The address is kept
in clear unless the deployment keeps suppressions only as keyed hashes (``Retention.suppressions = 'hash'``);
the hash is always there, so a hash-only row still answers :meth:`SuppressionList.lookup`.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import re
import time
from dataclasses import asdict, dataclass
from typing import Any, Literal

from ..feedback.events import event_key
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


def canonical_address(address: str) -> str:
    """The form a received recipient is looked up in: :func:`normalise_address`, then a quoted local part unquoted
    (backslash escapes dropped), one trailing dot of the domain dropped and the domain IDNA-encoded (the list keeps
    only ASCII domains, so ``bücher.de`` is stored as ``xn--bcher-kva.de``). May still fail :func:`address_problem`."""
    address = normalise_address(address)
    local, at, domain = address.rpartition('@')
    if not at:
        return address
    if len(local) >= 2 and local.startswith('"') and local.endswith('"'):
        local = re.sub(r'\\(.)', r'\1', local[1:-1])
    domain = domain.removesuffix('.')
    if not domain.isascii():
        with contextlib.suppress(UnicodeError):  # left as it is: address_problem() refuses it
            domain = domain.encode('idna').decode('ascii')
    return f'{local}@{domain}'


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
    """Hex HMAC-SHA256 of the normalised address under the deployment's hash key."""
    return hmac.new(key, normalise_address(address).encode('utf-8'), hashlib.sha256).hexdigest()


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


def _entry(row: tuple[Any, ...]) -> Entry:
    scope, hashed, address, reason, category, source, created, expires = row
    return Entry(
        str(scope),
        str(hashed),
        None if address is None else str(address),
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

        Raises ValueError for an address that :func:`address_problem` refuses or an unknown reason."""
        address = normalise_address(address)
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
        """The suppression that stops mail of ``stream`` to ``address`` (its own scope first, then ``'*'``)."""
        moment = time.time() if now is None else now
        rows = self.db.execute(
            f'SELECT {_COLUMNS} FROM suppressions WHERE address_hash = ? AND scope IN (?, ?) '
            'AND (expires IS NULL OR expires > ?) ORDER BY scope = ?',
            (self.hash(address), stream, ALL_STREAMS, int(moment), ALL_STREAMS),
        )
        return _entry(rows[0]) if rows else None

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
        return [_entry(row) for row in rows]

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
