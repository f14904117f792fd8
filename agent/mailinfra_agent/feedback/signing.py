"""Keys and the small binary codec shared by the VERP addresses, unsubscribe tokens and the ``X-Mailinfra-Id`` header.

A signing key is a 0600 file holding at least 32 bytes (``new_key`` makes a text key: ``64`` URL-safe characters).
Key rotation: the caller passes several keys, newest first; the newest signs, every one verifies, so mail sent
before a rotation still decodes while the old key is kept in the list. Each use signs under its own label
(``mailinfra-verp-v1``, ...), so a value signed for one use never verifies as another.

Fields are packed as ``<kind and length octet><bytes>``: the three high bits say how the text was packed, the
five low bits the length (at most 31 octets). Each value takes the shortest kind it can: a decimal number
without leading zeros (binary), a lower-case UUID (16 octets), lower-case hexadecimal of even length (half),
a *name* of lower-case letters, digits and ``- _ .`` (three characters in two octets, base 40), else UTF-8
text (longer text: a second length octet, up to 255). Every field decodes back to exactly the text packed.
Standard library only.
"""

from __future__ import annotations

import base64
import hmac
import os
import secrets
import stat
import uuid
from collections.abc import Sequence
from hashlib import sha256

__all__ = [
    'MAX_FIELD',
    'MIN_KEY_BYTES',
    'FieldError',
    'KeyFileError',
    'b32_decode',
    'b32_encode',
    'check_keys',
    'mac',
    'new_key',
    'pack_field',
    'read_key_file',
    'unpack_fields',
    'verify',
]

MIN_KEY_BYTES = 32
"""Shortest key accepted: 256 bits, the output size of SHA-256 (RFC 2104 §3: less weakens the MAC)."""
MAX_FIELD = 255
"""Longest packed field in octets (UTF-8 text; the compact kinds stop at 31)."""

_TEXT, _NUMBER, _HEX, _UUID, _NAME, _LONG_TEXT = 0, 1, 2, 3, 4, 5
_SHORT = 31
_NAME_CHARS = '\0abcdefghijklmnopqrstuvwxyz0123456789-_.'
_NAME_CODES = {char: code for code, char in enumerate(_NAME_CHARS) if code}
_B32_ALPHABET = frozenset('abcdefghijklmnopqrstuvwxyz234567')


class KeyFileError(ValueError):
    """A key file that cannot be used; the message names the file and the fix, never the key."""


class FieldError(ValueError):
    """Bytes that do not unpack into fields (``truncated``: a length runs past the end)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def new_key() -> bytes:
    """A fresh random key (384 bits as 64 URL-safe characters), for ``umask 077; ... > keyfile``."""
    return secrets.token_urlsafe(48).encode('ascii')


def read_key_file(path: str | os.PathLike[str]) -> bytes:
    """The key in ``path``: its bytes without a trailing newline. Refuses a file group or others may read or write."""
    name = os.fspath(path)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO must not block
    except OSError as error:
        raise KeyFileError(f'cannot open signing key file {name}: {error.strerror}') from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise KeyFileError(f'signing key file {name} is not a regular file')
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise KeyFileError(
                f'signing key file {name} has mode {mode:04o}: group and others must have no access (chmod 600 {name})'
            )
        with os.fdopen(os.dup(fd), 'rb') as handle:
            data = handle.read(64 * 1024 + 1)
    finally:
        os.close(fd)
    if len(data) > 64 * 1024:
        raise KeyFileError(f'signing key file {name} is larger than 64 KiB: not a key')
    key = data.rstrip(b'\r\n')
    if len(key) < MIN_KEY_BYTES:
        raise KeyFileError(
            f'signing key in {name} has {len(key)} bytes, at least {MIN_KEY_BYTES} are needed '
            "(make one with: umask 077; python3 -c 'import secrets; print(secrets.token_urlsafe(48))' > FILE)"
        )
    return key


def check_keys(keys: Sequence[bytes]) -> tuple[bytes, ...]:
    """The keys as a tuple, newest first; raises ValueError (without the keys) for none or a short one."""
    if isinstance(keys, bytes | bytearray):
        raise TypeError('keys must be a sequence of keys (newest first), not one key')
    result = tuple(bytes(key) for key in keys)
    if not result:
        raise ValueError('no signing key given')
    for index, key in enumerate(result):
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f'signing key #{index} has {len(key)} bytes, at least {MIN_KEY_BYTES} are needed')
    return result


def mac(key: bytes, label: bytes, data: bytes, size: int) -> bytes:
    """HMAC-SHA256 of ``label`` + NUL + ``data`` under ``key``, cut to its first ``size`` octets."""
    return hmac.new(key, label + b'\0' + data, sha256).digest()[:size]


def verify(keys: Sequence[bytes], label: bytes, data: bytes, tag: bytes) -> int | None:
    """Index of the key whose MAC of ``data`` is ``tag`` (constant-time compare), None when none is."""
    found = None
    for index, key in enumerate(keys):
        if hmac.compare_digest(mac(key, label, data, len(tag)), tag) and found is None:
            found = index
    return found


def pack_field(value: str) -> bytes:
    """A kind-and-length octet and the packed bytes, in the shortest kind that fits; ValueError when too long."""
    candidates = []
    if value.isascii() and value.isdigit() and (value == '0' or not value.startswith('0')):
        number = int(value)
        candidates.append((_NUMBER, number.to_bytes(max(1, (number.bit_length() + 7) // 8), 'big')))
    if _is_uuid(value):
        candidates.append((_UUID, uuid.UUID(value).bytes))
    if value and len(value) % 2 == 0 and all(char in '0123456789abcdef' for char in value):
        candidates.append((_HEX, bytes.fromhex(value)))
    if value and all(char in _NAME_CODES for char in value):
        candidates.append((_NAME, _pack_name(value)))
    candidates.append((_TEXT, value.encode('utf-8')))
    kind, body = min((c for c in candidates if len(c[1]) <= _SHORT), key=lambda c: len(c[1]), default=candidates[-1])
    if len(body) <= _SHORT:
        return bytes([kind << 5 | len(body)]) + body
    if len(body) > MAX_FIELD:
        raise ValueError(f'"{value[:80]}" packs into {len(body)} octets, at most {MAX_FIELD} fit')
    return bytes([_LONG_TEXT << 5, len(body)]) + body


def unpack_fields(data: bytes, count: int) -> tuple[list[str], int]:
    """``count`` fields from the start of ``data`` and the offset after them; raises FieldError."""
    fields: list[str] = []
    offset = 0
    for _ in range(count):
        if offset >= len(data):
            raise FieldError('truncated', 'the data ends before its last field')
        kind, length = data[offset] >> 5, data[offset] & _SHORT
        offset += 1
        if kind == _LONG_TEXT:
            if offset >= len(data):
                raise FieldError('truncated', 'the data ends inside a field')
            length = data[offset]
            offset += 1
        body = data[offset : offset + length]
        if len(body) < length:
            raise FieldError('truncated', 'a field runs past the end of the data')
        offset += length
        fields.append(_unpack(kind, body))
    return fields, offset


def _unpack(kind: int, body: bytes) -> str:
    if kind in (_TEXT, _LONG_TEXT):
        try:
            return body.decode('utf-8')
        except UnicodeDecodeError:
            raise FieldError('malformed', 'a text field is not UTF-8') from None
    if kind == _NUMBER:
        return str(int.from_bytes(body, 'big'))
    if kind == _HEX:
        return body.hex()
    if kind == _UUID and len(body) == 16:
        return str(uuid.UUID(bytes=body))
    if kind == _NAME and body and len(body) % 2 == 0:
        return _unpack_name(body)
    raise FieldError('malformed', f'a field of kind {kind} cannot have {len(body)} octets')


def _pack_name(value: str) -> bytes:
    codes = [_NAME_CODES[char] for char in value] + [0] * (-len(value) % 3)
    return b''.join(
        (codes[i] * 1600 + codes[i + 1] * 40 + codes[i + 2]).to_bytes(2, 'big') for i in range(0, len(codes), 3)
    )


def _unpack_name(body: bytes) -> str:
    codes = []
    for i in range(0, len(body), 2):
        group = int.from_bytes(body[i : i + 2], 'big')
        if group >= 64000:
            raise FieldError('malformed', 'a name field holds a value out of range')
        codes += [group // 1600, group // 40 % 40, group % 40]
    text = ''.join(_NAME_CHARS[code] for code in codes).rstrip('\0')
    if not text or '\0' in text or len(codes) - len(text) > 2:
        raise FieldError('malformed', 'a name field is not in its one spelling')
    return text


def _is_uuid(value: str) -> bool:
    if len(value) != 36:
        return False
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def b32_encode(data: bytes) -> str:
    """Lower-case base32 (RFC 4648) without padding: survives MTAs that change the case of a local part."""
    return base64.b32encode(data).decode('ascii').rstrip('=').lower()


def b32_decode(text: str, *, strict: bool = True) -> bytes:
    """Inverse of :func:`b32_encode`, either case; raises FieldError ('not-verp' for foreign characters).

    ``strict`` also refuses stray bits in the last character (``malformed``), so one value has one spelling.
    """
    lowered = text.lower()
    if not lowered or not set(lowered) <= _B32_ALPHABET:
        raise FieldError('not-verp', 'not lower-case base32')
    if len(lowered) % 8 in (1, 3, 6):
        raise FieldError('truncated', f'{len(lowered)} base32 characters cannot be whole octets')
    try:
        data = base64.b32decode(lowered.upper() + '=' * (-len(lowered) % 8))
    except ValueError:
        raise FieldError('malformed', 'not valid base32') from None
    if strict and b32_encode(data) != lowered:
        raise FieldError('malformed', 'not canonical base32')
    return data
