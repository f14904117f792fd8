"""The one event type every feedback source yields: a delivery attempt, a DSN, a complaint or an unsubscribe.

Parsers (Postfix logs, PowerMTA accounting, DSN and ARF messages, the unsubscribe endpoint) build
:class:`Event` values; the ingest service stores them under ``key``, so a source read twice changes
nothing. Standard library only: both sides import this module.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal, final

__all__ = ['KINDS', 'STATUSES', 'Event', 'EventError', 'event_key']

Kind = Literal['delivery', 'dsn', 'complaint', 'unsubscribe']
Status = Literal['sent', 'deferred', 'bounced', 'expired', 'complaint', 'unsubscribe']
KINDS: tuple[Kind, ...] = ('delivery', 'dsn', 'complaint', 'unsubscribe')
STATUSES: tuple[Status, ...] = ('sent', 'deferred', 'bounced', 'expired', 'complaint', 'unsubscribe')


class EventError(ValueError):
    """Input a parser cannot read. ``reason`` is a short stable id (a metric label), the message says where and why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def event_key(*parts: str | int | float | None) -> str:
    """A stable unique key from the parts that identify one event (hex SHA-256, 32 characters)."""
    joined = '\x1f'.join('' if part is None else str(part) for part in parts)
    return hashlib.sha256(joined.encode('utf-8', 'surrogateescape')).hexdigest()[:32]


_set_class = object.__setattr__


@final  # __init__ ends by making the object an Event: a subclass would lose its class
@dataclass(frozen=True, slots=True, init=False)
class Event:
    """One outcome for one recipient. Times are POSIX seconds (UTC); unknown fields are ``None``."""

    key: str
    """Unique per event; the same input always gives the same key (see :func:`event_key`)."""
    kind: Kind
    status: Status
    time: float
    recipient: str
    """Lower-cased address; for an anonymised complaint the address our own data (VERP, token) gave back."""
    source: str
    """Where it was read: a log file path, ``maildir:<name>``, ``http``."""
    stream: str | None = None
    """The stream (Postfix instance / PowerMTA virtual-mta pool) the message left through."""
    queue_id: str | None = None
    sending_ip: str | None = None
    sender: str | None = None
    """The envelope sender (a VERP return path when the stream uses VERP)."""
    isp: str | None = None
    smtp_code: str | None = None
    """The three-digit reply code, e.g. ``550``."""
    dsn: str | None = None
    """The RFC 3463 enhanced status code, e.g. ``5.1.1``."""
    diagnostic: str | None = None
    relay: str | None = None
    delay: float | None = None
    """Seconds from arrival to this outcome."""
    message_id: str | None = None
    segment: str | None = None
    """The list segment, from the VERP return path or the token header."""
    campaign: str | None = None
    category: str | None = None
    """The bounce category the classifier gave (``classify``), set by ingest."""
    feedback_type: str | None = None
    """ARF ``Feedback-Type`` (``abuse``, ...) for complaints."""

    def __init__(
        self,
        key: str,
        kind: Kind,
        status: Status,
        time: float,
        recipient: str,
        source: str,
        stream: str | None = None,
        queue_id: str | None = None,
        sending_ip: str | None = None,
        sender: str | None = None,
        isp: str | None = None,
        smtp_code: str | None = None,
        dsn: str | None = None,
        diagnostic: str | None = None,
        relay: str | None = None,
        delay: float | None = None,
        message_id: str | None = None,
        segment: str | None = None,
        campaign: str | None = None,
        category: str | None = None,
        feedback_type: str | None = None,
    ) -> None:
        # Ingest builds one event per log line: plain slot stores cost a fifth of a frozen dataclass's
        # object.__setattr__ per field. Same slots, so the class can be switched (CPython's __class__ assignment).
        _set_class(self, '__class__', _Building)
        self.key = key  # type: ignore[misc]
        self.kind = kind  # type: ignore[misc]
        self.status = status  # type: ignore[misc]
        self.time = time  # type: ignore[misc]
        self.recipient = recipient  # type: ignore[misc]
        self.source = source  # type: ignore[misc]
        self.stream = stream  # type: ignore[misc]
        self.queue_id = queue_id  # type: ignore[misc]
        self.sending_ip = sending_ip  # type: ignore[misc]
        self.sender = sender  # type: ignore[misc]
        self.isp = isp  # type: ignore[misc]
        self.smtp_code = smtp_code  # type: ignore[misc]
        self.dsn = dsn  # type: ignore[misc]
        self.diagnostic = diagnostic  # type: ignore[misc]
        self.relay = relay  # type: ignore[misc]
        self.delay = delay  # type: ignore[misc]
        self.message_id = message_id  # type: ignore[misc]
        self.segment = segment  # type: ignore[misc]
        self.campaign = campaign  # type: ignore[misc]
        self.category = category  # type: ignore[misc]
        self.feedback_type = feedback_type  # type: ignore[misc]
        self.__class__ = Event


class _Building:
    """:class:`Event`'s slots without its frozen ``__setattr__``: ``Event.__init__`` fills an event as this class."""

    __slots__ = Event.__slots__
