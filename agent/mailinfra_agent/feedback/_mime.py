"""What the DSN, ARF and unsubscribe parsers share: parsing bytes, reading headers safely, addresses, dates.

Messages are parsed with ``email.policy.compat32``. That policy never interprets a header value when it is read:
the value stays the raw text, so a malformed address, date or parameter cannot raise from deep inside the
header-registry parser (``email.policy.default`` parses lazily and has raised on malformed address headers).
Raw values keep undecodable bytes as surrogates; :func:`text` turns them into UTF-8 with U+FFFD replacement, so
non-UTF-8 input is read, never a crash. Parsing problems show up as ``defects``, never as exceptions.

The VERP and token decoders are callables the caller passes in (:class:`Decoders`), so the signing key stays
with the caller. Standard library, and ``idna`` (through :mod:`mailinfra_agent.names`) for a UTF-8 domain.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from email import errors, policy
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesParser, HeaderParser
from typing import Any

from mailinfra_agent.feedback.events import EventError
from mailinfra_agent.names import ascii_domain

__all__ = [
    'DECODED_FIELDS',
    'ID_HEADER',
    'MAX_MESSAGE_BYTES',
    'MAX_RECIPIENTS',
    'NOT_OURS',
    'REDACTED_LOCAL_PARTS',
    'Decoders',
    'address',
    'decode',
    'decoded_header',
    'decoded_report',
    'header',
    'header_block',
    'headers',
    'mailbox',
    'message_id',
    'original_headers',
    'parse_bytes',
    'parse_date',
    'part_text',
    'refuse_cut',
    'report_parts',
    'split_typed',
    'text',
    'token',
    'truncated',
    'typed_value',
]

MAX_MESSAGE_BYTES = 10 * 1024 * 1024
"""Messages larger than this are refused (``EventError('oversized')``) before they are parsed."""
ID_HEADER = 'X-Mailinfra-Id'
"""The header applications add to each message: stream, segment, campaign and a keyed recipient id
(``feedback.tokens.ID_HEADER``; repeated here because this module must not depend on that one)."""
DECODED_FIELDS = ('recipient', 'stream', 'segment', 'campaign')
"""What a VERP or token decoder may give back; missing fields are None."""
MAX_RECIPIENTS = 1000
"""Most recipients one report may name (DSN blocks, Original-Rcpt-To fields); more is refused
(``too-many-recipients``) rather than turned into that many suppressions."""
MAX_FIELD = 4096
"""Longest header value kept (a diagnostic longer than a few hundred characters is rare)."""

Decoded = dict[str, str | None]
Decoder = Callable[[str], object | None]


NOT_OURS = frozenset({'not-verp', 'malformed'})
"""Decoder error reasons that mean "not one of our values" (treated like None), not "forged"."""


@dataclass(frozen=True)
class Decoders:
    """How our own identifiers are read back; each decoder takes the string and returns the decoded value
    (attributes or mapping keys named as in :data:`DECODED_FIELDS`, missing ones None), None when the string is
    not one of ours, or raises ValueError when it is forged, damaged or expired (an error whose ``reason`` is in
    :data:`NOT_OURS` counts as None).

    ``verp``: return paths (``feedback.verp.decoder(keys)``); ``token``: mailto unsubscribe tokens
    (``feedback.tokens.token_decoder(keys, max_age)``); ``ident``: the value of header ``id_header`` in a
    complaint's original message (``lambda value: feedback.tokens.read_id(value, keys)``)."""

    verp: Decoder | None = None
    token: Decoder | None = None
    ident: Decoder | None = None
    id_header: str = ID_HEADER


def decode(decoder: Decoder | None, value: str | None) -> Decoded | None:
    """``value`` through ``decoder`` as a dict of :data:`DECODED_FIELDS`; None when either is missing or the value
    is not ours. A ValueError of the decoder (forged, expired) propagates."""
    if decoder is None or not value:
        return None
    try:
        decoded = decoder(value)
    except ValueError as error:
        if getattr(error, 'reason', None) in NOT_OURS:
            return None
        raise
    if decoded is None:
        return None
    out: Decoded = {}
    for name in DECODED_FIELDS:
        item: Any = decoded.get(name) if isinstance(decoded, Mapping) else getattr(decoded, name, None)
        out[name] = None if item is None or item == '' else str(item)
    if out['recipient'] is not None:
        out['recipient'] = address(out['recipient'])
    return out


def parse_bytes(data: bytes, source: str) -> Message:
    """The message in ``data``; EventError for an oversized or empty one. Broken MIME parses with defects."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise EventError('oversized', f'{source}: {len(data)} bytes, more than the limit of {MAX_MESSAGE_BYTES}')
    if not data.strip():
        raise EventError('empty', f'{source}: the message is empty')
    return BytesParser(policy=policy.compat32).parsebytes(data)


def text(value: object) -> str:
    """A raw header value as text: undecodable bytes become U+FFFD, folding is undone."""
    raw = value if isinstance(value, str) else str(value)
    raw = raw.encode('utf-8', 'surrogateescape').decode('utf-8', 'replace')
    return ' '.join(raw.split())[:MAX_FIELD]


def headers(msg: Message, name: str) -> list[str]:
    """Every non-empty value of header ``name``, in order. Read raw: ``get_all`` would give 8-bit values
    (UTF-8 addresses, RFC 6532) as ``Header`` objects whose text has lost every non-ASCII character."""
    wanted = name.lower()
    found = (text(value) for key, value in msg.raw_items() if key.lower() == wanted)
    return [value for value in found if value]


def header(msg: Message, name: str) -> str | None:
    """The first non-empty value of header ``name``, or None."""
    found = headers(msg, name)
    return found[0] if found else None


def decoded_header(msg: Message, name: str) -> str | None:
    """Header ``name`` with RFC 2047 encoded words decoded (for Subject); a broken encoding stays as it was."""
    value = header(msg, name)
    if value is None:
        return None
    try:
        return str(make_header(decode_header(value)))
    except (errors.HeaderParseError, LookupError, UnicodeError, ValueError):
        return value


REDACTED_LOCAL_PARTS = frozenset(
    {'redacted', 'anonymized', 'anonymised', 'removed', 'hidden', 'undisclosed-recipients'}
)
"""Local parts that stand for a removed address (``redacted@example.com``); like ``*`` masks and ``xxx`` (three
or more x), they are not an address."""
_TYPED = re.compile(r'\s*([A-Za-z][A-Za-z0-9-]*)\s*;\s*(.*)', re.DOTALL)
_ADDRESS = re.compile(r'[^\s@<>()\[\],;:"\ufffd]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?')
_UNICODE_ESCAPE = re.compile(r'\\x\{([0-9A-Fa-f]{1,6})\}')


def _unescape(value: str) -> str | None:
    """An RFC 6533 ``utf-8`` address with its ``\\x{HEX}`` escapes undone (None for a code point that is no
    character)."""
    points = [int(found.group(1), 16) for found in _UNICODE_ESCAPE.finditer(value)]
    if any(point > 0x10FFFF or 0xD800 <= point <= 0xDFFF or point < 0x20 for point in points):
        return None
    return _UNICODE_ESCAPE.sub(lambda found: chr(int(found.group(1), 16)), value)


def address(value: str | None, *, typed: bool = False) -> str | None:
    """The lower-cased mailbox in ``value`` (``a@b``, ``<a@b>``, ``Name <a@b>``, with ``typed``: ``rfc822; a@b`` or
    RFC 6533's ``utf-8; a@b``, or a value without any type, read as rfc822: McAfee writes ``<a@b>``), or None when
    there is none or it is redacted or malformed (no ``@``, a ``*``-masked or replaced character). The domain is
    :func:`~mailinfra_agent.names.ascii_domain`'s ASCII form (UTS 46: ``faß.de`` -> ``xn--fa-hia.de``, one trailing
    dot dropped), the form the suppression list keeps."""
    if not value:
        return None
    found = _TYPED.fullmatch(value) if typed else None
    if typed and found is None and ';' in value:
        return None
    if found is not None:
        if found.group(1).lower() not in ('rfc822', 'utf-8'):
            return None
        value = found.group(2)
        if found.group(1).lower() == 'utf-8':
            value = _unescape(value)
            if value is None:
                return None
    value = value.strip()
    if not (value.startswith('<') and value.endswith('>')) and ('<' in value or ' ' in value):
        try:
            value = email.utils.parseaddr(value)[1]
        except (ValueError, IndexError, TypeError):  # parseaddr is lenient; this is a guard, not an expected path
            return None
    # The domain is mapped as received (UTS 46 lower-cases it, but ``ẞ`` and a final ``Σ`` not as str.lower does).
    local, at, domain = value.strip().strip('<>').strip().rpartition('@')
    local = local.lower()
    mapped = ascii_domain(domain) if at else domain.lower()
    if mapped is None:
        return None
    value = f'{local}{at}{mapped}'
    if not _ADDRESS.fullmatch(value):
        return None
    if '*' in local or local in REDACTED_LOCAL_PARTS or (len(local) >= 3 and set(local) <= {'x', '.'}):
        return None
    return value


def mailbox(value: str | None) -> str | None:
    """The address in ``value`` (``a@b``, ``<a@b>``, ``Name <a@b>``) with its case kept (a VERP or token local
    part may be case-sensitive); None for the null path ``<>`` or when :func:`address` finds none."""
    if not value or address(value) is None:
        return None
    bare = value.strip()
    if '<' in bare:
        bare = bare[bare.rindex('<') + 1 :].split('>', 1)[0]
    return bare.strip()


_COMMENT = re.compile(r'\([^()]*\)')
_TOKEN = re.compile(r'[^\s;()]+')


def token(value: str | None) -> str | None:
    """The lower-cased first word of a field whose grammar allows comments (RFC 5322 CFWS):
    ``Failed (permanent)`` -> ``failed``, ``abuse(user clicked spam)`` -> ``abuse``; None when there is none."""
    if not value:
        return None
    while True:  # innermost comments first, so nested ones go too
        stripped = _COMMENT.sub(' ', value)
        if stripped == value:
            break
        value = stripped
    found = _TOKEN.search(value)
    return found.group(0).lower() if found else None


def typed_value(value: str | None) -> str | None:
    """The value of a typed field (``dns; mx.example.net`` -> ``mx.example.net``), or the value as it is."""
    if value is None:
        return None
    found = _TYPED.fullmatch(value)
    return (found.group(2).strip() if found else value.strip()) or None


def split_typed(value: str | None) -> tuple[str | None, str | None]:
    """``smtp; 550 5.1.1 ...`` -> (``smtp``, ``550 5.1.1 ...``); an untyped value -> (None, value)."""
    if value is None:
        return None, None
    found = _TYPED.fullmatch(value)
    if found is None:
        return None, value.strip() or None
    return found.group(1).lower(), found.group(2).strip() or None


def message_id(value: str | None) -> str | None:
    """A Message-ID without its angle brackets (``<a@b>`` -> ``a@b``), or None."""
    if not value:
        return None
    found = re.search(r'<([^<>\s]+)>', value)
    bare = found.group(1) if found else value.strip().split()[0]
    return bare or None


def parse_date(value: str | None) -> float | None:
    """An RFC 5322 date as POSIX seconds; None when missing or unreadable (a zoneless date is taken as UTC)."""
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_tz(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed is None:
        return None
    try:
        return float(email.utils.mktime_tz(parsed))
    except (OverflowError, ValueError):
        return None


def part_text(part: Message) -> str:
    """A leaf part's body as text (transfer encoding undone, UTF-8 with replacement, whatever the charset says)."""
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        try:
            return payload.decode(part.get_content_charset() or 'utf-8', 'replace')
        except (LookupError, ValueError):  # unknown; a codec without 'replace' (idna: UnicodeError); a NUL in the name
            return payload.decode('utf-8', 'replace')
    raw = part.get_payload()
    return raw if isinstance(raw, str) else ''


def header_block(content: str) -> Message:
    """A block of ``Name: value`` lines (a feedback report, a header-only original) as a header-only message."""
    return HeaderParser(policy=policy.compat32).parsestr(content.lstrip('\r\n'), headersonly=True)


def report_parts(msg: Message) -> Iterator[Message]:
    """The parts of ``msg`` in :meth:`Message.walk` order, without the parts inside an attached message
    (``message/rfc822`` or ``message/global``, which are yielded themselves): a report part in there belongs to
    another message (a forwarded bounce), not to this one."""
    stack = [msg]
    while stack:
        part = stack.pop()
        yield part
        payload = part.get_payload()
        if isinstance(payload, list) and (part is msg or part.get_content_maintype() != 'message'):
            stack.extend(item for item in reversed(payload) if isinstance(item, Message))


TRANSFER_ENCODINGS = frozenset({'base64', 'quoted-printable'})
"""Transfer encodings some MTAs put on ``message/*`` parts (RFC 6532/6533 allow them on the global types)."""


def _source(part: Message) -> str:
    """The text a ``message/*`` part was parsed from, as near as the parsed pieces give it back."""
    payload = part.get_payload()
    if isinstance(payload, str):
        return payload
    chunks: list[str] = []
    for item in payload if isinstance(payload, list) else []:
        if not isinstance(item, Message):
            continue
        body = item.get_payload()
        if not isinstance(body, str):
            chunks.append(item.as_string())
            continue
        head = ''.join(f'{name}: {value}\n' for name, value in item.raw_items())
        cut = any(isinstance(defect, errors.MissingHeaderBodySeparatorDefect) for defect in item.defects)
        chunks.append(head + ('' if cut or not head else '\n') + body)
    return '\n'.join(chunks)


def decoded_report(part: Message) -> bytes | None:
    """The decoded content of a ``message/*`` part sent in base64 or quoted-printable, or None when it is not
    encoded (the parser then read it as it is; an encoded one it read as the encoded text)."""
    encoding = text(part.get('Content-Transfer-Encoding', '')).lower()
    if encoding not in TRANSFER_ENCODINGS or part.get_content_maintype() != 'message':
        return None
    holder = Message()
    holder['Content-Transfer-Encoding'] = encoding
    holder.set_payload(_source(part))
    decoded = holder.get_payload(decode=True)
    return decoded if isinstance(decoded, bytes) else None


def original_headers(msg: Message) -> Message | None:
    """The headers of the returned/reported message: the ``message/rfc822`` part (or ``message/global``,
    RFC 6532) or the ``text/rfc822-headers`` part (``message/global-headers``, RFC 6533); None when there is
    neither (or it is empty). A transfer encoding on the message part is undone."""
    for part in report_parts(msg):
        content_type = part.get_content_type()
        if part is msg:
            continue
        if content_type in ('message/rfc822', 'message/global', 'message/global-headers'):
            decoded = decoded_report(part)
            if decoded is not None:
                inner = BytesParser(policy=policy.compat32).parsebytes(decoded, headersonly=True)
                return inner if inner.keys() else None
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                found: Message = payload[0]
                return found if found.keys() else None
            if isinstance(payload, str) and payload.strip():
                block = header_block(payload)
                return block if block.keys() else None
        if content_type in ('text/rfc822-headers', 'text/rfc822-header'):
            block = header_block(part_text(part))
            return block if block.keys() else None
    return None


_CUT = (errors.CloseBoundaryNotFoundDefect, errors.StartBoundaryNotFoundDefect)


def truncated(msg: Message) -> bool:
    """Whether the MIME structure looks cut off (a multipart without its closing boundary, and the like)."""
    return any(isinstance(defect, _CUT) for part in msg.walk() for defect in part.defects)


def refuse_cut(msg: Message, source: str, content_types: tuple[str, ...]) -> None:
    """EventError('truncated') when the message is cut off inside (or right after) its report part, one of
    ``content_types``: the last block could be incomplete (a recipient address cut short is still an address).
    A message cut off later, in the returned original, is fine."""
    if not truncated(msg):
        return
    for part in msg.walk():
        payload = part.get_payload() if part.is_multipart() else None
        last = payload[-1] if isinstance(payload, list) and payload else None
        if isinstance(last, Message) and last.get_content_type() in content_types:
            raise EventError('truncated', f'{source}: the message is cut off in its {content_types[0]} part')
