"""RFC 3464 DSNs -> events (feedback/dsn.py through feedback/message.py), on real Postfix DSNs and public samples.

The ``postfix-*.eml`` samples were made by a throw-away Postfix (tests/agent/postfix_dsn.py) relaying to a loopback
sink that answered ``550 5.1.1`` / ``452 4.2.2``; their return paths are VERP addresses signed with the test key
``TEST_KEYS``. The ``sisimai-*`` samples are public bounce samples (README in tests/data/feedback/messages/).
"""

from __future__ import annotations

import base64
import os
import quopri
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from mailinfra_agent.feedback import _mime, dsn, verp
from mailinfra_agent.feedback.classify import MAX_TEXT
from mailinfra_agent.feedback.dsn import UnconfirmedRecipients, parse_dsn, read_delivery_status, text_reply
from mailinfra_agent.feedback.events import Event, EventError
from mailinfra_agent.feedback.message import MAX_MESSAGE_BYTES, Decoders, parse_message
from tests.agent.postfix_dsn import BOUNCE_DOMAIN, RECIPIENT_DOMAIN, TEST_KEYS, make_dsns, verp_sender

DATA = Path(__file__).resolve().parents[1] / 'data' / 'feedback' / 'messages'
DECODERS = Decoders(verp=verp.decoder(TEST_KEYS))
FAILED_VERP = verp_sender(segment='7', recipient=f'unknown1@{RECIPIENT_DOMAIN}')


def sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


def parse(data: bytes, **kwargs: object) -> list[Event]:
    kwargs.setdefault('decoders', DECODERS)
    return parse_message(data, 'maildir:test', **kwargs)  # type: ignore[arg-type]


def claims(data: bytes, **kwargs: object) -> list[Event]:
    """The events of a DSN to our return path that names no recipient: claims that ingest checks with the store."""
    with pytest.raises(UnconfirmedRecipients) as caught:
        parse(data, **kwargs)
    assert caught.value.reason == 'unconfirmed-recipient'
    return caught.value.events


def reason(data: bytes, **kwargs: object) -> str:
    with pytest.raises(EventError) as caught:
        parse(data, **kwargs)
    return caught.value.reason


# --- real Postfix DSNs -----------------------------------------------------------------------------------------------


def test_a_real_postfix_bounce_gives_one_bounced_event_with_every_field() -> None:
    [event] = parse(sample('postfix-failed.eml'))
    assert event.kind == 'dsn'
    assert event.status == 'bounced'
    assert event.recipient == f'unknown1@{RECIPIENT_DOMAIN}'
    assert (event.smtp_code, event.dsn) == ('550', '5.1.1')
    assert event.diagnostic == (
        f'550 5.1.1 <unknown1@{RECIPIENT_DOMAIN}>: Recipient address rejected: User unknown in virtual mailbox table'
    )
    assert event.relay == '127.0.0.1'
    assert event.message_id == 'failed.1@example.test'  # from the returned message, without angle brackets
    assert event.sender == FAILED_VERP  # the DSN's envelope recipient = our return path (read from To here)
    assert (event.stream, event.segment, event.campaign) == ('marketing', '7', None)  # decoded from the VERP
    assert event.queue_id is not None and event.queue_id.isalnum()
    assert event.time > 1.7e9 and event.delay is not None and event.delay >= 0
    assert event.source == 'maildir:test'


def test_one_event_per_recipient_block() -> None:
    events = claims(sample('postfix-failed-two.eml'))  # its return path names no recipient
    assert [event.recipient for event in events] == [
        f'unknown.one@{RECIPIENT_DOMAIN}',
        f'unknown.two@{RECIPIENT_DOMAIN}',
    ]
    assert len({event.key for event in events}) == 2
    assert {(event.stream, event.segment, event.campaign) for event in events} == {('marketing', '7', '42')}


@pytest.mark.parametrize(
    ('name', 'status', 'codes'),
    [
        ('postfix-failed.eml', 'bounced', ('550', '5.1.1')),
        ('postfix-delayed.eml', 'deferred', ('452', '4.2.2')),
        ('postfix-relayed.eml', 'sent', ('250', '2.0.0')),
    ],
)
def test_the_action_gives_the_status(name: str, status: str, codes: tuple[str, str]) -> None:
    [event] = claims(sample(name)) if name == 'postfix-delayed.eml' else parse(sample(name))
    assert (event.status, event.smtp_code, event.dsn) == (status, *codes)


def test_a_return_path_that_is_not_verp_gives_no_stream() -> None:
    [event] = parse(sample('postfix-relayed.eml'))
    assert event.sender == f'bounces@{BOUNCE_DOMAIN}'
    assert event.recipient == f'someone@{RECIPIENT_DOMAIN}'  # lower-cased
    assert (event.stream, event.segment) == (None, None)


def test_the_same_dsn_gives_the_same_keys_and_another_dsn_other_keys() -> None:
    first = claims(sample('postfix-failed-two.eml'))
    assert claims(sample('postfix-failed-two.eml')) == first
    assert {e.key for e in parse(sample('postfix-failed.eml'))}.isdisjoint({e.key for e in first})


@pytest.mark.parametrize(
    ('name', 'fields'),
    [
        ('postfix-failed.eml', {'segment': '7', 'recipient': f'unknown1@{RECIPIENT_DOMAIN}'}),
        ('postfix-failed-two.eml', {'segment': '7', 'campaign': '42', 'message_id': '1002'}),
        ('postfix-delayed.eml', {'segment': '7', 'campaign': '42'}),
    ],
)
def test_the_postfix_samples_carry_todays_verp_format(name: str, fields: dict[str, str]) -> None:
    """Fails when feedback.verp changes its format: regenerate the samples (tests/agent/feedback_samples.py)."""
    assert f'To: {verp_sender(**fields)}'.encode() in sample(name)


# --- the DSN's envelope recipient (our return path) ------------------------------------------------------------------


def test_the_envelope_recipient_given_by_the_caller_wins() -> None:
    [event] = parse(sample('postfix-relayed.eml'), envelope_recipient='other@bounces.example.test')
    assert event.sender == 'other@bounces.example.test'


def test_x_original_to_is_read_before_to() -> None:
    data = b'X-Original-To: <first@bounces.example.test>\n' + sample('postfix-relayed.eml')
    [event] = parse(data)
    assert event.sender == 'first@bounces.example.test'


def test_without_to_the_postfix_sender_field_gives_the_return_path() -> None:
    data = sample('postfix-failed.eml').replace(b'\nTo: ', b'\nX-Not-To: ', 1)
    [event] = parse(data)
    assert event.sender == FAILED_VERP
    assert event.stream == 'marketing'


# --- VERP: ours wins, forged ones are refused ------------------------------------------------------------------------


def test_the_verp_recipient_wins_over_the_dsn_recipient_fields() -> None:
    forged = sample('postfix-failed.eml').replace(b'unknown1@r.test', b'victim@r.test')
    assert b'unknown1@r.test' not in forged
    [event] = parse(forged)
    assert event.recipient == f'unknown1@{RECIPIENT_DOMAIN}'  # signed by us: the DSN's fields could name anybody
    [undecoded] = parse(forged, decoders=Decoders())
    assert undecoded.recipient == 'victim@r.test'  # without the decoder the DSN's Original-Recipient is all there is


def test_a_verp_without_recipient_leaves_the_dsn_recipient_a_claim_for_the_store() -> None:
    """A crafted DSN to a valid return path of ours that names no recipient: not an event the parser vouches for."""
    sender = verp_sender(segment='7', recipient='a' * 60 + f'@{RECIPIENT_DOMAIN}')  # too long to be encoded
    crafted = minimal('Final-Recipient: rfc822; victim@r.test\nAction: failed\nStatus: 5.1.1').replace(
        b'To: bounces@bounces.example.test', f'To: {sender}'.encode()
    )
    [claim] = claims(crafted)
    assert (claim.recipient, claim.status, claim.sender, claim.stream) == (
        'victim@r.test',
        'bounced',
        sender,
        'marketing',
    )
    [plain] = parse(crafted, decoders=Decoders())  # without our keys nothing is signed: the DSN is taken as it is
    assert plain.recipient == 'victim@r.test' and plain.stream is None


def test_blocks_that_the_verp_recipient_makes_equal_give_one_event() -> None:
    data = sample('postfix-failed.eml')
    start = data.index(b'Final-Recipient')
    block = data[start : data.index(b'\r\n\r\n', start)]  # the sink kept SMTP's CRLF line ends
    doubled = data.replace(block, block + b'\r\n\r\n' + block.replace(b'unknown1@r.test', b'other@r.test'))
    assert doubled.count(b'Final-Recipient') == 2
    assert [event.recipient for event in parse(doubled)] == [f'unknown1@{RECIPIENT_DOMAIN}']
    assert len(parse(doubled, decoders=Decoders())) == 2


def test_a_verp_return_path_with_a_broken_signature_is_refused() -> None:
    local = FAILED_VERP.split('@')[0]
    altered = local[:-3] + ('a' if local[-3] != 'a' else 'b') + local[-2:]
    data = sample('postfix-failed.eml').replace(local.encode(), altered.encode())
    assert reason(data) == 'bad-verp'
    assert len(parse(sample('postfix-failed.eml'))) == 1


# --- public samples of other MTAs ------------------------------------------------------------------------------------


def test_an_exchange_dsn_parses() -> None:
    [event] = parse(sample('sisimai-lhost-exchange2007-01.eml'))
    assert (event.status, event.recipient, event.smtp_code, event.dsn) == (
        'bounced',
        'mikeneko@example.co.jp',
        '550',
        '5.1.1',
    )
    assert event.diagnostic == '550 5.1.1 RESOLVER.ADR.RecipNotFound; not found'
    assert event.sender == 'kijitora@example.jp'  # Delivered-To of the Maildir copy


def test_the_original_recipient_is_preferred_and_a_non_smtp_diagnostic_has_no_reply_code() -> None:
    [event] = parse(sample('sisimai-lhost-postfix-01.eml'))
    assert event.recipient == 'kijitora@example.org'  # Original-Recipient, not Final-Recipient r@p351355...
    assert event.smtp_code is None  # Diagnostic-Code: x-unix; procmail: ...
    assert event.dsn == '5.1.1'
    assert event.diagnostic is not None and event.diagnostic.startswith('procmail: ')


def test_a_dsn_without_per_message_fields_and_an_untyped_recipient_parses() -> None:
    # McAfee: the first block is the recipient's (Original-Recipient: <a@b>, Action, no Status); it was read as the
    # per-message block, and the untyped address refused, so the report gave nothing (sisimai: userunknown).
    [event] = parse(sample('sisimai-lhost-mcafee-01.eml'))
    assert (event.status, event.recipient, event.smtp_code, event.dsn) == (
        'bounced',
        'kijitora@example.co.jp',
        '550',
        None,
    )
    assert event.diagnostic == '550 Unknown user kijitora@example.co.jp'
    assert _mime.address('<a@example.org>', typed=True) == 'a@example.org'
    assert _mime.address('x400; <a@example.org>', typed=True) is None  # another type
    assert _mime.address('a@example.org; b', typed=True) is None  # a ';' the grammar does not explain


def test_a_block_without_diagnostic_code_takes_its_recipients_reply_from_the_human_readable_part() -> None:
    # OpenSMTPD: 'Status: 5.0.0' and no Diagnostic-Code; the replies are only in the text part (sisimai:
    # userunknown, mailboxfull). Without them both were 'other'.
    first, second = parse(sample('sisimai-lhost-opensmtpd-17.eml'))
    # The Status gives only the class (5.0.0): the reply's code is the precise one.
    assert (first.recipient, first.smtp_code, first.dsn) == ('userunknown@libsisimai.net', '550', '5.1.1')
    assert first.diagnostic == '550 5.1.1 <userunknown@libsisimai.net>: Recipient address rejected: User unknown'
    assert (second.recipient, second.smtp_code, second.dsn) == ('mailboxfull@libsisimai.net', '552', '5.2.2')
    assert second.diagnostic is not None and second.diagnostic.endswith('Mailbox full')


def test_unfolded_continuation_lines_of_a_diagnostic_do_not_end_the_block() -> None:
    # MessageLabs: the Diagnostic-Code goes on over lines without leading space, then Status, Action and
    # Final-Recipient; the parser ended the header at the first such line, so the report gave nothing
    # (sisimai: securityerror).
    [event] = parse(sample('sisimai-rhost-messagelabs-01.eml'))
    assert (event.status, event.recipient, event.smtp_code, event.dsn) == (
        'bounced',
        'kijitora@example.messagelabs.com',
        '550',
        '5.0.0',
    )
    assert event.diagnostic is not None
    assert event.diagnostic.startswith('550-Please turn on SMTP Authentication in your mail client. 550-mail0.')
    assert event.diagnostic.endswith('550 relay through this server without authentication.')


def test_text_reply_reads_only_a_line_that_starts_with_the_recipient() -> None:
    text = (
        'Your message to a@example.org: could not be delivered\n'  # prose that names the address: not a reply
        '<a@example.org>... Deferred: Connection refused by\n'
        '    mx.example.org.\n'
        'Message could not be delivered for 5 days\n'
        'b@example.org  550 no separator\n'
    )
    assert text_reply(text, ['a@example.org']) == 'Deferred: Connection refused by mx.example.org.'
    assert text_reply(text, ['b@example.org']) is None
    assert text_reply(text, ['c@example.org']) is None
    assert text_reply('A@Example.org: 550 5.1.1 unknown', ['a@example.org']) == '550 5.1.1 unknown'
    # Exim: the address alone (or with ':'), the reply indented deeper; a sibling address ends it
    exim = '  a@example.org\n    host mx [192.0.2.1]:\n    550 5.1.1 unknown\n  b@example.org:\n    552 full\n'
    assert text_reply(exim, ['a@example.org']) == 'host mx [192.0.2.1]: 550 5.1.1 unknown'
    assert text_reply(exim, ['b@example.org']) == '552 full'
    assert text_reply('     a@example.org\n\nTechnical details', ['a@example.org']) is None  # Gmail: no reply there


def test_a_text_bounce_without_a_delivery_status_part_is_an_error() -> None:
    assert reason(sample('sisimai-lhost-qmail-02.eml')) == 'no-delivery-status'
    # X-Failed-Recipients without a usable address is no better than none
    header = b'X-Failed-Recipients: kijitora@neko.example.co.jp'
    redacted = sample('sisimai-lhost-exim-05.eml').replace(header, b'X-Failed-Recipients: redacted@example.jp')
    assert reason(redacted) == 'no-delivery-status'


@pytest.mark.parametrize(
    ('name', 'recipient', 'code', 'status', 'diagnostic'),
    [
        # Exim: the reply indented under '  a@b:' (Sisimai: userunknown)
        (
            'sisimai-lhost-exim-05.eml',
            'kijitora@neko.example.co.jp',
            '553',
            '5.1.1',
            'SMTP error from remote mailer after RCPT TO: <kijitora@neko.example.co.jp>: host mx49.neko.example.co.jp'
            ' [192.0.2.82]: 553 5.1.1 unknown or illegal user: kijitora@neko.example.co.jp',
        ),
        # Gmail: 'The error that the other server returned was:' (Sisimai: userunknown)
        (
            'sisimai-lhost-gmail-01.eml',
            'userunknown@example.jp',
            '550',
            '5.1.1',
            '550 5.1.1 <userunknown@example.jp>... User Unknown',
        ),
    ],
)
def test_a_text_bounce_with_x_failed_recipients_gives_its_recipients(
    name: str, recipient: str, code: str, status: str, diagnostic: str
) -> None:
    [event] = parse(sample(name))
    assert (event.kind, event.status, event.recipient, event.smtp_code, event.dsn) == (
        'dsn',
        'bounced',
        recipient,
        code,
        status,
    )
    assert event.diagnostic == diagnostic


INJECTED = b'kijitora@example.com: 550 5.1.1 user unknown\n'


def test_a_line_in_the_returned_message_does_not_give_a_text_bounces_reply() -> None:
    # Gmail (Sisimai: blocked): the reply is Gmail's sentence (554 5.7.1, a block list), not a line in the copy of
    # our own message that starts with the recipient; read there, it became 550 5.1.1, a hard-bounce suppression.
    data = sample('sisimai-lhost-gmail-04.eml')
    assert data.endswith(b'\nMessage\n')  # the original's body
    [event] = parse(data + INJECTED)
    assert (event.recipient, event.smtp_code, event.dsn) == ('kijitora@example.com', '554', '5.7.1')
    assert event.diagnostic is not None and event.diagnostic.startswith('554 554 5.7.1 Service unavailable;')
    assert event.diagnostic.endswith('blocked using cbl.abuseat.org (state 13).')
    # Exim: a recipient whose reply is only in the copy of the message gets none (no category, no suppression)
    exim = sample('sisimai-lhost-exim-05.eml')
    exim = exim.replace(
        b'X-Failed-Recipients: kijitora@neko.example.co.jp',
        b'X-Failed-Recipients: a@b.example, kijitora@neko.example.co.jp',
    )
    events = {event.recipient: event for event in parse(exim + b'a@b.example: 550 5.1.1 user unknown\n')}
    assert events['a@b.example'].diagnostic is None
    assert events['kijitora@neko.example.co.jp'].smtp_code == '553'
    assert text_reply('x\n------ This is a copy of the message\na@b.example: 550 x', ['a@b.example']) == '550 x'


def test_the_human_readable_part_is_read_once_for_all_blocks_without_diagnostic_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 1000 blocks without Diagnostic-Code and a text part of many lines: read once, not once per block (it took
    # 12.9 s of CPU, each block splitting and scanning the whole text, each reply line copying the lines after it).
    blocks = ''.join(f'Final-Recipient: rfc822; u{n}@x.example\nAction: failed\nStatus: 5.0.0\n\n' for n in range(1000))
    lines = ''.join(f'u{n}@x.example: 550 5.1.1 unknown u{n}\n' for n in range(1000)) + '.\n' * 30000
    report = (
        'From: MAILER-DAEMON@x.example\nTo: bounces@example.com\nDate: Mon, 7 Dec 2026 10:00:00 +0000\n'
        'MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=B\n\n'
        f'--B\nContent-Type: text/plain\n\n{lines}\n--B\nContent-Type: message/delivery-status\n\n'
        f'Reporting-MTA: dns; x.example\n\n{blocks}--B--\n'
    ).encode()
    calls: list[str] = []
    real = dsn.text_replies

    def counted(text: str) -> dsn._Replies:
        calls.append(text)
        return real(text)

    monkeypatch.setattr(dsn, 'text_replies', counted)
    events = parse(report)
    assert len(calls) == 1
    assert len(events) == 1000
    assert all(event.diagnostic == f'550 5.1.1 unknown {event.recipient.split("@")[0]}' for event in events)
    # a reply's indented run is read up to MAX_TEXT characters, whatever follows
    run = 'a@x.example: 550\n' + '   more\n' * 20000
    assert len(text_reply(run, ['a@x.example']) or '') == MAX_TEXT


def test_an_x_failed_recipients_field_cut_at_its_limit_loses_its_last_address_not_its_domain() -> None:
    # 1000 addresses: the field is cut at MAX_FIELD characters inside an address (u350@x for u350@x.org)
    many = ', '.join(f'u{n}@x.org' for n in range(1000)).encode()
    data = sample('sisimai-lhost-exim-05.eml').replace(b'kijitora@neko.example.co.jp\n', many + b'\n', 1)
    events = parse(data)
    assert 300 < len(events) < 1000
    assert all(event.recipient is not None and event.recipient.endswith('@x.org') for event in events)
    assert [event.recipient for event in events] == [f'u{n}@x.org' for n in range(len(events))]


def test_a_global_delivery_status_part_rfc6533_parses_every_block() -> None:
    data = sample('postfix-failed-two.eml').replace(b'message/delivery-status', b'message/global-delivery-status')
    assert [event.recipient for event in claims(data)] == [
        f'unknown.one@{RECIPIENT_DOMAIN}',
        f'unknown.two@{RECIPIENT_DOMAIN}',
    ]
    as_text = sample('postfix-failed-two.eml').replace(b'message/delivery-status', b'text/plain')
    assert reason(as_text) == 'no-delivery-status'


# --- blocks that are incomplete --------------------------------------------------------------------------------------

MINIMAL = """\
From: MAILER-DAEMON@mx.example.net
To: bounces@bounces.example.test
Date: Sun, 06 Dec 2026 06:00:00 +0000
Message-ID: <m1@mx.example.net>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b"

--b
Content-Type: text/plain

failed

--b
Content-Type: message/delivery-status

{blocks}

--b--
"""


def minimal(blocks: str) -> bytes:
    return MINIMAL.format(blocks=blocks).encode()


def test_a_block_without_action_takes_it_from_the_status_class() -> None:
    [event] = parse(
        minimal('Reporting-MTA: dns; mx.example.net\n\nFinal-Recipient: rfc822; a@example.org\nStatus: 4.4.1')
    )
    assert (event.status, event.dsn, event.smtp_code) == ('deferred', '4.4.1', None)


def test_a_missing_per_message_block_is_tolerated() -> None:
    [event] = parse(minimal('Final-Recipient: rfc822; a@example.org\nAction: failed\nStatus: 5.1.1'))
    assert (event.status, event.recipient) == ('bounced', 'a@example.org')


def test_blocks_without_recipient_or_known_action_are_skipped() -> None:
    blocks = (
        'Reporting-MTA: dns; mx.example.net\n\n'
        'Final-Recipient: rfc822; a@example.org\nAction: failed\nStatus: 5.1.1\n\n'
        'Final-Recipient: rfc822; b@example.org\nAction: exploded\n\n'
        'Final-Recipient: unknown; not-an-address\nAction: failed\nStatus: 5.1.1'
    )
    assert [event.recipient for event in parse(minimal(blocks))] == ['a@example.org']
    assert reason(minimal('Reporting-MTA: dns; mx.example.net\n\nFinal-Recipient: rfc822; b@x.org\nAction: x')) == (
        'bad-delivery-status'
    )


@pytest.mark.parametrize(('count', 'expected'), [(1000, 1000), (1001, 'too-many-recipients')])
def test_a_dsn_may_have_at_most_1000_recipient_blocks(count: int, expected: int | str) -> None:
    block = 'Final-Recipient: rfc822; user{}@example.org\nAction: failed\nStatus: 5.1.1'
    data = minimal('Reporting-MTA: dns; mx.example.net\n\n' + '\n\n'.join(block.format(n) for n in range(count)))
    assert (len(parse(data)) if isinstance(expected, int) else reason(data)) == expected


def test_last_attempt_date_is_the_event_time_else_the_date_header_else_the_arrival_given() -> None:
    block = 'Final-Recipient: rfc822; a@example.org\nAction: failed\nStatus: 5.1.1'
    [dated] = parse(minimal(block + '\nLast-Attempt-Date: Sun, 06 Dec 2026 05:00:00 +0000'))
    [undated] = parse(minimal(block))
    assert (dated.time, undated.time) == (1796533200.0, 1796536800.0)
    no_date = minimal(block).replace(b'Date: Sun, 06 Dec 2026 06:00:00 +0000\n', b'')
    assert reason(no_date) == 'no-date'
    [given] = parse(no_date, received=1796530000.0)
    assert given.time == 1796530000.0


def test_read_delivery_status_gives_the_per_message_fields() -> None:
    msg = _mime.parse_bytes(sample('postfix-failed.eml'), 'test')
    [block] = read_delivery_status(msg, 'test')
    assert block.reporting_mta == 'mta1.example.test'
    assert block.original_sender == FAILED_VERP  # X-Postfix-Sender, its case kept
    assert block.arrival is not None and block.diagnostic_type == 'smtp'
    with pytest.raises(EventError) as caught:
        parse_dsn(_mime.parse_bytes(sample('sisimai-lhost-qmail-02.eml'), 'test'), 'test')
    assert caught.value.reason == 'no-delivery-status'


# --- bad input -------------------------------------------------------------------------------------------------------


def test_a_dsn_cut_off_in_its_delivery_status_part_is_truncated() -> None:
    data = sample('postfix-failed-two.eml')
    cut = data[: data.index(b'unknown.two@r.test') + 5]  # the second block's address is cut short
    assert reason(cut) == 'truncated'


def test_a_dsn_cut_off_in_the_returned_message_still_parses() -> None:
    data = sample('postfix-failed-two.eml')
    cut = data[: data.index(b'Subject: DSN sample')]
    events = claims(cut)
    assert len(events) == 2 and all(event.status == 'bounced' for event in events)


def test_non_utf8_bytes_are_replaced_never_raised() -> None:
    data = sample('postfix-failed.eml').replace(b'User unknown in virtual', b'Benutzer \xfcnbekannt in virtual')
    [event] = parse(data)
    assert event.diagnostic is not None and 'Benutzer \ufffdnbekannt' in event.diagnostic
    latin_recipient = minimal('Final-Recipient: rfc822; j\xfcrgen@example.org\nAction: failed\nStatus: 5.1.1')
    assert reason(latin_recipient.replace('j\xfcrgen'.encode(), b'j\xfcrgen')) == 'bad-delivery-status'


def test_an_oversized_message_is_refused_before_parsing() -> None:
    data = sample('postfix-failed.eml')
    padded = data + b'x' * (MAX_MESSAGE_BYTES - len(data))
    assert len(parse(padded)) == 1  # exactly at the limit: parsed
    assert reason(padded + b'x') == 'oversized'


@pytest.mark.parametrize(
    ('data', 'expected'),
    [(b'', 'empty'), (b' \r\n', 'empty'), (b'\x00\x01garbage without headers\n', 'garbage')],
)
def test_empty_and_garbage_input(data: bytes, expected: str) -> None:
    assert reason(data) == expected


# --- a live Postfix --------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_dsns_of_a_live_postfix_parse() -> None:
    if os.geteuid() != 0 or shutil.which('postfix') is None:
        pytest.skip('needs root and Postfix (apt-get install postfix; script/bootstrap does)')
    sender = verp_sender(segment='9', campaign='5')
    [dsn] = make_dsns([(sender, 'live.1@example.test', [f'unknown.live@{RECIPIENT_DOMAIN}'], [])])
    [event] = claims(dsn.data, envelope_recipient=dsn.recipients[0])
    assert (event.status, event.recipient, event.smtp_code, event.dsn) == (
        'bounced',
        f'unknown.live@{RECIPIENT_DOMAIN}',
        '550',
        '5.1.1',
    )
    assert (event.sender, event.stream, event.segment, event.campaign) == (sender, 'marketing', '9', '5')
    assert event.message_id == 'live.1@example.test'


@pytest.mark.parametrize('charset', ['idna', 'undefined', '"utf-8\x00"', 'no-such-charset'])
def test_a_part_in_a_charset_that_cannot_decode_is_read_as_utf8(charset: str) -> None:
    """idna has no 'replace' handler, undefined refuses everything, a NUL in the name is a ValueError: each one is
    read as UTF-8 with replacement (it stopped the ingest at every start: the message stayed in new/)."""
    data = (
        'From: MAILER-DAEMON@mx.example\r\nTo: b@x.example\r\nSubject: Undelivered Mail Returned to Sender\r\n'
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        '--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\n'
        'Final-Recipient: rfc822; a@gmail.example\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n'
        f'--b\r\nContent-Type: text/rfc822-headers; charset={charset}\r\n\r\nFrom: a@x.example\r\n--b--\r\n'
    ).encode()
    (event,) = parse(data, received=1.0)
    assert (event.status, event.recipient, event.dsn) == ('bounced', 'a@gmail.example', '5.1.1')


@pytest.mark.parametrize(
    ('outer', 'inner'),
    [
        ("boundary*=idna''b", 'charset=utf-8'),
        ("boundary*=undefined''b", 'charset=utf-8'),
        ("boundary*=x\x00''b", 'charset=utf-8'),
        ('boundary="b"', "charset*=x\x00''abc"),
    ],
)
def test_rfc2231_parameters_in_a_charset_that_cannot_decode_are_an_event_error(outer: str, inner: str) -> None:
    """The standard library decodes RFC 2231 parameters and lets UnicodeError and ValueError out: unknown-format,
    or the part read as UTF-8; never another exception (the pipe would answer 75 until the queue lifetime ends)."""
    data = (
        'From: MAILER-DAEMON@mx.example\r\nTo: b@x.example\r\nSubject: Undelivered Mail Returned to Sender\r\n'
        f'Content-Type: multipart/report; report-type=delivery-status; {outer}\r\n\r\n'
        '--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\n'
        'Final-Recipient: rfc822; a@gmail.example\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n'
        f'--b\r\nContent-Type: text/rfc822-headers; {inner}\r\n\r\nFrom: a@x.example\r\n--b--\r\n'
    ).encode()
    try:
        (event,) = parse(data, received=1.0)
    except EventError as error:
        assert error.reason == 'unknown-format', error
    else:
        assert (event.status, event.recipient) == ('bounced', 'a@gmail.example')


# --- real-world shapes (modelled on public samples, written here) ----------------------------------------------------
# Shapes, not copies: the RFC 3464 appendix examples (https://www.rfc-editor.org/rfc/rfc3464#appendix-B), RFC 6533's
# internationalised DSN (https://www.rfc-editor.org/rfc/rfc6533, sections 3 and 6), and Exchange/Lotus-style DSNs
# whose report parts are sent in base64 (as in the sisimai corpus, https://github.com/sisimai/set-of-emails).

SHAPED = """\
From: MAILER-DAEMON@mx.example.net
To: {to}
Date: Sun, 06 Dec 2026 06:00:00 +0000
Message-ID: <shaped.1@mx.example.net>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b"

--b
Content-Type: text/plain

failed

--b
Content-Type: {content_type}
{part_headers}
{part}
--b
Content-Type: {returned_type}
{returned_headers}
{returned}
--b--
"""
GLOBAL_BLOCKS = (
    'Reporting-MTA: dns; mx.example.net\n\nFinal-Recipient: utf-8; jöe@bücher.example\nAction: failed\nStatus: 5.1.1\n'
)
RETURNED = 'Message-ID: <returned.1@news.example.com>\nSubject: deals\n\nhello\n'


def shaped(
    part: str, content_type: str = 'message/delivery-status', *, encoding: str | None = None, **kw: str
) -> bytes:
    """A DSN whose report part is ``part`` (in ``encoding``, when given) and whose returned message is ``RETURNED``."""
    body = part.encode()
    if encoding == 'base64':
        body = base64.encodebytes(body)
    elif encoding == 'quoted-printable':
        body = quopri.encodestring(body)
    values = {
        'to': 'bounces@bounces.example.test',
        'content_type': content_type,
        'part_headers': f'Content-Transfer-Encoding: {encoding}\n' if encoding else '',
        'returned_type': 'message/rfc822',
        'returned_headers': '',
        'returned': RETURNED,
        'part': '\0',
    }
    values.update(kw)
    before, after = SHAPED.format(**values).encode().split(b'\0')
    return before + body + after


@pytest.mark.parametrize('encoding', ['base64', 'quoted-printable'])
@pytest.mark.parametrize('content_type', ['message/delivery-status', 'message/global-delivery-status'])
def test_a_delivery_status_part_in_base64_or_quoted_printable_is_decoded(content_type: str, encoding: str) -> None:
    blocks = (
        'Reporting-MTA: dns; mx.example.net\n\n'
        'Final-Recipient: rfc822; gone@example.org\nAction: failed\nStatus: 5.1.1\n'
        f'Diagnostic-Code: smtp; 550 5.1.1 <gone@example.org>: {"a long reason " * 8}\n\n'
        'Final-Recipient: rfc822; late@example.org\nAction: delayed\nStatus: 4.2.2\n'
    )
    events = parse(shaped(blocks, content_type, encoding=encoding))
    assert [(event.recipient, event.status, event.dsn) for event in events] == [
        ('gone@example.org', 'bounced', '5.1.1'),
        ('late@example.org', 'deferred', '4.2.2'),
    ]
    assert events[0].diagnostic is not None and events[0].diagnostic.endswith('a long reason')  # soft breaks undone
    assert {event.message_id for event in events} == {'returned.1@news.example.com'}


def test_a_quoted_printable_soft_break_inside_an_address_is_undone() -> None:
    part = 'Final-Recipient: rfc822; gone@exam=\nple.org\nAction: failed\nStatus: 5.1.1\n'
    data = shaped(part, part_headers='Content-Transfer-Encoding: quoted-printable\n')  # as written: already encoded
    assert [event.recipient for event in parse(data)] == ['gone@example.org']


@pytest.mark.parametrize('encoding', [None, 'base64', 'quoted-printable'])
def test_a_global_dsn_names_a_utf8_recipient_in_the_form_the_suppression_list_keeps(encoding: str | None) -> None:
    """RFC 6533: 8-bit UTF-8 in message/global-delivery-status and message/global-headers (here as sent, 8bit)."""
    data = shaped(
        GLOBAL_BLOCKS,
        'message/global-delivery-status',
        encoding=encoding,
        returned_type='message/global-headers',
        returned='Message-ID: <returned.2@news.example.com>\nSubject: Grüße\n',
    )
    [event] = parse(data)
    assert (event.recipient, event.status) == ('jöe@xn--bcher-kva.example', 'bounced')
    assert event.message_id == 'returned.2@news.example.com'


def test_the_utf8_address_type_in_an_ascii_dsn_has_its_escapes_undone() -> None:
    """RFC 6533 section 3: ``utf-8`` addresses in a 7-bit DSN write each non-ASCII character as ``\\x{HEX}``."""
    block = 'Final-Recipient: utf-8; j\\x{F6}e@b\\x{FC}cher.example\nAction: failed\nStatus: 5.1.1\n'
    assert [event.recipient for event in parse(shaped(block))] == ['jöe@xn--bcher-kva.example']
    assert reason(shaped(block.replace('\\x{F6}', '\\x{D800}'))) == 'bad-delivery-status'  # no character


@pytest.mark.parametrize('recipient', ['gone@example.org.', '<Gone@Example.ORG.>', 'gone@example.org (the user)'])
def test_a_recipient_with_a_trailing_dot_or_a_comment_is_read(recipient: str) -> None:
    block = f'Final-Recipient: rfc822;\n  {recipient}\nAction: failed\nStatus: 5.1.1 (bad mailbox)\n'
    [event] = parse(shaped(block))
    assert (event.recipient, event.dsn) == ('gone@example.org', '5.1.1')


def test_delayed_relayed_and_expanded_blocks_are_never_bounces() -> None:
    blocks = '\n'.join(
        f'Original-Recipient: rfc822; {name}@example.org\nFinal-Recipient: rfc822; {name}@example.org\n'
        f'Action: {action}\nStatus: {status}\n'
        for name, action, status in [
            ('a', 'failed', '5.1.1'),
            ('b', 'delayed', '4.4.1'),
            ('c', 'relayed', '2.0.0'),
            ('d', 'expanded', '2.0.0'),
            ('e', 'Delivered', '2.0.0'),
        ]
    )
    assert {event.recipient: event.status for event in parse(shaped(blocks))} == {
        'a@example.org': 'bounced',
        'b@example.org': 'deferred',
        'c@example.org': 'sent',
        'd@example.org': 'sent',
        'e@example.org': 'sent',
    }


@pytest.mark.parametrize('case', [str.lower, str.upper])
def test_a_verp_return_path_whose_case_a_relay_changed_still_decodes(case: Callable[[str], str]) -> None:
    [event] = parse(
        shaped('Final-Recipient: rfc822; x@example.org\nAction: failed\nStatus: 5.1.1\n', to=case(FAILED_VERP))
    )
    assert (event.recipient, event.stream, event.segment) == (f'unknown1@{RECIPIENT_DOMAIN}', 'marketing', '7')


def test_a_dsn_forwarded_inside_another_message_is_not_read_as_its_dsn() -> None:
    """Someone forwards an old bounce to the return path: the report belongs to the attached message."""
    inner = shaped('Final-Recipient: rfc822; victim@example.org\nAction: failed\nStatus: 5.1.1\n')
    forwarded = (
        b'From: someone@example.org\nTo: bounces@bounces.example.test\nSubject: Fwd: look at this\n'
        b'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="f"\n\n--f\nContent-Type: text/plain\n\nsee\n'
        b'--f\nContent-Type: message/rfc822\n\n' + inner + b'\n--f--\n'
    )
    assert reason(forwarded) == 'unknown-format'
    assert [event.recipient for event in parse(inner)] == ['victim@example.org']


def test_action_and_status_with_comments_are_read() -> None:
    block = 'Final-Recipient: rfc822; gone@example.org\nAction: failed(permanent)\nStatus: 5.1.1(bad mailbox)\n'
    [event] = parse(shaped(block))
    assert (event.status, event.dsn) == ('bounced', '5.1.1')
    delayed = block.replace('failed(permanent)', '(will retry) delayed').replace('5.1.1(', '4.2.2 (')
    assert [event.status for event in parse(shaped(delayed))] == ['deferred']


@pytest.mark.parametrize('separator', [' \n', '\t\n', ''])
def test_blocks_separated_by_a_line_of_spaces_or_nothing_each_give_their_recipient(separator: str) -> None:
    """A line of spaces is read as folding, so the next block's fields would join the one before; the first
    Final-Recipient then named the only recipient, and the others' bounces were lost."""
    blocks = separator.join(
        [
            'Reporting-MTA: dns; mx.example.net\nArrival-Date: Sun, 06 Dec 2026 05:00:00 +0000\n',
            'Final-Recipient: rfc822; a@example.org\nAction: failed\nStatus: 5.1.1\n',
            'Original-Recipient: rfc822; B@example.org\nFinal-Recipient: rfc822; b.final@example.org\n'
            'Action: delayed\nStatus: 4.2.2\n',
            'Final-Recipient: rfc822; c@example.org\nAction: failed\nStatus: 5.2.2\n',
        ]
    )
    events = parse(shaped(blocks))
    assert [(event.recipient, event.status, event.dsn) for event in events] == [
        ('a@example.org', 'bounced', '5.1.1'),
        ('b@example.org', 'deferred', '4.2.2'),
        ('c@example.org', 'bounced', '5.2.2'),
    ]
    assert {event.delay for event in events} == {3600.0}  # the per-message Arrival-Date: 05:00, the DSN's Date 06:00


def test_merged_blocks_keep_each_original_recipient_with_its_own_final_recipient() -> None:
    postfix_order = (
        'Final-Recipient: rfc822; a@example.org\nOriginal-Recipient: rfc822; A@example.org\nAction: failed\n'
        'Status: 5.1.1\n \nFinal-Recipient: rfc822; b@example.org\nOriginal-Recipient: rfc822; B.orig@example.org\n'
        'Action: failed\nStatus: 5.1.1\n'
    )
    sendmail_order = (
        'Final-Recipient: rfc822; a@example.org\nAction: failed\nStatus: 5.1.1\n \n'
        'Original-Recipient: rfc822; B.orig@example.org\nFinal-Recipient: rfc822; b@example.org\nAction: failed\n'
        'Status: 5.1.1\n'
    )
    assert [event.recipient for event in parse(shaped(postfix_order))] == ['a@example.org', 'b.orig@example.org']
    assert [event.recipient for event in parse(shaped(sendmail_order))] == ['a@example.org', 'b.orig@example.org']


def test_two_final_recipients_before_the_outcome_are_one_recipient() -> None:
    """A second Final-Recipient before any Action or Status names the same recipient (another form of it); it
    started a block of its own, and the bounce went to the second name or was lost."""
    block = 'Final-Recipient: rfc822; alice@example.org\nFinal-Recipient: {second}\nAction: failed\nStatus: 5.1.1\n'
    for second in ('rfc822; alice.smith@mbox.example.org', 'x400; /c=us/s=alice'):
        events = parse(shaped(block.format(second=second)))
        assert [(event.recipient, event.status) for event in events] == [('alice@example.org', 'bounced')]


def test_merged_blocks_in_exims_order_keep_each_action() -> None:
    """Exim writes Action before Final-Recipient: merged blocks gave the second recipient's Action to the first,
    and a failed 4.4.7 (expired) was read from its Status alone as deferred."""
    blocks = (
        'Action: failed\nFinal-Recipient: rfc822; a@example.org\nStatus: 5.1.1\n \n'
        'Action: failed\nFinal-Recipient: rfc822; b@example.org\nStatus: 4.4.7\n'
    )
    events = parse(shaped(blocks))
    assert [(event.recipient, event.status, event.dsn) for event in events] == [
        ('a@example.org', 'bounced', '5.1.1'),
        ('b@example.org', 'bounced', '4.4.7'),
    ]


@pytest.mark.parametrize(
    'final',
    [
        'utf-8; gone@fa\\x{DF}.de',  # RFC 6533's escaped form in message/delivery-status
        'utf-8; Gone@FA\\x{1E9E}.DE.',  # capital sharp s: idna's Unicode 16 tables map it to ß (docs/feedback.md)
        'rfc822; gone@XN--FA-HIA.de',
    ],
)
def test_a_utf8_final_recipient_gets_the_uts46_form_the_suppression_list_keys(final: str) -> None:
    """The parser mapped a UTF-8 domain with Python's IDNA 2003 codec: ``faß.de`` became ``fass.de``, another
    domain, so the bounce suppressed the wrong mailbox. Now it is ``xn--fa-hia.de``, as Postfix delivers to."""
    from mailinfra_agent.suppression import canonical_address

    [event] = parse(minimal(f'Final-Recipient: {final}\nAction: failed\nStatus: 5.1.1\n'))
    assert event.recipient == 'gone@xn--fa-hia.de' == canonical_address('gone@faß.de')
    raw = minimal('Final-Recipient: utf-8; gone@FAẞ.de\nAction: failed\nStatus: 5.1.1\n').replace(
        b'message/delivery-status', b'message/global-delivery-status'
    )
    assert [event.recipient for event in parse(raw)] == ['gone@xn--fa-hia.de']
