"""The webhook: a signed HTTP POST for each new suppression, from an outbox table so a restart loses nothing.

:class:`~.suppressions.SuppressionList` writes the outbox row in the transaction that adds the suppression;
:func:`deliver` posts the due rows. A 2xx answer deletes the row (the body holds the address: it is not
kept longer than needed). Any other answer or a network error schedules the next attempt with exponential
back-off (``BACKOFF_BASE * 2**(attempts-1)``, at most ``BACKOFF_MAX``); after ``retries`` attempts the row is
marked failed and kept for ``list``/metrics, no longer tried.

Signature: ``X-Mailinfra-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`` (the time is
signed too, so a receiver can refuse replays); the body is compact JSON, keys sorted.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from ..store import Database

__all__ = ['BACKOFF_BASE', 'BACKOFF_MAX', 'SIGNATURE_HEADER', 'Delivery', 'backoff', 'deliver', 'sign', 'verify']

SIGNATURE_HEADER = 'X-Mailinfra-Signature'
BACKOFF_BASE = 30
"""Seconds before the second attempt."""
BACKOFF_MAX = 6 * 3600


def backoff(attempts: int) -> int:
    """Seconds to wait after the ``attempts``-th failed attempt."""
    return int(min(BACKOFF_MAX, BACKOFF_BASE * 2 ** max(0, attempts - 1)))


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret, str(timestamp).encode('ascii') + b'.' + body, hashlib.sha256).hexdigest()
    return f't={timestamp},v1={digest}'


def verify(secret: bytes, body: bytes, header: str, now: float, tolerance: int = 300) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` and its time is within ``tolerance`` seconds of ``now``."""
    fields = dict(part.split('=', 1) for part in header.split(',') if '=' in part)
    try:
        timestamp = int(fields.get('t', ''))
    except ValueError:
        return False
    expected = sign(secret, body, timestamp)
    return hmac.compare_digest(expected, header) and abs(now - timestamp) <= tolerance


@dataclass
class Delivery:
    """What one :func:`deliver` pass did."""

    delivered: int = 0
    retried: int = 0
    failed: int = 0
    """Rows that used up their attempts in this pass."""
    errors: list[str] = field(default_factory=list)


def _post(url: str, body: bytes, signature: str, timeout: float) -> str | None:
    request = urllib.request.Request(
        url,
        data=body,
        method='POST',
        headers={'Content-Type': 'application/json', SIGNATURE_HEADER: signature, 'User-Agent': 'mailinfra-agent'},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = int(response.status)
    except urllib.error.HTTPError as error:
        return f'HTTP {error.code}'
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, 'reason', error)
        return f'cannot connect: {reason}'
    return None if 200 <= status < 300 else f'HTTP {status}'


def deliver(
    db: Database,
    url: str,
    secret: bytes,
    *,
    retries: int = 8,
    timeout: float = 10,
    now: float | None = None,
    limit: int = 1000,
) -> Delivery:
    """Post every due outbox row once (oldest first)."""
    moment = int(time.time() if now is None else now)
    result = Delivery()
    rows = db.execute(
        'SELECT id, body, attempts FROM suppression_webhooks WHERE failed IS NULL AND next_attempt <= ? '
        'ORDER BY created, id LIMIT ?',
        (moment, limit),
    )
    for row_id, body, attempts in rows:
        data = str(body).encode('utf-8')
        error = _post(url, data, sign(secret, data, moment), timeout)
        if error is None:
            db.execute('DELETE FROM suppression_webhooks WHERE id = ?', (row_id,))
            result.delivered += 1
            continue
        tried = int(attempts) + 1
        gave_up = tried >= retries
        db.execute(
            'UPDATE suppression_webhooks SET attempts = ?, next_attempt = ?, last_error = ?, failed = ? WHERE id = ?',
            (tried, moment + backoff(tried), error, moment if gave_up else None, row_id),
        )
        result.errors.append(f'webhook {row_id}: attempt {tried} of {retries}: {error}')
        if gave_up:
            result.failed += 1
        else:
            result.retried += 1
    return result


def pending(db: Database) -> tuple[int, int]:
    """Outbox rows still to deliver, and rows given up."""
    rows = db.execute('SELECT COUNT(*), COUNT(failed) FROM suppression_webhooks')
    total, failed = (int(value) for value in rows[0])
    return total - failed, failed
