"""Signed identifiers applications put on their mail: the one-click unsubscribe token and the ``X-Mailinfra-Id`` header.

Unsubscribe token (RFC 8058)
    Carries the recipient, the stream, the optional list segment and the time it was made, with a 128-bit
    HMAC-SHA256 tag, as URL-safe base64 without padding. The endpoint needs nothing but the key to act on it,
    so an unsubscribe works even when the store never saw the message. It is signed, not encrypted: whoever sees
    the link (the recipient, their mailbox provider, anyone they forward the mail to) can read the address, which
    the same people already see in the message; the endpoint must not log tokens. Tokens expire after
    ``max_age`` (the spec's ``unsubscribe.token_max_age``; the US CAN-SPAM Act wants a link to keep working for at
    least 30 days after sending, so keep it well above that). ``mailto:`` unsubscribes carry the same token in
    their subject (``unsubscribe <token>``): the token, not the forgeable From: address, says who leaves.

``X-Mailinfra-Id`` header
    Matches complaints whose recipient the provider removed (Microsoft JMRP redacts it). It carries the stream,
    segment and campaign in clear and, for the recipient, only a keyed id: HMAC-SHA256 of the lower-cased address,
    96 bits, never the address itself. Decision and reasons:

    - The header travels with the message: the provider reads it and sends it back in every complaint report,
      and it goes wherever the recipient forwards the mail. JMRP redacts recipients on purpose; putting the
      address back in a header would undo that.
    - The standard library has no authenticated encryption (no AES), and we do not build our own cipher.
    - The store already knows the recipients: ingest takes the delivery events of the complaint's Message-ID or
      VERP message and keeps the one whose address :meth:`MailinfraId.matches` (it also tells apart the
      recipients of one Message-ID sent to several people). Stream and segment need no store.

    The id is deterministic per key, so two messages to the same recipient carry the same id; only the key
    holder can link it to an address (no dictionary attack without the key).

Reasons of :class:`TokenError`: ``malformed``, ``forged`` (no key gives this tag), ``expired``, ``future`` (made
more than ``max_skew`` seconds ahead of ``now``: a clock is wrong). Standard library only.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .events import EventError
from .signing import FieldError, b32_decode, b32_encode, check_keys, mac, pack_field, unpack_fields, verify

__all__ = [
    'ID_HEADER',
    'MAILTO_SUBJECT_PREFIX',
    'MailinfraId',
    'TokenError',
    'UnsubscribeToken',
    'make_id',
    'make_token',
    'read_id',
    'recipient_id',
    'token_decoder',
    'token_from_subject',
    'verify_token',
]

ID_HEADER = 'X-Mailinfra-Id'
"""Header applications (or the stream instances) add to every message: see :func:`make_id`."""
MAILTO_SUBJECT_PREFIX = 'unsubscribe '
"""Subject of a ``mailto:`` unsubscribe: this text followed by the token."""
TOKEN_MAC_BYTES = 16
"""128-bit tags: tokens have no length limit worth saving octets for."""
ID_MAC_BYTES = 16
RECIPIENT_ID_BYTES = 12
"""96 bits: no two of even billions of addresses share an id (birthday bound ~2^48)."""
ID_WORD = 48
"""Characters per space-separated word of the header value."""
MAX_ADDRESS = 254
MAX_NAME = 63
"""Longest stream, segment or campaign (UTF-8 octets): keeps every header line far below 998 characters."""
VERSION = 1

_TOKEN_LABEL = b'mailinfra-unsubscribe-v1'
_ID_LABEL = b'mailinfra-id-v1'
_RECIPIENT_LABEL = b'mailinfra-recipient-v1'
_TOKEN_RE = re.compile(r'[A-Za-z0-9_-]+')
_CONTROL = re.compile(r'[\x00-\x1f\x7f-\x9f\u2028\u2029]')
"""Control characters (C0, DEL, C1) and the Unicode line and paragraph separators: never in a token's texts."""
_SEGMENT, _CAMPAIGN = 2, 1


class TokenError(EventError):
    """A token or id header that cannot be trusted; ``reason`` is malformed, forged, expired or future."""


@dataclass(frozen=True, slots=True)
class UnsubscribeToken:
    """What a valid unsubscribe token says."""

    recipient: str
    stream: str
    segment: str | None
    issued: int
    """POSIX seconds when the link was made."""
    key_index: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class MailinfraId:
    """What a valid ``X-Mailinfra-Id`` header says; the recipient is only a keyed id (``recipient`` stays None)."""

    stream: str
    segment: str | None
    campaign: str | None
    recipient_id: str
    key_index: int = field(default=0, compare=False)
    recipient: str | None = None
    """Always None here: resolve it through the store with :meth:`matches`."""

    def matches(self, address: str, keys: Sequence[bytes]) -> bool:
        """Whether ``address`` is the recipient this header was made for (keys as given to :func:`read_id`)."""
        key = check_keys(keys)[self.key_index]
        return hmac.compare_digest(recipient_id(address, key), self.recipient_id)


def make_token(recipient: str, stream: str, keys: Sequence[bytes], now: float, *, segment: str | None = None) -> str:
    """A signed, URL-safe unsubscribe token for ``recipient`` on ``stream``, issued at ``now`` (POSIX seconds)."""
    key = check_keys(keys)[0]
    if '@' not in recipient:
        raise ValueError(f'unsubscribe token: "{recipient[:80]}" is not an address')
    if not stream:
        raise ValueError('unsubscribe token: a stream name is needed')
    issued = int(now)
    if not 0 <= issued < 1 << 40:
        raise ValueError(f'unsubscribe token: time {now} is out of range')
    data = bytes([VERSION << 5 | (_SEGMENT if segment is not None else 0)]) + issued.to_bytes(5, 'big')
    data += _text('recipient', recipient, MAX_ADDRESS) + _text('stream', stream, MAX_NAME)
    if segment is not None:
        data += _text('segment', segment, MAX_NAME)
    tag = mac(key, _TOKEN_LABEL, data, TOKEN_MAC_BYTES)
    return base64.urlsafe_b64encode(data + tag).decode('ascii').rstrip('=')


def verify_token(
    token: str, keys: Sequence[bytes], now: float, max_age: float, *, max_skew: float = 300
) -> UnsubscribeToken:
    """Check a token's signature and age; raises TokenError (malformed, forged, expired, future)."""
    verify_keys = check_keys(keys)
    if not isinstance(token, str) or len(token) > 1024 or not _TOKEN_RE.fullmatch(token) or len(token) % 4 == 1:
        raise TokenError('malformed', 'the unsubscribe token is not URL-safe base64 of a plausible length')
    try:
        raw = base64.urlsafe_b64decode(token + '=' * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise TokenError('malformed', 'the unsubscribe token is not valid base64') from None
    if len(raw) < 6 + TOKEN_MAC_BYTES + 2 or raw[0] >> 5 != VERSION or raw[0] & 0x1D:
        raise TokenError('malformed', 'the unsubscribe token is too short or of an unknown version')
    data, tag = raw[:-TOKEN_MAC_BYTES], raw[-TOKEN_MAC_BYTES:]
    key_index = verify(verify_keys, _TOKEN_LABEL, data, tag)
    if key_index is None:
        raise TokenError('forged', 'the unsubscribe token was not signed by any of our keys')
    issued = int.from_bytes(data[1:6], 'big')
    try:
        fields = _read_texts(data[6:], 3 if data[0] & _SEGMENT else 2)
    except FieldError as error:
        raise TokenError('malformed', f'the unsubscribe token is signed but unreadable: {error}') from None
    if now - issued > max_age:
        raise TokenError('expired', f'the unsubscribe token is {int(now - issued)} s old, at most {int(max_age)} s')
    if issued - now > max_skew:
        raise TokenError('future', f'the unsubscribe token was made {int(issued - now)} s in the future')
    return UnsubscribeToken(
        recipient=fields[0],
        stream=fields[1],
        segment=fields[2] if len(fields) > 2 else None,
        issued=issued,
        key_index=key_index,
    )


def token_decoder(
    keys: Sequence[bytes], max_age: float, *, clock: Callable[[], float] = time.time
) -> Callable[[str], UnsubscribeToken]:
    """``verify_token`` bound to the keys and a clock (for parsers that get only the token)."""
    bound = check_keys(keys)
    return lambda token: verify_token(token, bound, clock(), max_age)


def token_from_subject(subject: str) -> str | None:
    """The token in a ``mailto:`` unsubscribe's subject (``unsubscribe <token>``, replies' ``Re:`` allowed), or None."""
    words = subject.split()
    for index, word in enumerate(words[:-1]):
        if word.lower() == MAILTO_SUBJECT_PREFIX.strip() and _TOKEN_RE.fullmatch(words[index + 1]):
            return words[index + 1]
    return None


def recipient_id(address: str, key: bytes) -> str:
    """The keyed id of a recipient (lower-cased first), as lower-case base32: what :func:`make_id` carries."""
    return b32_encode(mac(key, _RECIPIENT_LABEL, address.strip().lower().encode('utf-8'), RECIPIENT_ID_BYTES))


def make_id(
    recipient: str,
    stream: str,
    keys: Sequence[bytes],
    *,
    segment: str | None = None,
    campaign: str | None = None,
) -> str:
    """The ``X-Mailinfra-Id`` value: stream, segment and campaign, the keyed recipient id, a 128-bit tag.

    Lower-case base32 in words of at most 48 characters separated by spaces, so folding never needs encoded words.
    """
    key = check_keys(keys)[0]
    if not stream:
        raise ValueError(f'{ID_HEADER}: a stream name is needed')
    flags = (_SEGMENT if segment is not None else 0) | (_CAMPAIGN if campaign is not None else 0)
    data = bytes([VERSION << 5 | flags]) + _field('stream', stream)
    if segment is not None:
        data += _field('segment', segment)
    if campaign is not None:
        data += _field('campaign', campaign)
    data += mac(key, _RECIPIENT_LABEL, recipient.strip().lower().encode('utf-8'), RECIPIENT_ID_BYTES)
    text = b32_encode(data + mac(key, _ID_LABEL, data, ID_MAC_BYTES))
    # words of 48 characters: any mail library can fold the header at the spaces instead of encoding it (RFC 2047)
    return ' '.join(text[start : start + ID_WORD] for start in range(0, len(text), ID_WORD))


def read_id(value: str, keys: Sequence[bytes]) -> MailinfraId:
    """Verify and read an ``X-Mailinfra-Id`` value (any letter case, folded or not); raises TokenError."""
    verify_keys = check_keys(keys)
    text = ''.join(value.split())
    if len(text) > 512:  # the longest make_id gives is 359 characters
        raise TokenError('malformed', f'{ID_HEADER} is too long to be ours')
    try:
        raw = b32_decode(text)
        if len(raw) < 1 + RECIPIENT_ID_BYTES + ID_MAC_BYTES or raw[0] >> 5 != VERSION or raw[0] & 0x1C:
            raise FieldError('malformed', 'too short or of an unknown version')
        data, tag = raw[:-ID_MAC_BYTES], raw[-ID_MAC_BYTES:]
        key_index = verify(verify_keys, _ID_LABEL, data, tag)
        if key_index is None:
            raise TokenError('forged', f'{ID_HEADER} was not signed by any of our keys')
        flags = data[0]
        fields, used = unpack_fields(data[1:], 1 + bool(flags & _SEGMENT) + bool(flags & _CAMPAIGN))
        rest = data[1 + used :]
        if len(rest) != RECIPIENT_ID_BYTES:
            raise FieldError('malformed', 'the recipient id has the wrong size')
    except FieldError as error:
        raise TokenError('malformed', f'{ID_HEADER} is not readable: {error}') from None
    fields.reverse()
    stream = fields.pop()
    segment = fields.pop() if flags & _SEGMENT else None
    campaign = fields.pop() if flags & _CAMPAIGN else None
    return MailinfraId(stream, segment, campaign, b32_encode(rest), key_index)


def _field(name: str, value: str) -> bytes:
    size = len(value.encode('utf-8'))
    if size > MAX_NAME:
        raise ValueError(f'{ID_HEADER}: the {name} has {size} octets, at most {MAX_NAME}')
    return pack_field(value)


def _text(name: str, value: str, limit: int) -> bytes:
    if _CONTROL.search(value):
        raise ValueError(f'unsubscribe token: the {name} has a control character (a line break?)')
    try:
        encoded = value.encode('utf-8')
    except UnicodeEncodeError:
        raise ValueError(f'unsubscribe token: the {name} is not valid Unicode (a lone surrogate)') from None
    if len(encoded) > limit:
        raise ValueError(f'unsubscribe token: the {name} has {len(encoded)} octets, at most {limit}')
    return bytes([len(encoded)]) + encoded


def _read_texts(data: bytes, count: int) -> list[str]:
    texts, offset = [], 0
    for _ in range(count):
        if offset >= len(data) or offset + 1 + data[offset] > len(data):
            raise FieldError('malformed', 'a field runs past the end')
        length = data[offset]
        try:
            texts.append(data[offset + 1 : offset + 1 + length].decode('utf-8'))
        except UnicodeDecodeError:
            raise FieldError('malformed', 'a field is not UTF-8') from None
        offset += 1 + length
    if offset != len(data):
        raise FieldError('malformed', 'octets after the last field')
    return texts
