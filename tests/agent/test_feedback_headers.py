"""List-Unsubscribe (RFC 2369) with one-click (RFC 8058), the return path and the id header an application adds."""

from __future__ import annotations

import email
import email.message
import email.policy
import email.utils
import re
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from mailinfra_agent.feedback import verp
from mailinfra_agent.feedback.headers import (
    LIST_UNSUBSCRIBE,
    LIST_UNSUBSCRIBE_POST,
    MESSAGE_POLICY,
    envelope_sender,
    id_header,
    list_unsubscribe_headers,
    unsubscribe_url,
)
from mailinfra_agent.feedback.message import decoders_for, parse_message
from mailinfra_agent.feedback.tokens import ID_HEADER, read_id, token_from_subject, verify_token

KEY = b'k' * 32
NOW = 1_780_000_000.0
BASE = 'https://unsub.example.com/u'
MAILTO = 'unsubscribe@bounces.example.com'


def uris(value: str) -> list[str]:
    """The URIs of an RFC 2369 field: '<' URI '>' separated by commas."""
    assert re.fullmatch(r'<[^<>\s]+>(?:,\s*<[^<>\s]+>)*', value), value
    return re.findall(r'<([^<>]+)>', value)


def test_both_uris_and_one_click() -> None:
    headers = list_unsubscribe_headers('Ann@example.org', 'marketing', BASE, MAILTO, [KEY], NOW, segment='weekly')
    assert headers[LIST_UNSUBSCRIBE_POST] == 'List-Unsubscribe=One-Click'
    https, mailto = uris(headers[LIST_UNSUBSCRIBE])
    url = urlsplit(https)
    assert (url.scheme, url.hostname) == ('https', 'unsub.example.com')
    token = url.path.rsplit('/', 1)[1]
    assert url.path == f'/u/{token}'
    assert verify_token(token, [KEY], NOW, 86400).recipient == 'Ann@example.org'
    assert mailto.startswith(f'mailto:{MAILTO}?subject=')
    subject = parse_qs(urlsplit(mailto).query)['subject'][0]
    assert token_from_subject(subject) == token
    assert unquote(mailto.partition('subject=')[2]) == f'unsubscribe {token}'


def test_https_only() -> None:
    headers = list_unsubscribe_headers('a@b.example', 'marketing', BASE + '/', None, [KEY], NOW)
    (https,) = uris(headers[LIST_UNSUBSCRIBE])
    assert https.startswith(BASE + '/') and '//' not in https[len('https://') :]


def message_with(headers: dict[str, str], policy: email.policy.Policy, to: str) -> bytes:
    message = EmailMessage(policy=policy)
    message['From'] = 'news@example.com'
    message['To'] = to
    for name, value in headers.items():
        message[name] = value
    message.set_content('hello')
    return message.as_bytes()


def test_headers_survive_a_real_message() -> None:
    """Written with MESSAGE_POLICY, the fields are on the wire verbatim and parse back unchanged."""
    recipient = 'a.rather.long.local.part.of.an.address@subdomain.example.org'
    headers = list_unsubscribe_headers(recipient, 'marketing', BASE, MAILTO, [KEY], NOW, segment='s' * 40)
    headers |= id_header(recipient, 'marketing', [KEY], segment='weekly', campaign='42')
    data = message_with(headers, MESSAGE_POLICY, recipient)
    lines = data.split(b'\r\n')  # MESSAGE_POLICY writes CRLF
    assert max(len(line) for line in lines) <= 998
    assert f'{LIST_UNSUBSCRIBE}: {headers[LIST_UNSUBSCRIBE]}'.encode() in lines
    assert f'{LIST_UNSUBSCRIBE_POST}: List-Unsubscribe=One-Click'.encode() in lines
    assert b'=?' not in data
    for policy in (email.policy.compat32, email.policy.default):  # what a receiver's parser sees
        parsed = email.message_from_bytes(data, policy=policy)
        for name, value in headers.items():
            assert ' '.join(str(parsed[name]).split()) == value
        assert read_id(str(parsed[ID_HEADER]), [KEY]).matches(recipient, [KEY])


def test_default_policy_would_encode_the_urls() -> None:
    """Why MESSAGE_POLICY exists: the default 78-column policy turns an unfoldable URI into encoded words."""
    headers = list_unsubscribe_headers('a@b.example', 'marketing', BASE, MAILTO, [KEY], NOW)
    assert b'List-Unsubscribe: =?utf-8?q?' in message_with(headers, email.policy.default, 'a@b.example')
    assert b'=?' not in message_with(headers, MESSAGE_POLICY, 'a@b.example')


def test_id_header_folds_without_encoded_words() -> None:
    header = id_header('a@b.example', 'marketing-newsletters', [KEY], segment='weekly-germany', campaign='c' * 40)
    assert all(len(word) <= 48 for word in header[ID_HEADER].split())
    data = message_with(header, email.policy.default, 'a@b.example')
    assert b'=?' not in data
    assert max(len(line) for line in data.splitlines()) <= 78
    parsed = email.message_from_bytes(data, policy=email.policy.compat32)
    decoded = read_id(str(parsed[ID_HEADER]), [KEY])  # folded value: the whitespace is ignored
    assert (decoded.stream, decoded.segment) == ('marketing-newsletters', 'weekly-germany')


def test_longest_inputs_stay_within_a_header_line() -> None:
    recipient = 'l' * 64 + '@' + '.'.join(['d' * 63] * 2 + ['e' * 57, 'com'])
    assert len(recipient) == 254
    headers = list_unsubscribe_headers(
        recipient,
        's' * 63,
        'https://unsub.example.com/' + 'p' * 200,
        'u' * 64 + '@' + 'b' * 180 + '.example',
        [KEY],
        NOW,
        segment='\u00e9' * 31 + 'x',
    )
    for uri in uris(headers[LIST_UNSUBSCRIBE]):
        assert len(f'{LIST_UNSUBSCRIBE}: <{uri}>,') <= 998
    token = urlsplit(uris(headers[LIST_UNSUBSCRIBE])[0]).path.rsplit('/', 1)[1]
    assert verify_token(token, [KEY], NOW, 1).recipient == recipient
    with pytest.raises(ValueError, match='cannot be one header line'):
        list_unsubscribe_headers(recipient, 's', 'https://unsub.example.com/' + 'p' * 700, None, [KEY], NOW)


@pytest.mark.parametrize(
    'base',
    [
        'http://unsub.example.com/u',
        'https:///u',
        'https://unsub.example.com/u?list=1',
        'https://unsub.example.com/u#x',
        'https://unsub.example.com/u v',
        'unsub.example.com/u',
        # an empty query or fragment: the token would land behind the '?' or '#', and the endpoint sees '/u'
        'https://unsub.example.com/u?',
        'https://unsub.example.com/u#',
        # not ASCII: the email package would write the whole field as RFC 2047 encoded words
        'https://b\u00fccher.example/u',
        'https://unsub.example.com/\u00fc',
        # not URI characters, a broken percent-escape, credentials, a port out of range
        'https://unsub.example.com/a<b',
        'https://unsub.example.com/a"b',
        'https://unsub.example.com/u%2',
        'https://user:secret@unsub.example.com/u',
        # a '#', '/' or '?' in the password moves the '@' out of what urlsplit calls the netloc
        'https://user:se#cret@unsub.example.com/u',
        'https://user:se/cret@unsub.example.com/u',
        'https://unsub.example.com:99999/u',
        'https://unsub.example.com:0/u',
    ],
)
def test_bad_base_url(base: str) -> None:
    with pytest.raises(ValueError, match='unsubscribe base URL') as error:
        list_unsubscribe_headers('a@b.example', 'marketing', base, None, [KEY], NOW)
    assert 'cret' not in str(error.value)


@pytest.mark.parametrize('address', ['no-at-sign', 'a@b.example?cc=x', '<a@b.example>', 'a b@c.example', ''])
def test_bad_mailto_address(address: str) -> None:
    with pytest.raises(ValueError, match='not a plain address'):
        list_unsubscribe_headers('a@b.example', 'marketing', BASE, address, [KEY], NOW)


def test_unsubscribe_url() -> None:
    assert unsubscribe_url('https://u.example.com', 'TOKEN') == 'https://u.example.com/TOKEN'
    assert unsubscribe_url('https://u.example.com:8443/a/b/', 'T') == 'https://u.example.com:8443/a/b/T'
    assert unsubscribe_url('https://xn--bcher-kva.example/%C3%BC', 'T') == 'https://xn--bcher-kva.example/%C3%BC/T'
    assert unsubscribe_url('https://[2001:db8::1]:8443/u', 'T') == 'https://[2001:db8::1]:8443/u/T'


@pytest.mark.parametrize('local', ['un#sub', 'a/b', 'list=news', 'x{y}|z^`', "o'neil!+tag", 'plain.name-1_x~y'])
def test_the_mailto_address_is_percent_encoded(local: str) -> None:
    """RFC 6068 §2: '#', '/', '=' and characters URIs do not allow are escaped; a mail client gets the address back."""
    headers = list_unsubscribe_headers('a@b.example', 'marketing', BASE, f'{local}@bounces.example.com', [KEY], NOW)
    mailto = uris(headers[LIST_UNSUBSCRIBE])[1]
    assert re.fullmatch(r"mailto:[A-Za-z0-9\-._~!$'*+%]+@bounces\.example\.com\?subject=[A-Za-z0-9%_-]+", mailto)
    to, to_address, subject = mailto_fields(mailto)
    assert (to, to_address) == (f'{local}@bounces.example.com', to)
    assert token_from_subject(subject) is not None


def mailto_fields(mailto: str) -> tuple[str, str, str]:
    """What a mail client takes from a mailto URI (RFC 6068): (address, the same, subject), percent-decoded."""
    url = urlsplit(mailto)
    assert url.scheme == 'mailto' and not url.fragment
    address = unquote(url.path)
    return address, address, parse_qs(url.query)['subject'][0]


LONGEST = 'l' * 64 + '@' + '.'.join(['d' * 63] * 2 + ['e' * 57, 'com'])


@pytest.mark.parametrize('policy', [email.policy.SMTP, email.policy.default, email.policy.compat32])
@pytest.mark.parametrize(('recipient', 'segment'), [('Ann@example.org', 'weekly'), (LONGEST, '\u00e9' * 31 + 'x')])
def test_a_mailto_unsubscribe_sent_by_a_mail_client_is_processed(
    policy: email.policy.Policy, recipient: str, segment: str
) -> None:
    """The mailto URI followed as a mail client does, the message read as the bounce MX's pipe reads it; a long
    subject is folded or written as RFC 2047 encoded words by the client's library, and the token still reads."""
    headers = list_unsubscribe_headers(
        recipient, 'marketing', BASE, 'un#sub@bounces.example.com', [KEY], NOW, segment=segment
    )
    address, _, subject = mailto_fields(uris(headers[LIST_UNSUBSCRIBE])[1])
    reply = email.message.Message(policy) if policy is email.policy.compat32 else EmailMessage(policy=policy)
    reply['From'] = 'someone.else@example.org'  # never trusted: the token names the recipient
    reply['To'] = address
    reply['Subject'] = subject
    reply['Date'] = email.utils.formatdate(NOW + 60)
    reply['Message-ID'] = '<reply-1@example.org>'
    reply.set_payload('This message will unsubscribe you.\n')
    decoders = decoders_for([KEY], 86400, clock=lambda: NOW + 60)
    (event,) = parse_message(reply.as_bytes(), 'pipe', address, decoders=decoders)
    assert (event.kind, event.recipient, event.stream, event.segment) == (
        'unsubscribe',
        recipient.lower(),
        'marketing',
        segment,
    )


def test_envelope_sender_is_the_signed_verp_address() -> None:
    sender = envelope_sender(
        'marketing', 'bounces.example.com', [KEY], segment='7', campaign='12', message_id='99', recipient='a@b.de'
    )
    assert sender == verp.encode(
        [KEY],
        stream='marketing',
        domain='bounces.example.com',
        segment='7',
        campaign='12',
        message_id='99',
        recipient='a@b.de',
    )
    decoded = verp.decode(sender, [KEY])
    assert (decoded.stream, decoded.segment, decoded.campaign, decoded.message_id) == ('marketing', '7', '12', '99')
    with pytest.raises(verp.VerpError):
        envelope_sender('marketing', 'bounces.example.com', [KEY], prefix='B-')


def test_id_header() -> None:
    header = id_header('a@b.example', 'marketing', [KEY], segment='weekly')
    assert list(header) == [ID_HEADER]
    decoded = read_id(header[ID_HEADER], [KEY])
    assert (decoded.stream, decoded.segment, decoded.campaign) == ('marketing', 'weekly', None)
