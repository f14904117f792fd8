"""DKIM key generation, DKIM key records (TXT values) and fingerprints.

RSA keys are 2048 bits by default and never shorter (RFC 8301 says signers SHOULD use at least
2048 bits; shorter keys are refused here). Ed25519 keys (RFC 8463) are meant for dual-signing next
to an RSA key, since some large receivers do not verify Ed25519 signatures.

Key records:

* RSA: ``v=DKIM1; k=rsa; h=sha256; p=<base64 of the DER SubjectPublicKeyInfo>``;
* Ed25519: ``v=DKIM1; k=ed25519; p=<base64 of the raw 32-byte public key>``;
* revoked: ``v=DKIM1; k=<algorithm>; p=`` (an empty ``p=`` revokes the selector, RFC 6376 3.6.1).

Nothing here logs, formats or embeds private key bytes in an exception.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from .errors import InvalidNameError, KeyFileError, KeySizeError, RecordFormatError

__all__ = [
    'DEFAULT_RSA_BITS',
    'ED25519_BITS',
    'MAX_RSA_BITS',
    'MIN_RSA_BITS',
    'TXT_CHUNK_SIZE',
    'KeyAlgorithm',
    'PrivateKey',
    'PublicKey',
    'check_rsa_bits',
    'fingerprint',
    'generate_private_key',
    'key_algorithm',
    'key_bits',
    'load_private_key',
    'load_private_key_pem',
    'load_public_key',
    'parse_algorithm',
    'parse_algorithms',
    'parse_txt_value',
    'private_key_pem',
    'public_key_der',
    'public_txt_value',
    'record_fingerprint',
    'record_key',
    'record_public_key',
    'revoked_txt_value',
    'txt_chunks',
]


class KeyAlgorithm(StrEnum):
    """DKIM key type, as written in the ``k=`` tag and in key file names."""

    RSA = 'rsa'
    ED25519 = 'ed25519'


PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
PublicKey = rsa.RSAPublicKey | ed25519.Ed25519PublicKey

DEFAULT_RSA_BITS = 2048
MIN_RSA_BITS = 2048
MAX_RSA_BITS = 4096
"""Verifiers must handle 1024 to 4096 bits (RFC 8301 3.2); larger keys may not verify."""
ED25519_BITS = 256
TXT_CHUNK_SIZE = 255
"""Longest character-string in a TXT record (RFC 1035 3.3.14)."""

_RSA_PUBLIC_EXPONENT = 65537


def parse_algorithm(value: str | KeyAlgorithm) -> KeyAlgorithm:
    """Return the :class:`KeyAlgorithm` for ``"rsa"`` or ``"ed25519"`` (case-insensitive)."""
    try:
        return KeyAlgorithm(str(value).strip().lower())
    except ValueError:
        allowed = ', '.join(a.value for a in KeyAlgorithm)
        raise InvalidNameError(f'invalid DKIM key algorithm "{value}", expected one of: {allowed}') from None


def parse_algorithms(value: str | Iterable[str | KeyAlgorithm]) -> tuple[KeyAlgorithm, ...]:
    """Parse ``"rsa"``, ``"rsa+ed25519"`` or a list of names into unique algorithms, in order."""
    parts = value.split('+') if isinstance(value, str) else list(value)
    result: list[KeyAlgorithm] = []
    for part in parts:
        algorithm = parse_algorithm(part)
        if algorithm not in result:
            result.append(algorithm)
    if not result:
        raise InvalidNameError('no DKIM key algorithm given, expected "rsa" or "rsa+ed25519"')
    return tuple(result)


def check_rsa_bits(bits: int) -> int:
    """Return ``bits`` if it is an acceptable RSA key size, else raise :class:`KeySizeError`."""
    if isinstance(bits, bool) or not isinstance(bits, int):
        raise KeySizeError(f'invalid RSA key size {bits!r}, expected a number of bits such as 2048')
    if bits < MIN_RSA_BITS:
        raise KeySizeError(
            f'RSA key size {bits} bits is too small: DKIM keys must have at least {MIN_RSA_BITS} bits '
            '(RFC 8301 recommends 2048)'
        )
    if bits > MAX_RSA_BITS:
        raise KeySizeError(
            f'RSA key size {bits} bits is too large: verifiers are only required to handle up to '
            f'{MAX_RSA_BITS} bits (RFC 8301)'
        )
    if bits % 8:
        raise KeySizeError(f'RSA key size {bits} bits is not a multiple of 8')
    return bits


def generate_private_key(algorithm: str | KeyAlgorithm = KeyAlgorithm.RSA, bits: int | None = None) -> PrivateKey:
    """Generate a new private key.

    Args:
        algorithm: ``"rsa"`` or ``"ed25519"``.
        bits: RSA key size; default 2048, at least 2048. Must be ``None`` or 256 for Ed25519.
    """
    algorithm = parse_algorithm(algorithm)
    if algorithm is KeyAlgorithm.ED25519:
        if bits not in (None, ED25519_BITS):
            raise KeySizeError(f'Ed25519 keys have a fixed size of {ED25519_BITS} bits, got {bits}')
        return ed25519.Ed25519PrivateKey.generate()
    size = check_rsa_bits(DEFAULT_RSA_BITS if bits is None else bits)
    return rsa.generate_private_key(public_exponent=_RSA_PUBLIC_EXPONENT, key_size=size)


def key_algorithm(key: PrivateKey | PublicKey) -> KeyAlgorithm:
    """The algorithm of a private or public key."""
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return KeyAlgorithm.RSA
    return KeyAlgorithm.ED25519


def key_bits(key: PrivateKey | PublicKey) -> int:
    """RSA modulus size in bits, or 256 for Ed25519."""
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return key.key_size
    return ED25519_BITS


def _public(key: PrivateKey | PublicKey) -> PublicKey:
    if isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        return key.public_key()
    return key


def private_key_pem(key: PrivateKey) -> bytes:
    """The private key as unencrypted PKCS#8 PEM. Handle the result as a secret."""
    return key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )


def load_private_key_pem(data: bytes, *, source: str = 'the key data') -> PrivateKey:
    """Parse an unencrypted PEM private key (PKCS#8 or traditional) of type RSA or Ed25519.

    Errors name ``source`` (a path, say) and never quote the data.
    """
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise KeyFileError(f'cannot load the private key in {source}: it is encrypted') from None
    except (ValueError, UnsupportedAlgorithm):
        raise KeyFileError(f'cannot load the private key in {source}: not a PEM RSA or Ed25519 private key') from None
    if not isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        raise KeyFileError(
            f'cannot use the private key in {source}: unsupported key type {type(key).__name__}, '
            'expected RSA or Ed25519'
        )
    return key


def load_private_key(path: str | Path) -> PrivateKey:
    """Load a private key from a PEM file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise KeyFileError(f'cannot read private key file {path}: {error.strerror}') from None
    return load_private_key_pem(data, source=str(path))


def load_public_key(path: str | Path) -> PublicKey:
    """Load the public half of the private key stored in a PEM file."""
    return load_private_key(path).public_key()


def public_key_der(key: PrivateKey | PublicKey) -> bytes:
    """DER SubjectPublicKeyInfo of the (public half of the) key."""
    return _public(key).public_bytes(
        encoding=serialization.Encoding.DER,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    )


def fingerprint(key: PrivateKey | PublicKey) -> str:
    """``sha256:<hex>`` of the DER SubjectPublicKeyInfo; public, safe to print and log.

    Matches ``openssl pkey -in KEY -pubout -outform DER | sha256sum``.
    """
    return 'sha256:' + hashlib.sha256(public_key_der(key)).hexdigest()


def public_txt_value(key: PrivateKey | PublicKey) -> str:
    """The DKIM key record (TXT value, unsplit) publishing this key."""
    public = _public(key)
    if isinstance(public, rsa.RSAPublicKey):
        p = base64.b64encode(public_key_der(public)).decode('ascii')
        return f'v=DKIM1; k=rsa; h=sha256; p={p}'
    raw = public.public_bytes(encoding=serialization.Encoding.Raw, format=serialization.PublicFormat.Raw)
    return f'v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode("ascii")}'


def revoked_txt_value(algorithm: str | KeyAlgorithm = KeyAlgorithm.RSA) -> str:
    """The key record that revokes a selector: an empty ``p=``."""
    return f'v=DKIM1; k={parse_algorithm(algorithm).value}; p='


def parse_txt_value(value: str) -> dict[str, str]:
    """Parse a DKIM key record into its tags (RFC 6376 3.2 tag-list).

    Whitespace around tags and values is dropped, and all whitespace inside ``p=`` (base64 may be
    folded). Raises :class:`RecordFormatError` for a malformed list or a repeated tag.
    """
    tags: dict[str, str] = {}
    parts = value.split(';')
    if parts and not parts[-1].strip():
        parts.pop()
    for part in parts:
        name, sep, tag_value = part.partition('=')
        name = name.strip()
        if not sep or not name or not name.replace('_', 'a').isalnum() or not name[0].isalpha():
            raise RecordFormatError(f'invalid DKIM key record: malformed tag "{part.strip()}"')
        if name in tags:
            raise RecordFormatError(f'invalid DKIM key record: tag "{name}" appears twice')
        tags[name] = tag_value.strip()
    if 'p' in tags:
        tags['p'] = ''.join(tags['p'].split())
    if 'v' in tags and next(iter(tags)) != 'v':
        raise RecordFormatError('invalid DKIM key record: "v=" must be the first tag')
    return tags


def record_key(value: str) -> tuple[KeyAlgorithm, bytes]:
    """The key type and decoded public key bytes of a DKIM key record (empty bytes if revoked).

    Two records publish the same key exactly when their ``record_key`` values are equal,
    whatever their spacing, tag order, or extra tags.
    """
    tags = parse_txt_value(value)
    if tags.get('v', 'DKIM1') != 'DKIM1':
        raise RecordFormatError(f'invalid DKIM key record: unsupported version "v={tags["v"]}"')
    if 'p' not in tags:
        raise RecordFormatError('invalid DKIM key record: the required tag "p=" is missing')
    algorithm = parse_algorithm(tags.get('k', 'rsa'))
    try:
        material = base64.b64decode(tags['p'], validate=True)
    except (binascii.Error, ValueError):
        raise RecordFormatError('invalid DKIM key record: "p=" is not valid base64') from None
    return algorithm, material


def record_fingerprint(value: str) -> str | None:
    """The :func:`fingerprint` of the key a DKIM key record publishes; ``None`` if revoked."""
    public = record_public_key(value)
    return None if public is None else fingerprint(public)


def record_public_key(value: str) -> PublicKey | None:
    """The public key a DKIM key record publishes; ``None`` if revoked. Raises :class:`RecordFormatError`."""
    algorithm, material = record_key(value)
    if not material:
        return None
    try:
        if algorithm is KeyAlgorithm.ED25519:
            public: PublicKey = ed25519.Ed25519PublicKey.from_public_bytes(material)
        else:
            loaded = serialization.load_der_public_key(material)
            if not isinstance(loaded, rsa.RSAPublicKey):
                raise ValueError('not an RSA key')
            public = loaded
    except (ValueError, UnsupportedAlgorithm):
        raise RecordFormatError(f'invalid DKIM key record: "p=" is not a valid {algorithm.value} public key') from None
    return public


def txt_chunks(value: str, size: int = TXT_CHUNK_SIZE) -> tuple[str, ...]:
    """Split a TXT value into character-strings of at most ``size`` bytes.

    Publish them as the strings of ONE TXT record (verifiers join them with nothing in between),
    never as separate records. DKIM records are ASCII, so bytes and characters coincide; a
    non-ASCII value is refused rather than split inside a character.
    """
    if not 1 <= size <= TXT_CHUNK_SIZE:
        raise ValueError(f'invalid TXT chunk size {size}, expected 1 to {TXT_CHUNK_SIZE}')
    if not value.isascii():
        raise RecordFormatError('cannot split a TXT value that is not ASCII')
    if not value:
        return ('',)
    return tuple(value[i : i + size] for i in range(0, len(value), size))
