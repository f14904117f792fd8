"""Key generation, key records (TXT values), fingerprints, and offline dkimpy sign/verify."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from mailinfra_iac.dkim import (
    KeyAlgorithm,
    KeyFileError,
    KeySizeError,
    RecordFormatError,
    fingerprint,
    generate_private_key,
    load_private_key,
    load_public_key,
    parse_algorithms,
    parse_txt_value,
    public_txt_value,
    record_fingerprint,
    record_key,
    revoked_txt_value,
    txt_chunks,
)
from mailinfra_iac.dkim.errors import InvalidNameError
from mailinfra_iac.dkim.keys import check_rsa_bits, parse_algorithm, private_key_pem, public_key_der

MESSAGE = (
    b'From: Sender <sender@example.com>\r\n'
    b'To: rcpt@example.org\r\n'
    b'Subject: DKIM test\r\n'
    b'Date: Thu, 05 Nov 2026 10:00:00 +0000\r\n'
    b'Message-ID: <dkim-test@example.com>\r\n'
    b'\r\n'
    b'Hello, world.\r\n'
)


# Key sizes -------------------------------------------------------------------------------------


def test_rsa_default_is_2048_bits(rsa_key: rsa.RSAPrivateKey) -> None:
    assert rsa_key.key_size == 2048
    assert rsa_key.public_key().public_numbers().e == 65537


def test_rsa_3072_bits_accepted() -> None:
    key = generate_private_key('rsa', 3072)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 3072


@pytest.mark.parametrize('bits', [512, 1024, 2047])
def test_rsa_below_2048_refused(bits: int) -> None:
    with pytest.raises(KeySizeError, match=rf'RSA key size {bits} bits is too small: .*at least 2048 bits'):
        generate_private_key('rsa', bits)


@pytest.mark.parametrize('bits', [4104, 8192])
def test_rsa_above_4096_refused(bits: int) -> None:
    with pytest.raises(KeySizeError, match='too large'):
        check_rsa_bits(bits)


@pytest.mark.parametrize('bits', [2049, True, '2048'])
def test_rsa_odd_sizes_refused(bits: object) -> None:
    with pytest.raises(KeySizeError):
        check_rsa_bits(bits)  # type: ignore[arg-type]


def test_ed25519_generated(ed_key: ed25519.Ed25519PrivateKey) -> None:
    assert isinstance(ed_key, ed25519.Ed25519PrivateKey)
    assert isinstance(generate_private_key('ED25519', 256), ed25519.Ed25519PrivateKey)


def test_ed25519_with_bits_refused() -> None:
    with pytest.raises(KeySizeError, match='fixed size of 256 bits'):
        generate_private_key('ed25519', 2048)


def test_algorithm_names() -> None:
    assert parse_algorithm(' RSA ') is KeyAlgorithm.RSA
    assert parse_algorithms('rsa+ed25519') == (KeyAlgorithm.RSA, KeyAlgorithm.ED25519)
    assert parse_algorithms(['ed25519', 'rsa', 'ed25519']) == (KeyAlgorithm.ED25519, KeyAlgorithm.RSA)
    with pytest.raises(InvalidNameError, match='invalid DKIM key algorithm "dsa", expected one of: rsa, ed25519'):
        parse_algorithm('dsa')
    with pytest.raises(InvalidNameError, match='no DKIM key algorithm'):
        parse_algorithms([])


# Key records -----------------------------------------------------------------------------------


def test_rsa_txt_format(rsa_key: rsa.RSAPrivateKey) -> None:
    value = public_txt_value(rsa_key)
    match = re.fullmatch(r'v=DKIM1; k=rsa; h=sha256; p=([A-Za-z0-9+/]+=*)', value)
    assert match
    der = base64.b64decode(match[1])
    assert der == public_key_der(rsa_key)
    assert len(der) == 294 and len(match[1]) == 392  # 2048-bit SubjectPublicKeyInfo
    loaded = serialization.load_der_public_key(der)
    assert isinstance(loaded, rsa.RSAPublicKey)
    assert loaded.public_numbers() == rsa_key.public_key().public_numbers()
    assert public_txt_value(rsa_key.public_key()) == value


def test_ed25519_txt_format(ed_key: ed25519.Ed25519PrivateKey) -> None:
    value = public_txt_value(ed_key)
    match = re.fullmatch(r'v=DKIM1; k=ed25519; p=([A-Za-z0-9+/]{43}=)', value)
    assert match
    raw = ed_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert base64.b64decode(match[1]) == raw
    assert len(raw) == 32


def test_revoked_values() -> None:
    assert revoked_txt_value() == 'v=DKIM1; k=rsa; p='
    assert revoked_txt_value('ed25519') == 'v=DKIM1; k=ed25519; p='
    assert record_key(revoked_txt_value()) == (KeyAlgorithm.RSA, b'')
    assert record_fingerprint(revoked_txt_value()) is None


def test_parse_txt_value() -> None:
    tags = parse_txt_value(' v=DKIM1 ;k = rsa; t=y:s; p=MIIB IjAN\n Bgkq ; ')
    assert tags == {'v': 'DKIM1', 'k': 'rsa', 't': 'y:s', 'p': 'MIIBIjANBgkq'}


@pytest.mark.parametrize(
    ('value', 'message'),
    [
        ('v=DKIM1; p=a; p=b', 'tag "p" appears twice'),
        ('k=rsa; v=DKIM1; p=', '"v=" must be the first tag'),
        ('v=DKIM1; garbage; p=', 'malformed tag "garbage"'),
        ('v=DKIM1; =x; p=', 'malformed tag "=x"'),
    ],
)
def test_parse_txt_value_refuses_malformed(value: str, message: str) -> None:
    with pytest.raises(RecordFormatError, match=re.escape(message)):
        parse_txt_value(value)


def test_record_key_ignores_formatting(rsa_key: rsa.RSAPrivateKey) -> None:
    value = public_txt_value(rsa_key)
    p = parse_txt_value(value)['p']
    reformatted = f'v=DKIM1;p={p[:100]} {p[100:]};k=rsa;s=email;'
    assert record_key(reformatted) == record_key(value)
    assert record_key(f'p={p}') == record_key(value)  # k defaults to rsa


def test_record_key_differs_between_keys(rsa_key: rsa.RSAPrivateKey, other_rsa_key: rsa.RSAPrivateKey) -> None:
    assert record_key(public_txt_value(rsa_key)) != record_key(public_txt_value(other_rsa_key))


@pytest.mark.parametrize(
    ('value', 'message'),
    [
        ('v=DKIM2; p=', 'unsupported version'),
        ('v=DKIM1; k=rsa', '"p=" is missing'),
        ('v=DKIM1; p=!!!', 'not valid base64'),
        ('v=DKIM1; k=dsa; p=', 'invalid DKIM key algorithm'),
    ],
)
def test_record_key_refuses_bad_records(value: str, message: str) -> None:
    with pytest.raises((RecordFormatError, InvalidNameError), match=message):
        record_key(value)


def test_record_fingerprint_matches_key(rsa_key: rsa.RSAPrivateKey, ed_key: ed25519.Ed25519PrivateKey) -> None:
    assert record_fingerprint(public_txt_value(rsa_key)) == fingerprint(rsa_key)
    assert record_fingerprint(public_txt_value(ed_key)) == fingerprint(ed_key)
    with pytest.raises(RecordFormatError, match='not a valid ed25519 public key'):
        record_fingerprint('v=DKIM1; k=ed25519; p=AAAA')


def test_txt_chunks_split_and_join(rsa_key: rsa.RSAPrivateKey) -> None:
    value = public_txt_value(rsa_key)
    chunks = txt_chunks(value)
    assert len(chunks) == 2
    assert all(len(c.encode()) <= 255 for c in chunks)
    assert ''.join(chunks) == value
    assert txt_chunks('abc', 2) == ('ab', 'c')
    assert txt_chunks('') == ('',)


def test_txt_chunks_refuses_bad_input() -> None:
    with pytest.raises(RecordFormatError, match='not ASCII'):
        txt_chunks('p=é')
    with pytest.raises(ValueError, match='chunk size 256'):
        txt_chunks('abc', 256)


# Fingerprints and loading ----------------------------------------------------------------------


def test_fingerprint_is_sha256_of_public_der(rsa_key: rsa.RSAPrivateKey) -> None:
    der = rsa_key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    expected = 'sha256:' + hashlib.sha256(der).hexdigest()
    assert fingerprint(rsa_key) == expected
    assert fingerprint(rsa_key.public_key()) == expected


def test_fingerprints_differ(rsa_key: rsa.RSAPrivateKey, other_rsa_key: rsa.RSAPrivateKey) -> None:
    assert fingerprint(rsa_key) != fingerprint(other_rsa_key)


def test_fingerprint_reveals_no_key_material(rsa_key: rsa.RSAPrivateKey) -> None:
    pem = private_key_pem(rsa_key).decode()
    body = ''.join(pem.splitlines()[1:-1])
    assert re.fullmatch(r'sha256:[0-9a-f]{64}', fingerprint(rsa_key))
    assert fingerprint(rsa_key)[7:] not in body


def test_load_public_key_from_private_key_file(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, ed_key: ed25519.Ed25519PrivateKey
) -> None:
    for key in (rsa_key, ed_key):
        path = tmp_path / 'k.pem'
        path.write_bytes(private_key_pem(key))
        assert fingerprint(load_public_key(path)) == fingerprint(key)
        assert fingerprint(load_private_key(path)) == fingerprint(key)


def test_private_key_pem_is_pkcs8(rsa_key: rsa.RSAPrivateKey) -> None:
    pem = private_key_pem(rsa_key)
    assert pem.startswith(b'-----BEGIN PRIVATE KEY-----\n')


def test_load_refuses_garbage_without_quoting_it(tmp_path: Path) -> None:
    path = tmp_path / 'bad.key'
    path.write_bytes(b'-----BEGIN PRIVATE KEY-----\nSECRETSECRET\n-----END PRIVATE KEY-----\n')
    with pytest.raises(KeyFileError, match='not a PEM RSA or Ed25519 private key') as info:
        load_private_key(path)
    assert 'SECRETSECRET' not in str(info.value)
    assert str(path) in str(info.value)


def test_load_refuses_missing_encrypted_and_ec_keys(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(KeyFileError, match='cannot read private key file'):
        load_private_key(tmp_path / 'missing.key')
    encrypted = tmp_path / 'enc.key'
    encrypted.write_bytes(
        rsa_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b'pw'),
        )
    )
    with pytest.raises(KeyFileError, match='it is encrypted'):
        load_private_key(encrypted)
    ec_path = tmp_path / 'ec.key'
    ec_path.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    with pytest.raises(KeyFileError, match='unsupported key type'):
        load_private_key(ec_path)


# dkimpy: the published record verifies real signatures ----------------------------------------


def _dnsfunc(records: dict[bytes, str]):  # type: ignore[no-untyped-def]
    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        value = records.get(name)
        return None if value is None else value.encode('ascii')

    return lookup


def test_dkimpy_verifies_rsa_signature(rsa_key: rsa.RSAPrivateKey) -> None:
    header = dkim.sign(MESSAGE, b's2026q4', b'example.com', private_key_pem(rsa_key))
    assert b'a=rsa-sha256' in header
    txt = public_txt_value(rsa_key)
    # The verifier sees the chunks joined with nothing in between.
    served = ''.join(txt_chunks(txt))
    assert dkim.verify(header + MESSAGE, dnsfunc=_dnsfunc({b's2026q4._domainkey.example.com.': served}))


def test_dkimpy_rejects_rsa_signature_with_other_or_revoked_key(
    rsa_key: rsa.RSAPrivateKey, other_rsa_key: rsa.RSAPrivateKey
) -> None:
    header = dkim.sign(MESSAGE, b's2026q4', b'example.com', private_key_pem(rsa_key))
    name = b's2026q4._domainkey.example.com.'
    assert not dkim.verify(header + MESSAGE, dnsfunc=_dnsfunc({name: public_txt_value(other_rsa_key)}))
    assert not dkim.verify(header + MESSAGE, dnsfunc=_dnsfunc({name: revoked_txt_value()}))
    tampered = MESSAGE.replace(b'Hello', b'Jello')
    assert not dkim.verify(header + tampered, dnsfunc=_dnsfunc({name: public_txt_value(rsa_key)}))


def _ed25519_signing_key(key: ed25519.Ed25519PrivateKey) -> bytes:
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    return base64.b64encode(raw)


def test_dkimpy_verifies_ed25519_signature(ed_key: ed25519.Ed25519PrivateKey) -> None:
    pytest.importorskip('nacl', reason='dkimpy needs PyNaCl (dkimpy[ed25519]) for Ed25519')
    header = dkim.sign(
        MESSAGE, b's2026q4e', b'example.com', _ed25519_signing_key(ed_key), signature_algorithm=b'ed25519-sha256'
    )
    assert b'a=ed25519-sha256' in header
    name = b's2026q4e._domainkey.example.com.'
    assert dkim.verify(header + MESSAGE, dnsfunc=_dnsfunc({name: public_txt_value(ed_key)}))


def test_dkimpy_rejects_ed25519_signature_with_other_key(ed_key: ed25519.Ed25519PrivateKey) -> None:
    pytest.importorskip('nacl', reason='dkimpy needs PyNaCl (dkimpy[ed25519]) for Ed25519')
    header = dkim.sign(
        MESSAGE, b's2026q4e', b'example.com', _ed25519_signing_key(ed_key), signature_algorithm=b'ed25519-sha256'
    )
    name = b's2026q4e._domainkey.example.com.'
    other = generate_private_key('ed25519')
    assert not dkim.verify(header + MESSAGE, dnsfunc=_dnsfunc({name: public_txt_value(other)}))
    assert not dkim.verify(header + MESSAGE, dnsfunc=_dnsfunc({name: revoked_txt_value('ed25519')}))
