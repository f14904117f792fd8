"""Signed VERP return paths: ``<prefix><separator><payload>@<return-path domain>``.

Every message of a stream leaves with its own envelope sender, so a bounce or a complaint that comes back names
the stream, the list segment, the campaign and the message it belongs to, and nobody without the key can make
one that names someone else.

Design
    *Classic VERP* (``bounces+user=example.com@...``) puts the recipient in the local part. It is readable, but
    an address can be 254 octets while a local part may have only 64 (RFC 5321 §4.5.3.1.1), some MTAs change the
    case of local parts, and nothing stops a forged bounce. So the payload here is binary, packed compactly
    (``signing.pack_field``: numbers, hex ids and UUIDs take half their text or less, lower-case names two
    thirds) and written as lower-case base32 without padding, which survives any change of case:

    ``version+flags (1 octet) | stream | [segment] | [campaign] | [message id] | [recipient] | MAC (8 octets)``

    The local part is at most 64 octets, always: :func:`encode` never returns a longer one. The recipient is
    included only when it fits in the room left (short addresses); otherwise it is left out and the flag says so.
    Ingest then checks it against its own data: this address is the envelope sender of exactly one message, so the
    store's delivery events from it (their sender, else their queue id's ``feedback_messages`` record) name the
    recipients a DSN to it may report on (``ingest.store.Writer``; others are counted ``recipient-not-ours``).
    The stream, segment, campaign and message id are never dropped: when they do not fit,
    :func:`encode` raises ``VerpError('too-long')`` at sending time, before any mail leaves, rather than losing
    them silently. Room for them (:func:`payload_capacity`): 29 octets with the default prefix ``b``, 25 with an
    8-character prefix. Each field costs one octet plus its packed size, e.g. stream ``marketing`` 7, segment
    ``weekly-de`` 7, campaign ``2026-12`` 7, a 32-bit message number 5: 26 octets; a 64-bit number costs 9, a
    UUID 17. A stream name of up to 12 lower-case letters, digits or ``- _ .``, a segment number below 65536,
    a 32-bit campaign number and a 64-bit message number always fit with prefix ``b`` (tested).

Signature
    HMAC-SHA256 over the lower-cased prefix and the payload, under a label of its own, cut to 64 bits. Forging a
    suppression means guessing a tag the ingest service accepts, online: each guess is one message delivered to
    our bounce MX, and succeeds with probability 2^-64 per key tried (several keys during a rotation). At a
    sustained 10,000 forged bounces a second an attacker would need about 40 million years for even odds, and
    each success suppresses a single address. There is no offline attack: the tag cannot be checked without
    the key (256 bits or more). RFC 2104 §5 advises at least 80 bits for a general-purpose MAC; the 16 bits
    saved here are about three base32 characters of a 64-character budget. The return-path domain is not signed, so a
    relay that rewrites it (masquerading) does not break decoding.

A decoded address is trusted for the recipient it names (or the store gives), never a DSN's Final-Recipient
that differs: otherwise anyone who received one valid return path could suppress another address with it.
Standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .events import EventError
from .signing import (
    FieldError,
    KeyFileError,
    b32_decode,
    b32_encode,
    check_keys,
    mac,
    new_key,
    pack_field,
    read_key_file,
    unpack_fields,
    verify,
)

__all__ = [
    # KeyFileError, new_key and read_key_file come from .signing: the key helpers for callers of this module
    'MAC_BYTES',
    'MAX_LOCAL_PART',
    'SEPARATORS',
    'KeyFileError',
    'VerpAddress',
    'VerpError',
    'decode',
    'decoder',
    'encode',
    'new_key',
    'payload_capacity',
    'read_key_file',
]

MAX_LOCAL_PART = 64
"""RFC 5321 §4.5.3.1.1: the longest local part every MTA must accept."""
MAX_ADDRESS = 254
"""RFC 5321 §4.5.3.1.3: 256 octets of path, angle brackets included."""
MAC_BYTES = 8
"""64-bit tag; see the module docstring for why that suffices."""
SEPARATORS = ('-', '+', '=')
"""Separators between prefix and payload; none of them is a base32 character."""
VERSION = 1

_LABEL = b'mailinfra-verp-v1'
_PREFIX = re.compile(r'[a-z0-9]{1,8}')
_LABEL_RE = re.compile(r'[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?')
_SEGMENT, _CAMPAIGN, _MESSAGE, _RECIPIENT = 8, 4, 2, 1
_OPTIONAL = ((_SEGMENT, 'segment'), (_CAMPAIGN, 'campaign'), (_MESSAGE, 'message_id'), (_RECIPIENT, 'recipient'))


class VerpError(EventError):
    """A return path that is not one of ours or cannot be trusted.

    Reasons: ``not-verp`` (not this format), ``truncated`` (cut short, e.g. by an MTA), ``bad-signature``
    (forged or altered, or signed by a key no longer listed), ``unsupported-version``, ``malformed``, and, when
    building, ``too-long`` and ``invalid``.
    """


@dataclass(frozen=True, slots=True)
class VerpAddress:
    """What a signed return path says. ``recipient`` is None when it did not fit (ask the store)."""

    prefix: str
    domain: str
    stream: str
    segment: str | None = None
    campaign: str | None = None
    message_id: str | None = None
    """The application's id of the message (a number, UUID, hex id or short text), not necessarily its Message-ID."""
    recipient: str | None = None
    key_index: int = field(default=0, compare=False)
    """Which key verified it: 0 the newest; a higher index means mail signed before the last rotation."""


def payload_capacity(prefix: str = 'b', separator: str = '-') -> int:
    """Octets left for the packed fields (stream, segment, campaign, message id, recipient) after the fixed parts."""
    characters = MAX_LOCAL_PART - len(prefix) - len(separator)
    return characters * 5 // 8 - 1 - MAC_BYTES


def encode(
    keys: Sequence[bytes],
    *,
    stream: str,
    domain: str,
    prefix: str = 'b',
    separator: str = '-',
    segment: str | None = None,
    campaign: str | None = None,
    message_id: str | None = None,
    recipient: str | None = None,
) -> str:
    """The signed return path of one message; its local part is at most 64 octets.

    ``recipient`` is included when it fits and silently left out when not. Raises VerpError ``too-long`` when
    the other fields do not fit, ``invalid`` for a bad prefix, separator or domain.
    """
    signing_key = check_keys(keys)[0]
    if not _PREFIX.fullmatch(prefix):
        raise VerpError('invalid', f'invalid VERP prefix "{prefix}", expected 1-8 lower-case letters or digits')
    if separator not in SEPARATORS:
        raise VerpError('invalid', f'invalid VERP separator "{separator}", expected one of {" ".join(SEPARATORS)}')
    domain = _domain(domain)
    if not stream:
        raise VerpError('invalid', 'a VERP return path needs a stream name')
    values = {'segment': segment, 'campaign': campaign, 'message_id': message_id}
    flags, body = 0, bytearray(_pack('stream', stream))
    for flag, name in _OPTIONAL[:3]:
        value = values[name]
        if value is not None:
            flags |= flag
            body += _pack(name, value)
    room = payload_capacity(prefix, separator)
    if len(body) > room:
        raise VerpError(
            'too-long',
            f'stream, segment, campaign and message id pack into {len(body)} octets, only {room} fit in a '
            f'64-octet local part with prefix "{prefix}": use shorter ids (numbers, UUIDs or hex pack best)',
        )
    if recipient is not None:
        try:
            packed = pack_field(recipient)
        except ValueError:
            packed = b''
        if packed and len(body) + len(packed) <= room:
            flags |= _RECIPIENT
            body += packed
    data = bytes([VERSION << 5 | flags]) + bytes(body)
    tag = mac(signing_key, _LABEL, prefix.encode('ascii') + b'\0' + data, MAC_BYTES)
    address = f'{prefix}{separator}{b32_encode(data + tag)}@{domain}'
    if len(address) > MAX_ADDRESS:
        raise VerpError('too-long', f'the return path has {len(address)} octets, at most {MAX_ADDRESS} are allowed')
    return address


def decode(
    address: str, keys: Sequence[bytes], *, prefix: str | None = None, separator: str | None = None
) -> VerpAddress:
    """Verify and read a return path made by :func:`encode`, in any letter case; raises VerpError.

    ``prefix``/``separator`` restrict what is accepted (recommended: the stream's own); by default any prefix of
    1-8 letters or digits and any of ``- + =``.
    """
    verify_keys = check_keys(keys)
    text = address.strip()
    if text.startswith('<') and text.endswith('>'):
        text = text[1:-1]
    local, at, domain = text.rpartition('@')
    if not at or not local or not domain or len(text) > 2 * MAX_ADDRESS:
        raise VerpError('not-verp', f'"{_show(address)}" is not an address')
    local = local.lower()
    separators = (separator,) if separator is not None else SEPARATORS
    cut = max(local.rfind(candidate) for candidate in separators)
    head, payload = local[:cut], local[cut + 1 :]
    if cut < 0 or not _PREFIX.fullmatch(head) or (prefix is not None and head != prefix.lower()):
        raise VerpError('not-verp', f'"{_show(address)}" is not a return path of ours')
    try:
        data = b32_decode(payload, strict=False)  # the spelling is checked after the structure
        if not data:
            raise FieldError('truncated', 'the payload is empty')
        header = data[0]
        if header >> 5 != VERSION:
            raise VerpError('unsupported-version', f'"{_show(address)}": payload version {header >> 5} is unknown')
        if header & 0x10:
            raise FieldError('malformed', 'reserved flag set')
        present = [name for flag, name in _OPTIONAL if header & flag]
        values, used = unpack_fields(data[1:], 1 + len(present))
    except FieldError as error:
        raise VerpError(error.reason, f'"{_show(address)}": {error}') from None
    signed, tag = data[: 1 + used], data[1 + used :]
    if len(tag) < MAC_BYTES:
        raise VerpError('truncated', f'"{_show(address)}": the signature is cut short')
    if len(tag) > MAC_BYTES:
        raise VerpError('malformed', f'"{_show(address)}": {len(tag) - MAC_BYTES} octets after the signature')
    if b32_encode(data) != payload:
        raise VerpError('malformed', f'"{_show(address)}": stray bits after the signature')
    key_index = verify(verify_keys, _LABEL, head.encode('ascii') + b'\0' + signed, tag)
    if key_index is None:
        raise VerpError('bad-signature', f'"{_show(address)}": the signature does not match any signing key')
    named = dict(zip(present, values[1:], strict=True))
    return VerpAddress(
        prefix=head,
        domain=domain.lower().rstrip('.'),
        stream=values[0],
        segment=named.get('segment'),
        campaign=named.get('campaign'),
        message_id=named.get('message_id'),
        recipient=named.get('recipient'),
        key_index=key_index,
    )


def decoder(
    keys: Sequence[bytes], *, prefix: str | None = None, separator: str | None = None
) -> Callable[[str], VerpAddress | None]:
    """``decode`` bound to the keys, returning None for an address that is not ours (``not-verp``).

    Any other VerpError (forged, truncated, ...) is raised: it looks like ours but cannot be trusted.
    """
    bound = check_keys(keys)

    def decode_or_none(address: str) -> VerpAddress | None:
        try:
            return decode(address, bound, prefix=prefix, separator=separator)
        except VerpError as error:
            if error.reason == 'not-verp':
                return None
            raise

    return decode_or_none


def _pack(name: str, value: str) -> bytes:
    try:
        return pack_field(value)
    except ValueError as error:
        raise VerpError('too-long', f'VERP {name}: {error}') from None


def _domain(domain: str) -> str:
    name = domain.lower().rstrip('.')
    labels = name.split('.')
    if len(name) > 253 or len(labels) < 2 or not all(_LABEL_RE.fullmatch(label) for label in labels):
        raise VerpError('invalid', f'invalid return-path domain "{_show(domain)}"')
    return name


def _show(text: str) -> str:
    """An address for a message: printable and at most 120 characters."""
    shown = ''.join(char if char.isprintable() else '?' for char in text[:120])
    return shown + ('...' if len(text) > 120 else '')
