"""Signed VERP return paths: round trip, the 64-octet limit, forgery, truncation, case folding, rotation, key files."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailinfra_agent.feedback import signing
from mailinfra_agent.feedback.events import EventError
from mailinfra_agent.feedback.verp import (
    MAX_LOCAL_PART,
    KeyFileError,
    VerpAddress,
    VerpError,
    decode,
    decoder,
    encode,
    new_key,
    payload_capacity,
    read_key_file,
)

KEY = b'k' * 32
OLD_KEY = b'o' * 40
NEW_KEY = b'n' * 32


def local_part(address: str) -> str:
    return address.rpartition('@')[0]


def test_round_trip_all_fields() -> None:
    address = encode(
        [KEY],
        stream='marketing',
        domain='bounces.example.com',
        segment='42',
        campaign='2026-12',
        message_id='123456789',
    )
    assert address.startswith('b-') and address.endswith('@bounces.example.com')
    assert len(local_part(address)) <= MAX_LOCAL_PART
    assert decode(address, [KEY]) == VerpAddress(
        prefix='b',
        domain='bounces.example.com',
        stream='marketing',
        segment='42',
        campaign='2026-12',
        message_id='123456789',
    )


def test_recipient_included_when_it_fits_and_dropped_when_not() -> None:
    short = encode([KEY], stream='t', domain='rp.example.com', message_id='7', recipient='ann@ex.org')
    assert decode(short, [KEY]).recipient == 'ann@ex.org'
    long_recipient = 'a' * 64 + '@' + 'example.com'
    dropped = encode([KEY], stream='t', domain='rp.example.com', message_id='7', recipient=long_recipient)
    assert len(local_part(dropped)) <= MAX_LOCAL_PART
    decoded = decode(dropped, [KEY])
    assert decoded.recipient is None and decoded.message_id == '7' and decoded.stream == 't'


def test_compact_ids_round_trip_exactly() -> None:
    ids = ['0', '18446744073709551615', '00ff', 'deadbeef', str(uuid.UUID(int=2**128 - 1)), 'AB', '0012', 'x-é']
    ids += ['a', 'ab', 'abc', 'abcd', 'news.de_2026-12', 'zz9', '...', '-']
    for value in ids:
        address = encode([KEY], stream='s', domain='rp.example.com', message_id=value)
        assert decode(address, [KEY]).message_id == value
    # a UUID packs into 16 octets, not 36: stream, UUID message id and a small segment fit the default prefix
    address = encode([KEY], stream='marketing', domain='rp.example.com', message_id=str(uuid.uuid4()), segment='3')
    assert len(local_part(address)) <= MAX_LOCAL_PART


def test_capacity() -> None:
    assert payload_capacity('b', '-') == 29
    assert payload_capacity('abcdefgh', '+') == 25


def test_too_long_fields_are_refused_at_build_time() -> None:
    with pytest.raises(VerpError) as error:
        encode([KEY], stream='marketing', domain='rp.example.com', campaign='Spring-Sale-2026-Newsletter-DE')
    assert error.value.reason == 'too-long'
    assert 'only 29 fit' in str(error.value)
    # the same fields fit as lower-case names (two octets per three characters)
    fits = encode([KEY], stream='marketing', domain='rp.example.com', campaign='spring-sale-2026-newsletter-de')
    assert decode(fits, [KEY]).campaign == 'spring-sale-2026-newsletter-de'
    with pytest.raises(VerpError, match='packs into 300 octets') as error:
        encode([KEY], stream='x' * 300, domain='rp.example.com')
    assert error.value.reason == 'too-long'


@pytest.mark.parametrize(
    ('kwargs', 'text'),
    [
        ({'prefix': 'Bounce'}, 'invalid VERP prefix'),
        ({'prefix': 'toolongprefix'}, 'invalid VERP prefix'),
        ({'separator': '.'}, 'invalid VERP separator'),
        ({'domain': 'localhost'}, 'invalid return-path domain'),
        ({'domain': 'bad_label.example.com'}, 'invalid return-path domain'),
        ({'stream': ''}, 'needs a stream'),
    ],
)
def test_bad_build_arguments(kwargs: dict[str, str], text: str) -> None:
    arguments = {'stream': 's', 'domain': 'rp.example.com'} | kwargs
    with pytest.raises(VerpError, match=text) as error:
        encode([KEY], **arguments)
    assert error.value.reason == 'invalid'


def test_short_key_is_refused_without_showing_it() -> None:
    with pytest.raises(ValueError, match='at least 32') as error:
        encode([b'secret-short-key'], stream='s', domain='rp.example.com')
    assert 'secret-short-key' not in str(error.value)
    with pytest.raises(TypeError):
        encode(KEY, stream='s', domain='rp.example.com')  # type: ignore[arg-type]


@pytest.mark.parametrize('change', [str.lower, str.upper, str.swapcase])
def test_case_folding(change: object) -> None:
    address = encode([KEY], prefix='bx1', separator='+', stream='Mixed', domain='RP.example.com', segment='Seg')
    assert address == address.lower()
    decoded = decode(change(address), [KEY])  # type: ignore[operator]
    assert (decoded.stream, decoded.segment, decoded.prefix, decoded.domain) == (
        'Mixed',
        'Seg',
        'bx1',
        'rp.example.com',
    )


def test_forged_signature_is_refused() -> None:
    address = encode([KEY], stream='marketing', domain='rp.example.com', message_id='99')
    with pytest.raises(VerpError) as error:
        decode(address, [b'x' * 32])
    assert error.value.reason == 'bad-signature'
    assert isinstance(error.value, EventError)
    local, _, domain = address.rpartition('@')
    # change any one payload character, up to the last: the tag no longer matches or the spelling is not canonical
    for position in range(2, len(local)):
        replacement = 'a' if local[position] != 'a' else 'b'
        altered = local[:position] + replacement + local[position + 1 :] + '@' + domain
        with pytest.raises(VerpError) as error:
            decode(altered, [KEY])
        assert error.value.reason in {'bad-signature', 'truncated', 'malformed', 'unsupported-version'}
    # the same payload under another prefix is not valid: the prefix is signed
    with pytest.raises(VerpError) as error:
        decode('c' + local[1:] + '@' + domain, [KEY])
    assert error.value.reason == 'bad-signature'


def test_forged_payload_with_valid_structure() -> None:
    """A payload an attacker builds with their own key has a perfect structure and still fails."""
    forged = encode([b'a' * 32], stream='marketing', domain='rp.example.com', recipient='victim@ex.org')
    with pytest.raises(VerpError) as error:
        decode(forged, [KEY])
    assert error.value.reason == 'bad-signature'


def test_truncated_is_refused() -> None:
    address = encode([KEY], stream='marketing', domain='rp.example.com', message_id='99', segment='1')
    local, _, domain = address.rpartition('@')
    reasons = set()
    for cut in range(1, len(local) - 2):
        with pytest.raises(VerpError) as error:
            decode(local[:-cut] + '@' + domain, [KEY])
        reasons.add(error.value.reason)
    assert reasons <= {'truncated', 'bad-signature'}
    assert 'truncated' in reasons
    with pytest.raises(VerpError) as error:
        decode(local[:-3] + '@' + domain, [KEY])
    assert error.value.reason == 'truncated'


def test_extra_octets_after_signature_are_malformed() -> None:
    address = encode([KEY], stream='marketing', domain='rp.example.com')
    prefix, _, payload = local_part(address).partition('-')
    data = signing.b32_decode(payload) + b'\0'
    with pytest.raises(VerpError) as error:
        decode(f'{prefix}-{signing.b32_encode(data)}@rp.example.com', [KEY])
    assert error.value.reason == 'malformed'


@pytest.mark.parametrize(
    'address',
    [
        'john@example.com',
        'john.doe@example.com',
        'b-x1@example.com',
        'postmaster',
        '',
        '<>',
        'a-b-c@@',
        'b-@rp.example.com',
        'b-' + 'a' * 600 + '@rp.example.com',
    ],
)
def test_not_verp(address: str) -> None:
    with pytest.raises(VerpError) as error:
        decode(address, [KEY])
    assert error.value.reason == 'not-verp'


def test_prefix_and_separator_restrict_what_is_accepted() -> None:
    address = encode([KEY], prefix='m', separator='+', stream='marketing', domain='rp.example.com')
    assert decode(f'<{address}>', [KEY], prefix='M', separator='+').stream == 'marketing'
    with pytest.raises(VerpError) as error:
        decode(address, [KEY], prefix='b')
    assert error.value.reason == 'not-verp'
    with pytest.raises(VerpError) as error:
        decode(address, [KEY], separator='-')
    assert error.value.reason == 'not-verp'


def test_unknown_version() -> None:
    data = bytes([2 << 5]) + signing.pack_field('s') + b'\0' * 8
    with pytest.raises(VerpError) as error:
        decode(f'b-{signing.b32_encode(data)}@rp.example.com', [KEY])
    assert error.value.reason == 'unsupported-version'


def test_key_rotation() -> None:
    old = encode([OLD_KEY], stream='marketing', domain='rp.example.com', message_id='1')
    new = encode([NEW_KEY, OLD_KEY], stream='marketing', domain='rp.example.com', message_id='1')
    assert old != new
    assert decode(new, [NEW_KEY, OLD_KEY]).key_index == 0
    assert decode(old, [NEW_KEY, OLD_KEY]).key_index == 1
    assert decode(old, [NEW_KEY, OLD_KEY]) == decode(new, [NEW_KEY, OLD_KEY])
    with pytest.raises(VerpError) as error:
        decode(old, [NEW_KEY])  # the old key was retired
    assert error.value.reason == 'bad-signature'


def test_decoder_for_parsers() -> None:
    decode_or_none = decoder([KEY], prefix='b')
    address = encode([KEY], stream='marketing', domain='rp.example.com')
    assert decode_or_none(address) == decode(address, [KEY])
    assert decode_or_none('someone@example.com') is None
    with pytest.raises(ValueError):
        decode_or_none(encode([OLD_KEY], stream='marketing', domain='rp.example.com'))


ids = st.one_of(
    st.none(),
    st.integers(min_value=0, max_value=2**64 - 1).map(str),
    st.uuids().map(str),
    st.text(max_size=70),
)


@settings(max_examples=300, deadline=None)
@given(
    prefix=st.from_regex(r'[a-z0-9]{1,8}', fullmatch=True),
    separator=st.sampled_from(['-', '+', '=']),
    stream=st.text(min_size=1, max_size=70),
    segment=ids,
    campaign=ids,
    message_id=ids,
    recipient=st.one_of(st.none(), st.emails(), st.just('x' * 64 + '@' + 'd' * 63 + '.' + 'e' * 63 + '.com')),
    upper=st.booleans(),
)
def test_property_local_part_limit_and_round_trip(
    prefix: str,
    separator: str,
    stream: str,
    segment: str | None,
    campaign: str | None,
    message_id: str | None,
    recipient: str | None,
    upper: bool,
) -> None:
    try:
        address = encode(
            [KEY],
            prefix=prefix,
            separator=separator,
            stream=stream,
            domain='return-path.example.com',
            segment=segment,
            campaign=campaign,
            message_id=message_id,
            recipient=recipient,
        )
    except VerpError as error:
        assert error.reason == 'too-long'
        try:
            packed = sum(len(signing.pack_field(v)) for v in (stream, segment, campaign, message_id) if v is not None)
        except ValueError:
            return  # one field alone packs into more than 255 octets
        assert packed > payload_capacity(prefix, separator)
        return
    assert len(local_part(address).encode()) <= MAX_LOCAL_PART
    decoded = decode(address.upper() if upper else address, [KEY])
    assert (decoded.stream, decoded.segment, decoded.campaign, decoded.message_id) == (
        stream,
        segment,
        campaign,
        message_id,
    )
    assert decoded.recipient in (None, recipient)


@settings(max_examples=100, deadline=None)
@given(
    stream=st.text(alphabet='abcdefghijklmnopqrstuvwxyz_', min_size=1, max_size=12),
    segment=st.integers(min_value=0, max_value=65535).map(str),
    message_id=st.integers(min_value=0, max_value=2**64 - 1).map(str),
    recipient=st.emails(),
)
def test_property_documented_budget_always_fits(stream: str, segment: str, message_id: str, recipient: str) -> None:
    """A stream name of up to 12 letters, a segment number and a 64-bit message number always fit with prefix b."""
    address = encode(
        [KEY], stream=stream, domain='rp.example.com', segment=segment, message_id=message_id, recipient=recipient
    )
    assert len(local_part(address)) <= MAX_LOCAL_PART
    assert decode(address, [KEY]).message_id == message_id


# key files


def write_key(path: Path, data: bytes, mode: int) -> Path:
    path.write_bytes(data)
    os.chmod(path, mode)
    return path


def test_read_key_file(tmp_path: Path) -> None:
    key = new_key()
    assert len(key) >= 64
    path = write_key(tmp_path / 'key', key + b'\n', 0o600)
    assert read_key_file(path) == key
    assert read_key_file(write_key(tmp_path / 'ro', key, 0o400)) == key


@pytest.mark.parametrize('mode', [0o644, 0o640, 0o604, 0o660, 0o602])
def test_key_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    key = new_key()
    path = write_key(tmp_path / 'key', key, mode)
    with pytest.raises(KeyFileError, match='chmod 600') as error:
        read_key_file(path)
    assert f'{mode:04o}' in str(error.value)
    assert key.decode() not in str(error.value) and key.decode() not in repr(error.value)


def test_short_key_file_is_refused(tmp_path: Path) -> None:
    path = write_key(tmp_path / 'key', b'hunter2-is-my-secret\n', 0o600)
    with pytest.raises(KeyFileError, match='20 bytes, at least 32') as error:
        read_key_file(path)
    assert 'hunter2' not in str(error.value) and 'hunter2' not in repr(error.value)


def test_missing_and_odd_key_files(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match='cannot open'):
        read_key_file(tmp_path / 'missing')
    target = write_key(tmp_path / 'key', new_key(), 0o600)
    (tmp_path / 'link').symlink_to(target)
    with pytest.raises(KeyFileError, match='cannot open'):
        read_key_file(tmp_path / 'link')  # symbolic links are not followed
    os.mkfifo(tmp_path / 'fifo', 0o600)
    with pytest.raises(KeyFileError, match='not a regular file'):
        read_key_file(tmp_path / 'fifo')  # and does not block waiting for a writer


def test_key_never_in_reprs_or_errors() -> None:
    key = new_key()
    address = encode([key], stream='s', domain='rp.example.com', message_id='1')
    decoded = decode(address, [key])
    assert key.decode() not in repr(decoded)
    messages = []
    for bad in (address[:-20] + '@rp.example.com', address.replace('b-', 'b-a', 1)):
        with pytest.raises(VerpError) as error:
            decode(bad, [key])
        messages.append(f'{error.value} {error.value!r}')
    with pytest.raises(ValueError) as short:
        decode(address, [key[:31]])
    messages.append(f'{short.value} {short.value!r}')
    assert not any(key.decode() in message or key.decode()[:31] in message for message in messages)
