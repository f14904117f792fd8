"""Complaint reports (RFC 5965 ARF, Yahoo CFL, Microsoft JMRP) -> complaint events.

An ARF report is ``multipart/report; report-type=feedback-report``: a human-readable part, a
``message/feedback-report`` part (Feedback-Type, User-Agent, Version, Original-Mail-From, Original-Rcpt-To,
Arrival-Date, Source-IP, Reported-Domain) and the original message (``message/rfc822``) or its headers
(``text/rfc822-headers``). From the original we read its Message-ID, the DKIM ``d=`` domain(s), List-Id, the
Return-Path (our VERP return path) and our id header.

Who complained, in this order:

1. our own signed data: the VERP return path (Original-Mail-From, or the original's Return-Path when that one is
   not ours), through the VERP decoder, when it verifies and carries the recipient; else our ``X-Mailinfra-Id``
   header in the original, through the ``ident`` decoder, when that gives a recipient (today it carries a keyed
   recipient id, not the address). It wins over what the report says: anybody can mail a report to the feedback
   address;
2. every usable ``Original-Rcpt-To`` (a redacted one, ``*``-masked or ``redacted@...``, is not usable);
3. the legacy JMRP header ``X-HmXmrOriginalRecipient`` of the original (Microsoft removed it in 2026).

Stream, segment and campaign come from the id header, else the VERP. Microsoft's JMRP is now anonymised (ARF,
headers only, recipient redacted), so for it the VERP, the Message-ID and the id header are what is left. When no
step finds the recipient, :class:`NoRecipient` is raised: it carries the complaint with an empty recipient and the
raw id header, so that ingest can find the recipient in its store (the deliveries of that Message-ID).

Recipients of steps 2 and 3 are only what the report claims (anybody can
mail a report naming any address and any Message-ID): :class:`UnconfirmedComplaint` is raised with their events,
and ingest keeps those our data attributes (the id header made for that address, a stored delivery of the
Message-ID or of our return path to it), else counts ``unattributed-complaint`` and suppresses nothing.

The original's To header is never used: it may be a list address, a Bcc'd message shows someone else, and
providers redact it.

Feedback types: abuse, fraud, virus, other (and a missing one) are complaints (kind ``complaint``); ``opt-out``
and ``opt-out-list`` (ARF drafts) are unsubscribes; ``not-spam`` (RFC 6430), ``auth-failure`` (RFC 6591, DMARC
failure reports) and unknown types are no complaint: ``EventError('not-a-complaint')``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from email.message import Message

from mailinfra_agent.feedback import _mime
from mailinfra_agent.feedback.events import Event, EventError, event_key

__all__ = [
    'COMPLAINT_TYPES',
    'LEGACY_JMRP_HEADER',
    'UNSUBSCRIBE_TYPES',
    'FeedbackReport',
    'NoRecipient',
    'UnconfirmedComplaint',
    'complaint_key',
    'is_legacy_jmrp',
    'parse_arf',
    'read_feedback_report',
]

COMPLAINT_TYPES = frozenset({'abuse', 'fraud', 'virus', 'other'})
UNSUBSCRIBE_TYPES = frozenset({'opt-out', 'opt-out-list'})
LEGACY_JMRP_HEADER = 'X-HmXmrOriginalRecipient'
"""Microsoft's pre-2026 JMRP put the complainer's address in this header of the original message."""
_DKIM_DOMAIN = re.compile(r'(?:^|;)\s*d\s*=\s*([^;\s]+)')
_LIST_ID = re.compile(r'<([^<>\s]+)>')


class NoRecipient(EventError):
    """A complaint whose recipient is not in the report nor in our decoded headers (reason ``no-recipient``, or
    ``no-original-message`` when the original is missing too). ``event``: the complaint with ``recipient=''`` and
    all else found; ``id_header``: the raw ``X-Mailinfra-Id`` value of the original, or None."""

    def __init__(self, reason: str, message: str, event: Event, id_header: str | None) -> None:
        super().__init__(reason, message)
        self.event = event
        self.id_header = id_header


class UnconfirmedComplaint(NoRecipient):
    """A complaint (or opt-out) whose recipients only the report names, not our signed data (reason
    ``unconfirmed-complaint``). ``events``: one per claimed recipient; ``verified``: the events' ``sender`` is our
    return path and verifies (it names no recipient). Ingest keeps the claims our data attributes."""

    def __init__(self, message: str, events: list[Event], id_header: str | None, *, verified: bool) -> None:
        super().__init__('unconfirmed-complaint', message, events[0], id_header)
        self.events = events
        self.verified = verified


def complaint_key(event: Event, recipient: str, identity: str | None = None) -> str:
    """The key of complaint ``event`` for ``recipient``: the same parts :func:`parse_arf` uses (the original's
    Message-ID, else ``identity``), so a recipient found later by ingest gives the key a direct parse would."""
    return event_key(event.kind, event.message_id or identity, recipient, event.feedback_type)


@dataclass(frozen=True)
class FeedbackReport:
    """What one complaint report says. Addresses are lower-cased; the return path keeps its case."""

    feedback_type: str | None
    user_agent: str | None
    version: str | None
    original_mail_from: str | None
    original_rcpt_to: tuple[str, ...]
    """The usable Original-Rcpt-To addresses."""
    redacted_rcpt_to: tuple[str, ...]
    """Original-Rcpt-To values that are no address (redacted, masked)."""
    arrival: float | None
    source_ip: str | None
    reported_domains: tuple[str, ...]
    has_report_part: bool
    has_original: bool
    message_id: str | None
    dkim_domains: tuple[str, ...]
    list_id: str | None
    return_path: str | None
    """Original-Mail-From, else the original's Return-Path (without angle brackets)."""
    id_header: str | None
    """The value of our id header (``X-Mailinfra-Id``) in the original."""
    legacy_recipient: str | None
    """The legacy JMRP ``X-HmXmrOriginalRecipient`` address."""
    original_return_path: str | None = None
    """The original's Return-Path (without angle brackets), also when Original-Mail-From is given."""


def _report_fields(msg: Message) -> Message | None:
    part = next((p for p in _mime.report_parts(msg) if p.get_content_type() == 'message/feedback-report'), None)
    if part is None:
        return None
    decoded = _mime.decoded_report(part)
    if decoded is not None:
        return _mime.header_block(decoded.decode('utf-8', 'replace'))
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        fields: Message = payload[0]
        return fields
    return _mime.header_block(_mime.part_text(part))


def is_legacy_jmrp(msg: Message) -> bool:
    """A pre-ARF Hotmail/JMRP report: no feedback-report part, the original carries ``X-HmXmrOriginalRecipient``."""
    original = _mime.original_headers(msg)
    return original is not None and _mime.header(original, LEGACY_JMRP_HEADER) is not None


def read_feedback_report(msg: Message, id_header: str = _mime.ID_HEADER) -> FeedbackReport:
    """The fields of the complaint report ``msg`` (missing ones None or empty; never raises)."""
    fields = _report_fields(msg) or Message()
    original = _mime.original_headers(msg)
    rcpt_to = _mime.headers(fields, 'Original-Rcpt-To')
    usable = tuple(dict.fromkeys(a for a in (_mime.address(value) for value in rcpt_to) if a is not None))
    redacted = tuple(value for value in rcpt_to if _mime.address(value) is None)
    mail_from = _mime.header(fields, 'Original-Mail-From')
    feedback_type = _mime.header(fields, 'Feedback-Type')
    head = original or Message()
    list_id = _mime.header(head, 'List-Id')
    list_match = _LIST_ID.search(list_id) if list_id else None
    dkim = [_DKIM_DOMAIN.search(value) for value in _mime.headers(head, 'DKIM-Signature')]
    return FeedbackReport(
        feedback_type=_mime.token(feedback_type),
        user_agent=_mime.header(fields, 'User-Agent'),
        version=_mime.header(fields, 'Version'),
        original_mail_from=_mime.mailbox(mail_from),
        original_rcpt_to=usable,
        redacted_rcpt_to=redacted,
        arrival=_mime.parse_date(_mime.header(fields, 'Arrival-Date') or _mime.header(fields, 'Received-Date')),
        source_ip=_mime.header(fields, 'Source-IP'),
        reported_domains=tuple(value.lower() for value in _mime.headers(fields, 'Reported-Domain')),
        has_report_part=bool(fields.keys()),
        has_original=original is not None,
        message_id=_mime.message_id(_mime.header(head, 'Message-ID')),
        dkim_domains=tuple(dict.fromkeys(m.group(1).lower().rstrip('.') for m in dkim if m is not None)),
        list_id=(list_match.group(1) if list_match else list_id),
        return_path=_mime.mailbox(mail_from) or _mime.mailbox(_mime.header(head, 'Return-Path')),
        id_header=_mime.header(head, id_header),
        legacy_recipient=_mime.address(_mime.header(head, LEGACY_JMRP_HEADER)),
        original_return_path=_mime.mailbox(_mime.header(head, 'Return-Path')),
    )


def parse_arf(
    msg: Message,
    source: str,
    *,
    decoders: _mime.Decoders | None = None,
    received: float | None = None,
    identity: str | None = None,
) -> list[Event]:
    """The complaint (or opt-out) events of report ``msg``: one per recipient found (see the module docstring).
    ``received``: the time when the report has no date; ``identity``: tells reports apart in event keys when the
    original has no Message-ID (default: the report's Message-ID, else a digest of its headers).
    EventError: no-feedback-report, truncated, not-a-complaint, too-many-recipients, no-date; :class:`NoRecipient`,
    :class:`UnconfirmedComplaint`."""
    decoders = decoders or _mime.Decoders()
    report = read_feedback_report(msg, decoders.id_header)
    if not report.has_report_part and report.legacy_recipient is None:
        raise EventError('no-feedback-report', f'{source}: no message/feedback-report part')
    _mime.refuse_cut(msg, source, ('message/feedback-report',))
    feedback_type = report.feedback_type or 'abuse'
    if feedback_type not in COMPLAINT_TYPES | UNSUBSCRIBE_TYPES:
        raise EventError('not-a-complaint', f'{source}: Feedback-Type {feedback_type!r} is not a complaint')
    problems: list[str] = []
    ident = _decoded(decoders.ident, report.id_header, 'id header', problems) or {}
    # Original-Mail-From first, then the original's Return-Path: a report may fill the first with something else
    # (the From address), and either can be the one of ours that verifies.
    sender: str | None = report.return_path
    verp: _mime.Decoded = {}
    for candidate in dict.fromkeys((report.return_path, report.original_return_path)):
        decoded = _decoded(decoders.verp, candidate, 'return path', problems)
        if decoded:
            sender, verp = candidate, decoded
            break
    ours = {name: ident.get(name) or verp.get(name) for name in _mime.DECODED_FIELDS}
    if len(report.original_rcpt_to) > _mime.MAX_RECIPIENTS:
        message = f'{source}: {len(report.original_rcpt_to)} Original-Rcpt-To fields, more than {_mime.MAX_RECIPIENTS}'
        raise EventError('too-many-recipients', message)
    signed = verp.get('recipient') or ident.get('recipient')
    recipients = [signed] if signed else list(report.original_rcpt_to)
    if not recipients and report.legacy_recipient:
        recipients = [report.legacy_recipient]
    when = _mime.parse_date(_mime.header(msg, 'Date')) or report.arrival or received
    if when is None:
        raise EventError('no-date', f'{source}: no Date header, no Arrival-Date and no arrival time given')
    if identity is None:
        own_id = _mime.message_id(_mime.header(msg, 'Message-ID'))
        identity = own_id or hashlib.sha256(str(msg.items()).encode('utf-8', 'surrogateescape')).hexdigest()
    unsubscribe = feedback_type in UNSUBSCRIBE_TYPES
    base = Event(
        key='',
        kind='unsubscribe' if unsubscribe else 'complaint',
        status='unsubscribe' if unsubscribe else 'complaint',
        time=when,
        recipient='',
        source=source,
        stream=ours['stream'],
        sending_ip=report.source_ip,
        sender=sender,
        message_id=report.message_id,
        segment=ours['segment'],
        campaign=ours['campaign'],
        feedback_type=feedback_type,
    )
    if not recipients:
        found = ', '.join(
            f'{name} {value!r}'
            for name, value in (
                ('Original-Rcpt-To', ' '.join(report.redacted_rcpt_to) or None),
                ('Message-ID', report.message_id),
                ('return path', report.return_path),
                (decoders.id_header, 'present' if report.id_header else None),
            )
            if value
        )
        detail = (f' (found: {found})' if found else '') + (f' ({"; ".join(problems)})' if problems else '')
        partial = base
        if not report.has_original:
            message = f'{source}: no original message and no recipient{detail}'
            raise NoRecipient('no-original-message', message, partial, report.id_header)
        message = f'{source}: no recipient in the report or in our own headers{detail}'
        raise NoRecipient('no-recipient', message, partial, report.id_header)
    found_events = [
        replace(base, key=complaint_key(base, recipient, identity), recipient=recipient) for recipient in recipients
    ]
    if not signed:
        message = f'{source}: the recipients are only named by the report: ingest confirms them with our data'
        raise UnconfirmedComplaint(message, found_events, report.id_header, verified=bool(verp))
    return found_events


def _decoded(decoder: _mime.Decoder | None, value: str | None, what: str, problems: list[str]) -> _mime.Decoded | None:
    """The decoded value, or None; a forged or expired one is noted in ``problems`` and ignored."""
    try:
        return _mime.decode(decoder, value)
    except ValueError as error:
        problems.append(f'the {what} does not verify: {error}')
        return None
