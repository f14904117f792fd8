"""Delivery status notifications (RFC 3464) -> one :class:`Event` per recipient.

A DSN is ``multipart/report; report-type=delivery-status`` with a ``message/delivery-status`` part: a block of
per-message fields (``Reporting-MTA``, ``Arrival-Date``, ``Original-Envelope-Id``, Postfix's
``X-Postfix-Queue-ID``) and one block per recipient (``Final-Recipient``, ``Original-Recipient``, ``Action``,
``Status``, ``Remote-MTA``, ``Diagnostic-Code``, ``Last-Attempt-Date``). The returned message (``message/rfc822``)
or its headers (``text/rfc822-headers``) give the original Message-ID.

Action -> status: failed -> ``bounced``, delayed -> ``deferred``, delivered/relayed/expanded -> ``sent``. A block
without Action takes it from the class of its Status (5 failed, 4 delayed, 2 delivered). The recipient is the one
our VERP return path encodes when it verifies and carries one (a DSN's own fields could name anybody), else the
Original-Recipient (the address we sent to), else the Final-Recipient. When our return path verifies but carries no
recipient (it did not fit), the blocks' recipients are only claims: :class:`UnconfirmedRecipients` is raised with
their events, and ingest keeps those the store confirms (a delivery from this return path to that recipient).
The DSN's own envelope recipient is our return path (``sender`` of the event): the caller passes it (the pipe
transport's ``${recipient}``), else it is read from X-Original-To, Delivered-To, the Postfix ``X-Postfix-Sender``
field, or To.

A text bounce without a delivery-status part gives its recipients only through Exim's ``X-Failed-Recipients``
header (Exim, Gmail, Mail.Ru: :func:`read_failed_recipients`); without it (old qmail, Exchange) it is
``EventError('no-delivery-status')``: recipients are never guessed from free text. A cut-off DSN is ``truncated``;
blocks that give no recipient or no known action are skipped, and a report with none left is
``bad-delivery-status``. Only a block without Diagnostic-Code takes its reply from the human-readable part, from a
line that starts with the block's recipient (``a@b: 550 5.1.1 ...``, ``<a@b>... Deferred: ...``) and the lines
indented deeper after it: OpenSMTPD writes its replies only there (:func:`text_replies`, one pass for all blocks).
That text stops where a copy of the returned message starts: a line in there is not the server's.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import Message
from email.utils import getaddresses
from typing import Literal

from mailinfra_agent.feedback import _mime
from mailinfra_agent.feedback.arf import NoRecipient
from mailinfra_agent.feedback.classify import MAX_TEXT, enhanced_problem, parse_codes
from mailinfra_agent.feedback.events import Event, EventError, event_key

__all__ = [
    'ACTION_STATUS',
    'FAILED_RECIPIENTS',
    'STATUS_PARTS',
    'RecipientStatus',
    'UnconfirmedRecipients',
    'parse_dsn',
    'read_delivery_status',
    'read_failed_recipients',
    'return_path',
    'text_replies',
    'text_reply',
]

ACTION_STATUS: dict[str, Literal['bounced', 'deferred', 'sent']] = {
    'failed': 'bounced',
    'delayed': 'deferred',
    'delivered': 'sent',
    'relayed': 'sent',
    'expanded': 'sent',
}
"""RFC 3464 Action -> event status (``expanded``: delivered to a list address that forwarded it on)."""
STATUS_PARTS = ('message/delivery-status', 'message/global-delivery-status')
"""Content types of the machine-readable part (``global``: RFC 6533, internationalised)."""
_ACTION_BY_CLASS = {'5': 'failed', '4': 'delayed', '2': 'delivered'}


@dataclass(frozen=True)
class RecipientStatus:
    """One per-recipient block, with the per-message fields that apply to it."""

    recipient: str | None
    final_recipient: str | None
    original_recipient: str | None
    action: str | None
    status: str | None
    remote_mta: str | None
    diagnostic_type: str | None
    diagnostic: str | None
    last_attempt: float | None
    reporting_mta: str | None
    arrival: float | None
    envelope_id: str | None
    queue_id: str | None
    original_sender: str | None


_PER_MESSAGE_FIELDS = frozenset(
    {
        'reporting-mta',
        'dsn-gateway',
        'received-from-mta',
        'arrival-date',
        'original-envelope-id',
        'x-postfix-queue-id',
        'x-postfix-sender',
    }
)


_RECIPIENT_FIELDS = ('Final-Recipient', 'Original-Recipient', 'Action', 'Status')
"""A block with one of these is a recipient's, not the per-message block."""
_OUTCOME_FIELDS = frozenset({'action', 'status'})
"""A recipient's block is complete enough to end once it has one of these."""


def _split(block: Message) -> list[Message]:
    """``block`` cut where another recipient's fields start: some MTAs separate blocks with a line of spaces, which
    the parser reads as a folded field, so two recipients (or the per-message fields and the first recipient) end
    up in one block. A block starts at an Original- or Final-Recipient the current one already has once the
    current one has its Action or Status (before that, a second Final-Recipient is another name of the same
    recipient), or when the current one holds only per-message fields. Field order varies (Postfix writes Final-
    before Original-Recipient, Sendmail the other way, Exim Action first), so the fields at the current block's end
    that belong to the next recipient (:func:`_leads`) move to the new block."""
    chunks: list[list[tuple[str, str]]] = [[]]
    seen: set[str] = set()  # the field names of the last chunk
    for name, value in block.raw_items():
        key = name.lower()
        if key in ('original-recipient', 'final-recipient') and (
            (key in seen and bool(seen & _OUTCOME_FIELDS)) or (bool(seen) and seen <= _PER_MESSAGE_FIELDS)
        ):
            current = chunks[-1]
            moved: list[tuple[str, str]] = []
            while len(current) > 1 and _leads(current[-1][0].lower(), key, current[:-1]):
                moved.insert(0, current.pop())
            chunks.append(moved)
            seen = {field.lower() for field, _ in moved}
        chunks[-1].append((name, value))
        seen.add(key)
    if len(chunks) == 1:
        return [block]
    split: list[Message] = []
    for chunk in chunks:
        piece = Message()
        for name, value in chunk:
            piece[name] = value
        split.append(piece)
    return split


def _leads(field: str, starts: str, before: list[tuple[str, str]]) -> bool:
    """Whether ``field``, at the end of a block that ends where a ``starts`` field begins the next, belongs to the
    next: an Original-Recipient just before a Final-Recipient, or a field the block already has."""
    return (field == 'original-recipient' and starts == 'final-recipient') or any(
        name.lower() == field for name, _ in before
    )


def _blocks(part: Message) -> list[Message]:
    """The header blocks of a delivery-status part (each cut by :func:`_split`)."""
    return [piece for block in _parsed_blocks(part) for piece in _split(block)]


def _parsed_blocks(part: Message) -> list[Message]:
    """The header blocks of a delivery-status part, however the parser left it: ``message/delivery-status`` comes
    split into blocks; another ``message/*`` type (RFC 6533's global one) as one message whose headers are the
    first block and whose body holds the rest; a non-message type as text; one in base64 or quoted-printable
    (RFC 6533 allows it on the global type, and some MTAs send it on both) decoded first."""
    decoded = _mime.decoded_report(part)
    payload = part.get_payload()
    if decoded is not None:
        blocks, content = [], decoded.decode('utf-8', 'replace')
    elif isinstance(payload, list) and part.get_content_type() == 'message/delivery-status':
        return [_unfolded(block) for block in payload if isinstance(block, Message) and block.keys()]
    elif isinstance(payload, list):
        first = payload[0] if payload and isinstance(payload[0], Message) else Message()
        rest = first.get_payload(decode=True)  # bytes as received: the text form would lose UTF-8 (RFC 6533)
        blocks = [first] if first.keys() else []
        content = rest.decode('utf-8', 'replace') if isinstance(rest, bytes) else ''
    else:
        blocks, content = [], _mime.part_text(part)
    chunks = content.replace('\r\n', '\n').split('\n\n')
    return blocks + [_unfolded(block) for block in (_mime.header_block(chunk) for chunk in chunks) if block.keys()]


_FIELD_NAME = re.compile(r'[A-Za-z][A-Za-z0-9-]*')


def _unfolded(block: Message) -> Message:
    """``block`` with the lines the parser left in its body read back as fields: a line that is not ``Name: value``
    ends a header, but MessageLabs continues a multi-line Diagnostic-Code without folding it (``550-...`` lines),
    and its Status, Action and Final-Recipient come after. A ``Name: value`` line is a field, another line continues
    the field before it."""
    body = block.get_payload()
    if not isinstance(body, str) or not body.strip():
        return block
    fields = [[name, value] for name, value in block.raw_items()]
    for line in body.replace('\r\n', '\n').split('\n'):
        name, colon, value = line.partition(':')
        if colon and _FIELD_NAME.fullmatch(name):
            fields.append([name, value.strip()])
        elif line.strip() and fields:
            fields[-1][1] = f'{fields[-1][1].rstrip()} {line.strip()}'
    repaired = Message()
    for name, value in fields:
        repaired[name] = value
    return repaired


def read_delivery_status(msg: Message, source: str) -> list[RecipientStatus]:
    """The per-recipient blocks of the DSN ``msg``; EventError when it has no delivery-status part or no block."""
    part = next((p for p in _mime.report_parts(msg) if p.get_content_type() in STATUS_PARTS), None)
    if part is None:
        if _mime.truncated(msg):
            raise EventError('truncated', f'{source}: the message is cut off before its delivery-status part')
        raise EventError('no-delivery-status', f'{source}: no message/delivery-status part (not an RFC 3464 DSN)')
    _mime.refuse_cut(msg, source, STATUS_PARTS)
    blocks = _blocks(part)
    if blocks and not any(_mime.header(blocks[0], name) for name in _RECIPIENT_FIELDS):
        per_message, per_recipient = blocks[0], blocks[1:]
    else:  # some MTAs leave out the per-message block (McAfee: Original-Recipient and Action only)
        per_message, per_recipient = Message(), blocks
    reporting_mta = _mime.typed_value(_mime.header(per_message, 'Reporting-MTA'))
    arrival = _mime.parse_date(_mime.header(per_message, 'Arrival-Date'))
    envelope_id = _mime.header(per_message, 'Original-Envelope-Id')
    queue_id = _mime.header(per_message, 'X-Postfix-Queue-ID')
    original_sender = _mime.mailbox(_mime.typed_value(_mime.header(per_message, 'X-Postfix-Sender')))
    if len(per_recipient) > _mime.MAX_RECIPIENTS:
        message = f'{source}: {len(per_recipient)} recipient blocks, more than {_mime.MAX_RECIPIENTS}'
        raise EventError('too-many-recipients', message)
    found: list[RecipientStatus] = []
    replies: _Replies | None = None  # read once, when the first block without Diagnostic-Code needs it
    for block in per_recipient:
        final = _mime.address(_mime.header(block, 'Final-Recipient'), typed=True)
        original = _mime.address(_mime.header(block, 'Original-Recipient'), typed=True)
        diagnostic = _mime.header(block, 'Diagnostic-Code')
        diagnostic_type, diagnostic = _mime.split_typed(diagnostic)
        if not diagnostic:
            replies = text_replies(_human_readable(msg)) if replies is None else replies
            diagnostic = _reply_of(replies, [address for address in (final, original) if address])
        action = _mime.token(_mime.header(block, 'Action'))
        found.append(
            RecipientStatus(
                recipient=original or final,
                final_recipient=final,
                original_recipient=original,
                action=action,
                status=_mime.header(block, 'Status'),
                remote_mta=_mime.typed_value(_mime.header(block, 'Remote-MTA')),
                diagnostic_type=diagnostic_type.lower() if diagnostic_type else None,
                diagnostic=(diagnostic or None) and diagnostic[:MAX_TEXT],
                last_attempt=_mime.parse_date(_mime.header(block, 'Last-Attempt-Date')),
                reporting_mta=reporting_mta,
                arrival=arrival,
                envelope_id=envelope_id,
                queue_id=queue_id,
                original_sender=original_sender,
            )
        )
    if not found:
        reason = 'truncated' if _mime.truncated(msg) else 'bad-delivery-status'
        raise EventError(reason, f'{source}: the delivery-status part has no per-recipient block')
    return found


FAILED_RECIPIENTS = 'X-Failed-Recipients'
"""Exim's header naming a text bounce's failed recipients (Exim, Gmail, Google Groups, Mail.Ru send it)."""


def read_failed_recipients(msg: Message, source: str) -> list[RecipientStatus]:
    """The failed recipients of a text bounce without a delivery-status part, from its ``X-Failed-Recipients``
    header, each with the reply its text gives (Gmail's sentence, else :func:`text_replies`; None when it gives
    none: then the event has no category and suppresses nothing); [] when the header names no usable address."""
    values: list[str] = []
    for field in _mime.headers(msg, FAILED_RECIPIENTS):
        addresses = [address for _, address in getaddresses([field])]
        # a field cut at MAX_FIELD ends inside an address (u350@x for u350@x.org): its last one is not read
        values += addresses[:-1] if len(field) >= _mime.MAX_FIELD else addresses
    recipients = list(dict.fromkeys(found for found in map(_mime.address, values) if found is not None))
    if len(recipients) > _mime.MAX_RECIPIENTS:
        message = f'{source}: {len(recipients)} failed recipients, more than {_mime.MAX_RECIPIENTS}'
        raise EventError('too-many-recipients', message)
    readable = _human_readable(msg) if recipients else ''
    # Gmail's own sentence first: a line that starts with the address could be anybody's text
    only = _returned_reply(readable) if len(recipients) == 1 else None
    replies = text_replies(readable) if only is None else {}
    return [
        RecipientStatus(
            recipient=recipient,
            final_recipient=recipient,
            original_recipient=None,
            action='failed',
            status=None,
            remote_mta=None,
            diagnostic_type=None,
            diagnostic=only or _reply_of(replies, [recipient]),
            last_attempt=None,
            reporting_mta=None,
            arrival=None,
            envelope_id=None,
            queue_id=None,
            original_sender=None,
        )
        for recipient in recipients
    ]


_RETURNED = re.compile(r'The error that the other server returned was:\s*(.+?)(?:\n\s*\n|$)', re.DOTALL)
"""Gmail's text bounce: the remote reply after this sentence, up to a blank line."""


def _returned_reply(text: str) -> str | None:
    found = _RETURNED.search(text.replace('\r\n', '\n'))
    if found is None:
        return None
    return ' '.join(found.group(1).split())[:MAX_TEXT] or None


MAX_READABLE = 65536
"""Characters of the human-readable part searched for a recipient's reply."""
_COPY_MARKER = re.compile(
    r'^[ \t]*(?:-{2,}[ \t]*(?:original message|(?:this|below this line|enclosed) is a copy of (?:the|your) message'
    r'|the header of the original message|returned message|undelivered message)'
    r'|original message headers:|content-type:[ \t]*(?:message/rfc822|text/rfc822-headers))',
    re.IGNORECASE | re.MULTILINE,
)
"""Where a text bounce's copy of the returned message starts (Gmail ``----- Original message -----``; Exim and
Mail.Ru ``------ This is a copy of the message, including all the headers. ------``; qmail ``--- Below this line
is a copy of the message.``; Exchange ``Original message headers:``): that text is ours, or whoever wrote the
message, never the reporting server's."""


def _human_readable(msg: Message) -> str:
    """The report's human-readable text: its first ``text/plain`` part outside attached messages (RFC 6522 puts the
    human-readable part first), cut to :data:`MAX_READABLE` characters and before a copy of the returned message
    (:data:`_COPY_MARKER`); ``''`` when there is none."""
    part = next((p for p in _mime.report_parts(msg) if p.get_content_type() == 'text/plain'), None)
    text = _mime.part_text(part)[:MAX_READABLE].replace('\r\n', '\n') if part is not None else ''
    copy = _COPY_MARKER.search(text)
    return text[: copy.start()] if copy is not None else text


_Replies = dict[str, tuple[int, str]]
_LEADING_ADDRESS = re.compile(r'<?([^\s<>:]+@[^\s<>:]+?)>?(?=:|\.\.\.|$)')
"""A line that starts with an address (``<>`` optional) followed by ``:``, ``...`` or nothing."""


def text_replies(text: str) -> _Replies:
    """The replies a human-readable ``text`` gives, by lower-cased address, with the number of the line each starts
    on: a line that starts with the address (``<>`` optional) followed by ``:``, ``...`` or nothing, with the rest
    of that line and the lines after it that are indented deeper, on one line (Exim: ``  a@b:`` then the reply
    indented by four); the first line that gives an address a non-empty reply. One pass over the text."""
    lines = text.replace('\r\n', '\n').split('\n')
    replies: _Replies = {}
    for index, line in enumerate(lines):
        head = line.strip()
        found = _LEADING_ADDRESS.match(head)
        if found is None or found.group(1).lower() in replies:
            continue
        indent = len(line) - len(line.lstrip())
        rest = head[found.end() :]
        reply = [rest[3:] if rest.startswith('...') else rest[1:]]
        size, after = len(reply[0]), index + 1
        # up to MAX_TEXT characters: the rules see no more, and a long indented run is not read again for each
        # address in it
        while size < MAX_TEXT and after < len(lines):
            more = lines[after]
            if not more.strip() or len(more) - len(more.lstrip()) <= indent:
                break
            reply.append(more)
            size, after = size + len(more.strip()) + 1, after + 1
        joined = ' '.join(part.strip() for part in reply if part.strip())
        if joined:
            replies[found.group(1).lower()] = (index, joined[:MAX_TEXT])
    return replies


def _reply_of(replies: _Replies, recipients: list[str]) -> str | None:
    """The reply of whichever of ``recipients`` comes first in the text, None when none has one."""
    found = [replies[recipient] for recipient in recipients if recipient in replies]
    return min(found)[1] if found else None


def text_reply(text: str, recipients: list[str]) -> str | None:
    """The reply ``text`` gives for one of ``recipients`` (lower-cased addresses; :func:`text_replies`), or None."""
    return _reply_of(text_replies(text), recipients)


def return_path(msg: Message, envelope_recipient: str | None, fallbacks: Iterable[str | None] = ()) -> str | None:
    """Where the report was sent (our return path): the given envelope recipient, else X-Original-To,
    Delivered-To, the ``fallbacks``, To. Not lower-cased: a VERP local part may be case-sensitive."""
    candidates = [envelope_recipient, _mime.header(msg, 'X-Original-To'), _mime.header(msg, 'Delivered-To')]
    candidates += [*fallbacks, _mime.header(msg, 'To')]
    return next((found for found in map(_mime.mailbox, candidates) if found is not None), None)


def _enhanced(status: str | None) -> str | None:
    if status is None:
        return None
    code = _mime.token(status) or ''
    return code if enhanced_problem(code) is None and code[0] in '245' else None


def parse_dsn(
    msg: Message,
    source: str,
    envelope_recipient: str | None = None,
    *,
    decoders: _mime.Decoders | None = None,
    received: float | None = None,
    identity: str | None = None,
    blocks: list[RecipientStatus] | None = None,
) -> list[Event]:
    """The events of the DSN ``msg``. ``received`` is the time used when the DSN carries none; ``identity``
    tells reports apart in the event keys (default: the DSN's Message-ID, else a digest of its headers);
    ``blocks``: the recipients already read (a text bounce's, :func:`read_failed_recipients`), else the
    delivery-status part's. EventError: no-delivery-status, truncated, bad-delivery-status, too-many-recipients,
    bad-verp (a return path that claims to be ours but does not verify), no-date; :class:`UnconfirmedRecipients`."""
    decoders = decoders or _mime.Decoders()
    blocks = read_delivery_status(msg, source) if blocks is None else blocks
    sender = return_path(msg, envelope_recipient, [blocks[0].original_sender])
    try:
        verp = _mime.decode(decoders.verp, sender) or {}
    except ValueError as error:
        raise EventError('bad-verp', f'{source}: return path {sender!r} does not verify: {error}') from None
    original = _mime.original_headers(msg)
    original_id = _mime.message_id(_mime.header(original, 'Message-ID')) if original is not None else None
    report_time = _mime.parse_date(_mime.header(msg, 'Date'))
    if identity is None:
        own_id = _mime.message_id(_mime.header(msg, 'Message-ID'))
        identity = own_id or hashlib.sha256(str(msg.items()).encode('utf-8', 'surrogateescape')).hexdigest()
    events: list[Event] = []
    for block in blocks:
        recipient = verp.get('recipient') or block.recipient
        enhanced = _enhanced(block.status)
        action = block.action or (_ACTION_BY_CLASS.get(enhanced[0]) if enhanced else None)
        key = _key(identity, recipient or '', action or '', enhanced)
        if recipient is None or action not in ACTION_STATUS or any(event.key == key for event in events):
            continue  # no recipient, an unknown action, or the same as a block before (the VERP's recipient)
        when = block.last_attempt or report_time or received
        if when is None:
            raise EventError('no-date', f'{source}: no Last-Attempt-Date, no Date header and no arrival time given')
        code, text_enhanced = parse_codes(block.diagnostic or '')
        delay = when - block.arrival if block.arrival is not None and when >= block.arrival else None
        events.append(
            Event(
                key=key,
                kind='dsn',
                status=ACTION_STATUS[action],
                time=when,
                recipient=recipient,
                source=source,
                stream=verp.get('stream'),
                queue_id=block.queue_id,
                sender=sender,
                smtp_code=code if block.diagnostic_type in (None, 'smtp') else None,
                dsn=_precise(enhanced, text_enhanced),
                diagnostic=block.diagnostic,
                relay=block.remote_mta,
                delay=delay,
                message_id=original_id,
                segment=verp.get('segment'),
                campaign=verp.get('campaign'),
            )
        )
    if not events:
        raise EventError(
            'bad-delivery-status', f'{source}: no per-recipient block has a recipient and a known Action or Status'
        )
    if verp and not verp.get('recipient'):
        message = f"{source}: our return path {sender!r} names no recipient: the report's recipients need the store"
        raise UnconfirmedRecipients(message, events)
    return events


class UnconfirmedRecipients(NoRecipient):
    """A DSN to a verified return path of ours that carries no recipient (reason ``unconfirmed-recipient``).

    ``events``: one per block, the recipient as the DSN names it; ingest stores only those whose recipient the
    store shows a delivery to from this return path (``sender``), else counts ``recipient-not-ours``: anybody who
    received one valid return path could otherwise suppress any address with it."""

    def __init__(self, message: str, events: list[Event]) -> None:
        super().__init__('unconfirmed-recipient', message, events[0], None)
        self.events = events


def _precise(status: str | None, text: str | None) -> str | None:
    """The Status field's code, or the diagnostic's when there is no Status or it gives only its class (``5.0.0``:
    OpenSMTPD, Courier, Amazon SES) and the diagnostic's (``550 5.1.1 ...``) is of the same class."""
    if status is None or (text is not None and status.endswith('.0.0') and text[0] == status[0]):
        return text
    return status


def _key(identity: str, recipient: str, action: str, status: str | None) -> str:
    return event_key('dsn', identity, recipient, action, status)
