"""One-click unsubscribe tokens and the X-Mailinfra-Id header: round trip, forgery, expiry, rotation, privacy."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailinfra_agent.feedback.events import EventError
from mailinfra_agent.feedback.tokens import (
    ID_HEADER,
    MailinfraId,
    TokenError,
    UnsubscribeToken,
    make_id,
    make_token,
    read_id,
    recipient_id,
    token_decoder,
    token_from_subject,
    verify_token,
)

KEY = b'k' * 32
OLD_KEY = b'o' * 48
NOW = 1_780_000_000.0
DAY = 86400


def test_token_round_trip() -> None:
    token = make_token('Ann@Example.org', 'marketing', [KEY], NOW, segment='weekly-de')
    assert base64.urlsafe_b64decode(token + '=' * (-len(token) % 4))  # URL-safe base64
    assert set(token) <= set('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_')
    assert verify_token(token, [KEY], NOW + 10, 30 * DAY) == UnsubscribeToken(
        recipient='Ann@Example.org', stream='marketing', segment='weekly-de', issued=int(NOW)
    )
    plain = verify_token(make_token('a@b.example', 'cold', [KEY], NOW), [KEY], NOW, DAY)
    assert plain.segment is None and plain.stream == 'cold'


LINE_BREAKING = ('Cc', 'Zl', 'Zp')
"""Unicode categories make_token refuses: control characters and the line and paragraph separators."""
PRINTABLE = st.characters(blacklist_categories=(*LINE_BREAKING, 'Cs'))
"""Naming categories drops Hypothesis's default exclusion of surrogates (Cs): excluded again here."""


@settings(max_examples=200, deadline=None)
@given(
    recipient=st.emails(),
    stream=st.text(PRINTABLE, min_size=1, max_size=63).filter(lambda s: len(s.encode()) <= 63),
    segment=st.one_of(st.none(), st.text(PRINTABLE, max_size=20)),
    now=st.integers(min_value=0, max_value=2**40 - 1),
)
def test_token_property_round_trip(recipient: str, stream: str, segment: str | None, now: int) -> None:
    token = make_token(recipient, stream, [KEY], now, segment=segment)
    result = verify_token(token, [KEY], now, 0)
    assert (result.recipient, result.stream, result.segment, result.issued) == (recipient, stream, segment, now)


@settings(max_examples=200, deadline=None)
@given(
    before=st.text(PRINTABLE, max_size=10),
    control=st.characters(whitelist_categories=LINE_BREAKING),
    after=st.text(max_size=10),
    field=st.sampled_from(['recipient', 'stream', 'segment']),
)
def test_token_property_line_breaking_characters_are_refused(before: str, control: str, after: str, field: str) -> None:
    text = before + control + after
    values = {'recipient': 'a@b.example', 'stream': 'marketing', 'segment': 'weekly'}
    values[field] = text + '@b.example' if field == 'recipient' else text
    with pytest.raises(ValueError, match='control character'):
        make_token(values['recipient'], values['stream'], [KEY], NOW, segment=values['segment'])


@pytest.mark.parametrize('field', ['recipient', 'stream', 'segment'])
def test_a_lone_surrogate_is_refused_as_bad_text(field: str) -> None:
    # it raised the codec's UnicodeEncodeError, which names no field
    values = {'recipient': 'a@b.example', 'stream': 'marketing', 'segment': 'weekly'}
    values[field] = '\ud800' + values[field]
    with pytest.raises(ValueError, match='lone surrogate'):
        make_token(values['recipient'], values['stream'], [KEY], NOW, segment=values['segment'])


def test_expired_and_future() -> None:
    token = make_token('a@b.example', 'marketing', [KEY], NOW)
    assert verify_token(token, [KEY], NOW + 30 * DAY, 30 * DAY).recipient == 'a@b.example'  # the last valid second
    with pytest.raises(TokenError) as error:
        verify_token(token, [KEY], NOW + 30 * DAY + 1, 30 * DAY)
    assert error.value.reason == 'expired'
    assert verify_token(token, [KEY], NOW - 300, DAY).stream == 'marketing'  # clock skew allowed
    with pytest.raises(TokenError) as error:
        verify_token(token, [KEY], NOW - 301, DAY)
    assert error.value.reason == 'future'


def test_forged_tokens() -> None:
    token = make_token('a@b.example', 'marketing', [KEY], NOW)
    with pytest.raises(TokenError) as error:
        verify_token(token, [b'x' * 32], NOW, DAY)
    assert error.value.reason == 'forged'
    assert isinstance(error.value, EventError)
    raw = bytearray(base64.urlsafe_b64decode(token + '=' * (-len(token) % 4)))
    for position in range(len(raw)):
        altered = bytearray(raw)
        altered[position] ^= 0x01
        text = base64.urlsafe_b64encode(bytes(altered)).decode().rstrip('=')
        with pytest.raises(TokenError) as error:
            verify_token(text, [KEY], NOW, DAY)
        assert error.value.reason in {'forged', 'malformed'}
    # an older time under a valid-looking structure (to dodge expiry) does not verify either
    raw[1:6] = (int(NOW) + 100 * DAY).to_bytes(5, 'big')
    with pytest.raises(TokenError) as error:
        verify_token(base64.urlsafe_b64encode(bytes(raw)).decode().rstrip('='), [KEY], NOW + 100 * DAY, DAY)
    assert error.value.reason == 'forged'


@pytest.mark.parametrize('token', ['', 'a', 'abc$', 'a b', 'A' * 2000, 'AAAAA', 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'])
def test_malformed_tokens(token: str) -> None:
    with pytest.raises(TokenError) as error:
        verify_token(token, [KEY], NOW, DAY)
    assert error.value.reason == 'malformed'


def test_truncated_token_is_refused() -> None:
    token = make_token('a@b.example', 'marketing', [KEY], NOW)
    for cut in range(1, len(token)):
        with pytest.raises(TokenError) as error:
            verify_token(token[:-cut], [KEY], NOW, DAY)
        assert error.value.reason in {'forged', 'malformed'}


def test_token_key_rotation() -> None:
    old = make_token('a@b.example', 'marketing', [OLD_KEY], NOW)
    new = make_token('a@b.example', 'marketing', [KEY, OLD_KEY], NOW)
    assert verify_token(old, [KEY, OLD_KEY], NOW, DAY).key_index == 1
    assert verify_token(new, [KEY, OLD_KEY], NOW, DAY).key_index == 0
    with pytest.raises(TokenError) as error:
        verify_token(old, [KEY], NOW, DAY)
    assert error.value.reason == 'forged'


@pytest.mark.parametrize(
    ('recipient', 'stream', 'now', 'text'),
    [
        ('not-an-address', 'marketing', NOW, 'not an address'),
        ('a@b.example', '', NOW, 'stream name'),
        ('a@b.example', 'marketing', -1.0, 'out of range'),
        ('a' * 250 + '@b.example', 'marketing', NOW, 'at most 254'),
        ('a@b.example', 's' * 64, NOW, 'at most 63'),
        # a line break or other control character: no SMTP recipient has one, and it would reach logs and maps
        ('gone\n@gmail.com', 'marketing', NOW, 'control character'),
        ('a@b.example\r\nBcc: c@d.example', 'marketing', NOW, 'control character'),
        ('a@b.example', 'marketing\nunsubscribe: accepted', NOW, 'control character'),
        ('a@b.example\x00', 'marketing', NOW, 'control character'),
        ('a@b.example\x7f', 'marketing', NOW, 'control character'),
    ],
)
def test_bad_token_inputs(recipient: str, stream: str, now: float, text: str) -> None:
    with pytest.raises(ValueError, match=text):
        make_token(recipient, stream, [KEY], now)


def test_a_control_character_in_the_segment_is_refused() -> None:
    with pytest.raises(ValueError, match='control character'):
        make_token('a@b.example', 'marketing', [KEY], NOW, segment='weekly\n')
    assert make_token('\u00fcser@b\u00fccher.example', 'marketing', [KEY], NOW, segment='Woche f\u00fcr alle')


def test_token_decoder_and_subject() -> None:
    token = make_token('a@b.example', 'marketing', [KEY], NOW)
    decode = token_decoder([KEY], DAY, clock=lambda: NOW + 5)
    assert decode(token).recipient == 'a@b.example'
    expired = token_decoder([KEY], DAY, clock=lambda: NOW + 2 * DAY)
    with pytest.raises(ValueError, match='old'):
        expired(token)
    assert token_from_subject(f'unsubscribe {token}') == token
    assert token_from_subject(f'Re: Unsubscribe {token}') == token
    assert token_from_subject('unsubscribe') is None
    assert token_from_subject('please remove me') is None
    assert token_from_subject('unsubscribe me!') is None


def test_key_not_in_errors_or_reprs() -> None:
    key = b'K3y-that-must-never-be-shown-0123456789'
    token = make_token('a@b.example', 'marketing', [key], NOW)
    texts = [repr(verify_token(token, [key], NOW, DAY))]
    for call in (
        lambda: verify_token(token, [key], NOW + 2 * DAY, DAY),
        lambda: verify_token(token[:-4], [key], NOW, DAY),
        lambda: verify_token(token, [key[:20]], NOW, DAY),
        lambda: read_id('garbage', [key]),
    ):
        with pytest.raises(ValueError) as error:
            call()
        texts.append(f'{error.value} {error.value!r}')
    header = read_id(make_id('a@b.example', 's', [key]), [key])
    texts.append(repr(header))
    assert not any('K3y' in text for text in texts)


# X-Mailinfra-Id


def test_id_header_round_trip_and_case() -> None:
    assert ID_HEADER == 'X-Mailinfra-Id'
    value = make_id('Ann@Example.org', 'marketing', [KEY], segment='weekly', campaign='2026-12')
    assert value == value.lower()
    for spelling in (value, value.upper(), f'  {value}\t'):
        decoded = read_id(spelling, [KEY])
        assert decoded == MailinfraId('marketing', 'weekly', '2026-12', decoded.recipient_id)
        assert decoded.recipient is None
    only_stream = read_id(make_id('a@b.example', 'transactional', [KEY]), [KEY])
    assert (only_stream.segment, only_stream.campaign) == (None, None)


def test_id_header_does_not_carry_the_address() -> None:
    value = make_id('ann.example.person@example.org', 'marketing', [KEY], segment='s')
    text = value.replace(' ', '')
    raw = base64.b32decode(text.upper() + '=' * (-len(text) % 8))
    assert b'ann' not in raw and b'example.org' not in raw
    assert 'ann' not in value


def test_id_header_matches_the_recipient_only() -> None:
    decoded = read_id(make_id('Ann@Example.org', 'marketing', [KEY]), [KEY])
    assert decoded.matches('ann@example.org', [KEY])
    assert decoded.matches(' ANN@EXAMPLE.ORG ', [KEY])
    assert not decoded.matches('bob@example.org', [KEY])
    assert decoded.recipient_id == recipient_id('ann@example.org', KEY)
    assert decoded.recipient_id != recipient_id('ann@example.org', OLD_KEY)


def test_id_header_forged_and_malformed() -> None:
    value = make_id('a@b.example', 'marketing', [KEY], segment='s')
    with pytest.raises(TokenError) as error:
        read_id(value, [b'x' * 32])
    assert error.value.reason == 'forged'
    # an attacker's own header claiming another recipient, stream or segment does not verify
    with pytest.raises(TokenError) as error:
        read_id(make_id('victim@b.example', 'marketing', [b'a' * 32]), [KEY])
    assert error.value.reason == 'forged'
    for bad in ('', 'not base32!', value[:10], 'a' * 500, value + 'aaaaaaaa'):
        with pytest.raises(TokenError) as error:
            read_id(bad, [KEY])
        assert error.value.reason in {'malformed', 'forged'}
    with pytest.raises(TokenError) as error:
        read_id(value[:-3], [KEY])
    assert error.value.reason in {'malformed', 'forged'}


def test_id_header_rotation() -> None:
    old = make_id('a@b.example', 'marketing', [OLD_KEY])
    decoded = read_id(old, [KEY, OLD_KEY])
    assert decoded.key_index == 1
    assert decoded.matches('a@b.example', [KEY, OLD_KEY])
    with pytest.raises(TokenError):
        read_id(old, [KEY])


def test_id_header_field_limits() -> None:
    with pytest.raises(ValueError, match='stream name'):
        make_id('a@b.example', '', [KEY])
    with pytest.raises(ValueError, match='64 octets, at most 63'):
        make_id('a@b.example', 'marketing', [KEY], campaign='x' * 64)
    segment = 'Segment ' * 7 + 'x' * 7
    longest = make_id('a@b.example', 'é' * 31 + 'x', [KEY], segment=segment, campaign='\U0001f600' * 15)
    assert len(longest) <= 400  # 359 characters and the spaces between words
    assert read_id(longest, [KEY]).segment == segment
