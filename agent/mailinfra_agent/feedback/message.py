"""One inbound feedback message (bounce MX pipe or Maildir) -> events: a DSN, a complaint or a mailto unsubscribe.

Dispatch:

1. larger than :data:`MAX_MESSAGE_BYTES` -> ``EventError('oversized')`` (checked before parsing); blank ->
   ``empty``; no header at all -> ``garbage``; MIME parts nested deeper than Python's recursion limit ->
   ``too-deep``;
2. ``report-type=delivery-status`` or a delivery-status part -> :func:`feedback.dsn.parse_dsn`;
3. ``report-type=feedback-report``, a feedback-report part, or a legacy Hotmail JMRP report ->
   :func:`feedback.arf.parse_arf`; another report type (read receipts, ...) -> ``unknown-format``;
4. an ordinary message whose envelope recipient, recipient address or Subject carries one of our signed
   unsubscribe tokens (RFC 8058 ``mailto:`` / RFC 2369) -> one ``unsubscribe`` event; a forged or expired token ->
   ``bad-token``; a message sent to an unsubscribe address without a token -> ``no-token``;
5. a message that looks like a bounce (a MAILER-DAEMON sender, a bounce subject, Exim's ``X-Failed-Recipients``) but
   has no delivery-status part: its ``X-Failed-Recipients`` with the reply the text gives each
   (:func:`feedback.dsn.read_failed_recipients`: Exim, Gmail, Mail.Ru) -> :func:`feedback.dsn.parse_dsn`, else
   ``no-delivery-status`` (``truncated`` when its MIME is cut off); else an automatic reply (RFC 3834
   ``Auto-Submitted``, ``X-Autoreply``, ``Precedence: auto_reply``, an out-of-office subject) -> ``auto-reply``
   (never a bounce); else one with the null sender -> ``no-delivery-status``; anything else -> ``unknown-format``.

A report part counts only outside attached messages: a DSN or ARF report forwarded inside a ``message/rfc822``
part is not this message's report (``feedback._mime.report_parts``).

Non-UTF-8 bytes never raise: header and body text is decoded as UTF-8 with U+FFFD replacement (an address that
then contains U+FFFD is no address). So there is no ``encoding`` error from here. Nothing is read from the
network and nothing is written. Standard library only.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Sequence
from email.message import Message
from email.utils import collapse_rfc2231_value

from mailinfra_agent.feedback import _mime, arf, dsn, tokens, verp
from mailinfra_agent.feedback._mime import ID_HEADER, MAX_MESSAGE_BYTES, Decoders
from mailinfra_agent.feedback.events import Event, EventError, event_key

__all__ = [
    'ID_HEADER',
    'MAX_MESSAGE_BYTES',
    'Decoders',
    'decoders_for',
    'parse_message',
    'parse_unsubscribe',
    'token_candidates',
]

_BOUNCE_SENDER = re.compile(r'^(?:mailer-daemon|postmaster|mail-daemon)@', re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r'undeliver|delivery (?:status|failure|has failed)|failure notice|returned mail|mail delivery failed'
    r'|non[- ]?delivery|could not be delivered|delivery notification',
    re.IGNORECASE,
)
_AUTO_REPLY_SUBJECT = re.compile(
    r'^(?:automatic reply|auto(?:matic)?[- ]?(?:reply|response)|auto:|out of (?:the )?office|abwesenheitsnotiz'
    r'|r[ée]ponse automatique|respuesta autom[áa]tica|vacation)',
    re.IGNORECASE,
)
_AUTO_REPLY_HEADERS = ('X-Autoreply', 'X-Autorespond', 'X-Autoreply-From')
_UNSUBSCRIBE = re.compile(r'unsub', re.IGNORECASE)
_SEPARATORS = '+-='


def decoders_for(
    keys: Sequence[bytes],
    token_max_age: float,
    *,
    verp_prefix: str | None = None,
    clock: Callable[[], float] = time.time,
) -> Decoders:
    """The decoders of ``feedback.verp`` and ``feedback.tokens`` bound to the signing keys (newest first; the
    contract's ``signing_key_file`` then ``old_signing_key_files``) and the unsubscribe token's maximum age."""
    return Decoders(
        verp=verp.decoder(keys, prefix=verp_prefix),
        token=tokens.token_decoder(keys, token_max_age, clock=clock),
        ident=lambda value: tokens.read_id(value, keys),
    )


def parse_message(
    data: bytes,
    source: str,
    envelope_recipient: str | None = None,
    *,
    decoders: Decoders | None = None,
    received: float | None = None,
) -> list[Event]:
    """The events of one inbound message, or EventError (reasons in the module docstring and in
    ``parse_dsn`` / ``parse_arf``). ``source``: ``maildir:<name>`` or ``pipe``; ``envelope_recipient``: the pipe
    transport's ``${recipient}`` (None: read from X-Original-To / Delivered-To / To); ``received``: the event time
    when the message carries no usable date (the Maildir file's mtime, or now for the pipe)."""
    try:
        return _dispatch(data, source, envelope_recipient, decoders or Decoders(), received)
    except RecursionError:  # the parser and walk() recurse once per nesting level
        raise EventError('too-deep', f'{source}: MIME parts nested too deeply to read') from None
    except EventError:
        raise
    except (LookupError, ValueError) as error:  # the standard library on RFC 2231 parameters (boundary*=idna''b)
        raise EventError('unknown-format', f'{source}: unreadable MIME parameters ({type(error).__name__})') from None


def _dispatch(
    data: bytes, source: str, envelope_recipient: str | None, decoders: Decoders, received: float | None
) -> list[Event]:
    msg = _mime.parse_bytes(data, source)
    if not msg.keys():
        raise EventError('garbage', f'{source}: no header lines (not an email message)')
    identity = _mime.message_id(_mime.header(msg, 'Message-ID')) or hashlib.sha256(data).hexdigest()
    content_type = msg.get_content_type()
    raw_type = msg.get_param('report-type', '') if content_type == 'multipart/report' else ''
    report_type = _mime.text(collapse_rfc2231_value(raw_type) if raw_type else '').strip().lower()
    types = {part.get_content_type() for part in _mime.report_parts(msg)}
    if report_type == 'delivery-status' or types & set(dsn.STATUS_PARTS):
        return dsn.parse_dsn(msg, source, envelope_recipient, decoders=decoders, received=received, identity=identity)
    if report_type == 'feedback-report' or 'message/feedback-report' in types or arf.is_legacy_jmrp(msg):
        return arf.parse_arf(msg, source, decoders=decoders, received=received, identity=identity)
    if report_type:
        raise EventError('unknown-format', f'{source}: a report of type {report_type!r}, neither a DSN nor ARF')
    unsubscribe = parse_unsubscribe(
        msg, source, envelope_recipient, decoders=decoders, received=received, identity=identity
    )
    if unsubscribe is not None:
        return unsubscribe
    sender = _mime.header(msg, 'Return-Path') or ''
    from_ = _mime.address(_mime.header(msg, 'From')) or ''
    failed = _mime.header(msg, dsn.FAILED_RECIPIENTS) is not None
    bounce = bool(failed or _BOUNCE_SENDER.match(from_) or _BOUNCE_SUBJECT.search(_subject(msg)))
    if not bounce and _auto_reply(msg):
        raise EventError('auto-reply', f'{source}: an automatic reply (out of office), not a bounce')
    if bounce or sender.strip() == '<>':
        if _mime.truncated(msg):
            raise EventError('truncated', f'{source}: a bounce whose MIME structure is cut off')
        blocks = dsn.read_failed_recipients(msg, source) if failed else []
        if blocks:
            return dsn.parse_dsn(
                msg, source, envelope_recipient, decoders=decoders, received=received, identity=identity, blocks=blocks
            )
        raise EventError(
            'no-delivery-status', f'{source}: a bounce without a message/delivery-status part (not RFC 3464)'
        )
    raise EventError('unknown-format', f'{source}: neither a DSN, a complaint report nor an unsubscribe request')


def _auto_reply(msg: Message) -> bool:
    """An automatic reply (RFC 3834 ``Auto-Submitted: auto-replied``, not ``auto-generated``; the common X- headers
    and ``Precedence``, or an out-of-office subject); bounces carry the RFC 3834 header too, so the caller asks
    only for messages that do not look like one."""
    auto = (_mime.header(msg, 'Auto-Submitted') or 'no').split(';')[0].strip().lower()
    precedence = (_mime.header(msg, 'Precedence') or '').strip().lower()
    return (
        auto == 'auto-replied'  # auto-generated is a notice (a text bounce, a blocked-message notice), not a reply
        or precedence == 'auto_reply'
        or any(_mime.header(msg, name) for name in _AUTO_REPLY_HEADERS)
        or _AUTO_REPLY_SUBJECT.match(_subject(msg).strip()) is not None
    )


def _subject(msg: Message) -> str:
    return _mime.decoded_header(msg, 'Subject') or ''


def token_candidates(msg: Message, envelope_recipient: str | None) -> list[str]:
    """Where a mailto unsubscribe may carry our token, in order: the envelope recipient's local part (whole and
    after a ``+``, ``-`` or ``=`` separator), the same for X-Original-To, Delivered-To and To, then the Subject
    (whole and word by word)."""
    found: list[str] = []
    for value in (envelope_recipient, *(_mime.header(msg, name) for name in ('X-Original-To', 'Delivered-To', 'To'))):
        mailbox = _mime.mailbox(value)
        if mailbox is None:
            continue
        local = mailbox.rsplit('@', 1)[0]
        found.append(local)
        for separator in _SEPARATORS:
            if separator in local:
                found.append(local.split(separator, 1)[1])
    subject = _subject(msg).strip()
    if subject:
        found.append(subject)
        found += subject.split()
    return list(dict.fromkeys(item for item in found if item))


def parse_unsubscribe(
    msg: Message,
    source: str,
    envelope_recipient: str | None = None,
    *,
    decoders: Decoders | None = None,
    received: float | None = None,
    identity: str | None = None,
) -> list[Event] | None:
    """The unsubscribe event of a ``mailto:`` unsubscribe message, or None when nothing in it is one of our tokens
    and it is not addressed to an unsubscribe address. The token decoder must give the recipient (and the stream);
    the From header is never trusted. EventError: bad-token (forged, expired), no-token (an unsubscribe address or
    subject without a valid token), no-date."""
    decoders = decoders or Decoders()
    candidates = token_candidates(msg, envelope_recipient)
    rejected: list[str] = []
    for candidate in candidates:
        try:
            decoded = _mime.decode(decoders.token, candidate)
        except ValueError as error:
            rejected.append(str(error))
            continue
        if decoded is None:
            continue
        recipient = decoded['recipient']
        if recipient is None:
            rejected.append('the token names no recipient')
            continue
        when = _mime.parse_date(_mime.header(msg, 'Date')) or received
        if when is None:
            raise EventError('no-date', f'{source}: no Date header and no arrival time given')
        own = identity or _mime.message_id(_mime.header(msg, 'Message-ID')) or candidate
        return [
            Event(
                key=event_key('unsubscribe', own, recipient, decoded['stream']),
                kind='unsubscribe',
                status='unsubscribe',
                time=when,
                recipient=recipient,
                source=source,
                stream=decoded['stream'],
                segment=decoded['segment'],
                campaign=decoded['campaign'],
            )
        ]
    if rejected:
        raise EventError('bad-token', f'{source}: the unsubscribe token does not verify: {rejected[0]}')
    if any(_UNSUBSCRIBE.search(candidate) for candidate in candidates):
        raise EventError('no-token', f'{source}: an unsubscribe request without one of our tokens')
    return None
