"""Complaint reports (ARF, Yahoo CFL, Microsoft JMRP) and mailto unsubscribes -> events; dispatch of
feedback/message.py. Samples in tests/data/feedback/messages/ (README: which are public, which synthetic)."""

from __future__ import annotations

import base64
import random
from pathlib import Path

import pytest

from mailinfra_agent.feedback import _mime, tokens, verp
from mailinfra_agent.feedback.arf import NoRecipient, UnconfirmedComplaint, complaint_key, read_feedback_report
from mailinfra_agent.feedback.events import Event, EventError
from mailinfra_agent.feedback.message import Decoders, decoders_for, parse_message, token_candidates
from tests.agent.feedback_samples import samples
from tests.agent.postfix_dsn import TEST_KEYS

DATA = Path(__file__).resolve().parents[1] / 'data' / 'feedback' / 'messages'
KEYS = TEST_KEYS
OTHER_KEYS = (b'another-key-that-did-not-sign-these-samples-000001',)
NOW = 1796537000.0  # 2026-12-06 06:03 UTC: the mailto token of the sample was made 20 minutes before


def decoders(keys: tuple[bytes, ...] = KEYS, max_age: int = 180 * 86400) -> Decoders:
    return decoders_for(keys, max_age, clock=lambda: NOW)


def sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


def parse(data: bytes, **kwargs: object) -> list[Event]:
    """The events the parser reads, also those whose recipients only the report names (ingest confirms them:
    tests/agent/test_ingest_complaints.py)."""
    kwargs.setdefault('decoders', decoders())
    try:
        return parse_message(data, 'maildir:test', **kwargs)  # type: ignore[arg-type]
    except UnconfirmedComplaint as claims:
        return claims.events


def error(data: bytes, **kwargs: object) -> EventError:
    with pytest.raises(EventError) as caught:
        parse(data, **kwargs)
    return caught.value


# --- ARF fields ------------------------------------------------------------------------------------------------------


def test_a_yahoo_report_names_the_recipient_in_original_rcpt_to() -> None:
    [event] = parse(sample('sisimai-arf-02.eml'))
    assert (event.kind, event.status, event.feedback_type) == ('complaint', 'complaint', 'abuse')
    assert event.recipient == 'this-local-part-does-not-exist-on-yahoo@yahoo.com'
    assert event.message_id == '000000000000000000000000.smtp@example.com'
    assert event.sender == 'shironeko@example.com'  # Original-Mail-From
    assert event.time == 1367307900.0  # the report's Date


def test_one_event_per_original_rcpt_to() -> None:
    events = parse(sample('sisimai-arf-16.eml'))
    assert len(events) == 7 and len({event.key for event in events}) == 7
    assert events[0].recipient == 'kijitora@example.com' and events[0].sending_ip == '192.0.2.1'


def test_read_feedback_report_gives_dkim_domain_list_id_and_our_headers() -> None:
    msg = _mime.parse_bytes(sample('synthetic-yahoo-cfl-redacted.eml'), 'test')
    report = read_feedback_report(msg)
    assert report.feedback_type == 'abuse'
    assert (report.user_agent, report.version) == ('Yahoo!-Mail-Feedback/2.0', '1')
    assert report.dkim_domains == ('news.example.com',)
    assert report.list_id == 'deals.news.example.com'
    assert report.return_path == verp.encode(
        KEYS, stream='marketing', domain='bounces.news.example.com', segment='7', campaign='42'
    )
    assert report.id_header == tokens.make_id('kitty.cat@yahoo.example', 'marketing', KEYS, segment='7', campaign='42')
    assert report.source_ip == '192.0.2.25' and report.reported_domains == ('news.example.com',)
    assert report.arrival == 1796533802.0
    assert report.original_rcpt_to == () and report.has_original
    assert report.message_id == '20261206051000.42.7.1001@news.example.com'


# --- anonymised reports: our own data finds the recipient ------------------------------------------------------------


def test_an_anonymised_jmrp_report_finds_the_recipient_through_our_verp() -> None:
    [event] = parse(sample('synthetic-jmrp-anonymised.eml'))
    assert event.recipient == 'zoe@outlook.test'
    assert (event.stream, event.segment, event.campaign) == ('marketing', '7', '43')  # from X-Mailinfra-Id
    assert event.message_id == '20261206052000.43.7.2001@news.example.com'
    with pytest.raises(NoRecipient) as caught:  # without our keys the redacted report names nobody
        parse(sample('synthetic-jmrp-anonymised.eml'), decoders=Decoders())
    assert caught.value.reason == 'no-recipient'
    assert "Original-Rcpt-To '<redacted>'" in str(caught.value)


def test_the_verp_recipient_wins_over_original_rcpt_to() -> None:
    forged = sample('synthetic-jmrp-anonymised.eml').replace(
        b'Original-Rcpt-To: <redacted>', b'Original-Rcpt-To: x@y.org'
    )
    [event] = parse(forged)
    assert event.recipient == 'zoe@outlook.test'
    [unsigned] = parse(forged, decoders=Decoders())
    assert unsigned.recipient == 'x@y.org'


def test_recipients_only_the_report_names_are_claims_for_ingest_to_confirm() -> None:
    """Original-Rcpt-To and the legacy JMRP header are the reporter's word: UnconfirmedComplaint, never events."""
    forged = sample('synthetic-jmrp-anonymised.eml').replace(
        b'Original-Rcpt-To: <redacted>', b'Original-Rcpt-To: x@y.org'
    )
    [signed] = parse_message(forged, 'maildir:test', decoders=decoders())  # our VERP names the recipient
    assert signed.recipient == 'zoe@outlook.test'
    with pytest.raises(UnconfirmedComplaint) as caught:
        parse_message(forged, 'maildir:test', decoders=decoders(OTHER_KEYS))
    assert caught.value.reason == 'unconfirmed-complaint' and not caught.value.verified
    assert [claim.recipient for claim in caught.value.events] == ['x@y.org']
    assert caught.value.id_header is not None  # ingest checks it with its keys
    named = sample('synthetic-yahoo-cfl-redacted.eml').replace(
        b'Source-IP: 192.0.2.25', b'Source-IP: 192.0.2.25\nOriginal-Rcpt-To: kitty.cat@yahoo.example'
    )
    with pytest.raises(UnconfirmedComplaint) as caught:  # our return path verifies but names no recipient
        parse_message(named, 'maildir:test', decoders=decoders())
    assert caught.value.verified and caught.value.event.stream == 'marketing'
    with pytest.raises(UnconfirmedComplaint):
        parse_message(sample('sisimai-arf-02.eml'), 'maildir:test', decoders=decoders())


def test_a_report_without_any_recipient_carries_what_it_found() -> None:
    with pytest.raises(NoRecipient) as caught:
        parse(sample('synthetic-yahoo-cfl-redacted.eml'))
    partial = caught.value.event
    assert caught.value.reason == 'no-recipient'
    assert partial.recipient == '' and partial.kind == 'complaint'
    assert (partial.stream, partial.segment, partial.campaign) == ('marketing', '7', '42')
    assert partial.message_id == '20261206051000.42.7.1001@news.example.com'
    assert caught.value.id_header is not None
    # ingest finds the recipient (deliveries of that Message-ID, checked against the keyed id) ...
    assert tokens.read_id(caught.value.id_header, KEYS).matches('kitty.cat@yahoo.example', KEYS)
    assert not tokens.read_id(caught.value.id_header, KEYS).matches('someone.else@yahoo.example', KEYS)
    # ... and gets the key a report naming the recipient would have had
    named = sample('synthetic-yahoo-cfl-redacted.eml').replace(
        b'Source-IP: 192.0.2.25', b'Source-IP: 192.0.2.25\nOriginal-Rcpt-To: kitty.cat@yahoo.example'
    )
    [direct] = parse(named)
    assert complaint_key(partial, 'kitty.cat@yahoo.example') == direct.key


def test_forged_id_and_verp_values_are_ignored_and_reported() -> None:
    with pytest.raises(NoRecipient) as caught:
        parse(sample('synthetic-jmrp-anonymised.eml'), decoders=decoders(OTHER_KEYS))
    assert 'does not verify' in str(caught.value)
    assert caught.value.event.stream is None


def test_a_legacy_jmrp_report_uses_its_recipient_header() -> None:
    [event] = parse(sample('sisimai-arf-22.eml'))
    assert (event.recipient, event.feedback_type) == ('kijitora@example.com', 'abuse')
    stripped = sample('sisimai-arf-22.eml').replace(b'X-HmXmrOriginalRecipient', b'X-Other')
    assert error(stripped).reason == 'unknown-format'  # neither ARF nor a legacy JMRP report any more


# --- missing original, feedback types --------------------------------------------------------------------------------


def test_a_report_without_the_original_still_counts_when_it_names_the_recipient() -> None:
    [event] = parse(sample('synthetic-arf-no-original.eml'))
    assert (event.recipient, event.message_id, event.sending_ip) == ('bob@isp.example', None, '192.0.2.26')
    unnamed = sample('synthetic-arf-no-original.eml').replace(b'Original-Rcpt-To: <Bob@ISP.example>\n', b'')
    assert error(unnamed).reason == 'no-original-message'


@pytest.mark.parametrize(
    ('feedback_type', 'kind'),
    [(b'abuse', 'complaint'), (b'fraud', 'complaint'), (b'virus', 'complaint'), (b'opt-out', 'unsubscribe')],
)
def test_complaint_types_and_opt_out(feedback_type: bytes, kind: str) -> None:
    data = sample('synthetic-arf-no-original.eml').replace(b'Feedback-Type: abuse', b'Feedback-Type: ' + feedback_type)
    [event] = parse(data)
    assert (event.kind, event.status, event.feedback_type) == (kind, kind, feedback_type.decode())


@pytest.mark.parametrize(('count', 'events'), [(1000, 1000), (1001, 0)])
def test_a_report_may_name_at_most_1000_recipients(count: int, events: int) -> None:
    fields = b''.join(b'Original-Rcpt-To: user%d@isp.example\n' % number for number in range(count))
    data = sample('synthetic-arf-no-original.eml').replace(b'Original-Rcpt-To: <Bob@ISP.example>\n', fields)
    if events:
        assert len(parse(data)) == events
    else:
        assert error(data).reason == 'too-many-recipients'


def test_a_missing_feedback_type_counts_as_abuse() -> None:
    [event] = parse(sample('synthetic-arf-no-original.eml').replace(b'Feedback-Type: abuse\n', b''))
    assert event.feedback_type == 'abuse'


@pytest.mark.parametrize('feedback_type', [b'auth-failure', b'not-spam', b'whatever'])
def test_reports_that_are_no_complaint(feedback_type: bytes) -> None:
    data = sample('synthetic-arf-no-original.eml').replace(b'Feedback-Type: abuse', b'Feedback-Type: ' + feedback_type)
    assert error(data).reason == 'not-a-complaint'
    assert error(sample('sisimai-arf-19.eml')).reason == 'not-a-complaint'  # a real DMARC failure report


@pytest.mark.parametrize(
    ('value', 'expected'),
    [
        ('<Bob@ISP.example>', 'bob@isp.example'),
        ('Bob <bob@isp.example>', 'bob@isp.example'),
        ('<redacted>', None),
        ('redacted@outlook.example', None),
        ('****@outlook.example', None),
        ('b***@outlook.example', None),
        ('xxxxx@outlook.example', None),
        ('', None),
        ('bob@', None),
        ('b\ufffdb@isp.example', None),
    ],
)
def test_redacted_addresses_are_no_address(value: str, expected: str | None) -> None:
    assert _mime.address(value) == expected


# --- mailto unsubscribe ----------------------------------------------------------------------------------------------


def test_a_mailto_unsubscribe_with_our_token_unsubscribes_the_token_recipient() -> None:
    [event] = parse(sample('synthetic-mailto-unsubscribe.eml'))
    assert (event.kind, event.status, event.recipient, event.stream) == (
        'unsubscribe',
        'unsubscribe',
        'anna@gmail.example',
        'marketing',
    )
    other_from = sample('synthetic-mailto-unsubscribe.eml').replace(b'From: Anna <anna@gmail.example>', b'From: x@y.z')
    assert parse(other_from)[0].recipient == 'anna@gmail.example'  # the From header is never trusted


def test_the_token_may_be_in_the_address() -> None:
    data = sample('synthetic-mailto-unsubscribe.eml')
    token = data.split(b'Subject: unsubscribe ')[1].split(b'\n')[0]
    moved = data.replace(b'Subject: unsubscribe ' + token, b'Subject: Unsubscribe').replace(
        b'X-Original-To: unsubscribe@', b'X-Original-To: unsubscribe+' + token + b'@'
    )
    assert parse(moved)[0].recipient == 'anna@gmail.example'
    msg = _mime.parse_bytes(moved, 'test')
    assert token.decode() in token_candidates(msg, None)


def test_forged_and_expired_tokens_are_refused() -> None:
    data = sample('synthetic-mailto-unsubscribe.eml')
    assert error(data, decoders=decoders(OTHER_KEYS)).reason == 'bad-token'
    assert error(data, decoders=decoders(max_age=60)).reason == 'bad-token'  # made 20 minutes before NOW


def test_an_unsubscribe_request_without_a_token() -> None:
    data = sample('synthetic-mailto-unsubscribe.eml')
    token = data.split(b'Subject: unsubscribe ')[1].split(b'\n')[0]
    plain = data.replace(token, b'me')
    assert b'Subject: unsubscribe me\n' in plain
    assert error(plain).reason == 'no-token'
    assert error(data, decoders=Decoders()).reason == 'no-token'  # no token decoder: nothing can verify it


# --- dispatch and bad input ------------------------------------------------------------------------------------------


def test_an_ordinary_message_and_other_report_types_are_unknown() -> None:
    ordinary = b'From: a@example.org\nTo: fbl@news.example.com\nSubject: hello\n\nhi\n'
    assert error(ordinary).reason == 'unknown-format'
    receipt = (
        b'From: a@example.org\nSubject: Read: hello\nMIME-Version: 1.0\n'
        b'Content-Type: multipart/report; report-type=disposition-notification; boundary="b"\n\n'
        b'--b\nContent-Type: message/disposition-notification\n\n'
        b'Disposition: manual-action/MDN-sent-manually; displayed\n'
        b'--b--\n'
    )
    assert error(receipt).reason == 'unknown-format'


def test_a_report_cut_off_in_its_feedback_part_is_truncated() -> None:
    data = sample('synthetic-arf-no-original.eml')
    assert error(data[: data.index(b'Original-Rcpt-To: <Bob@IS') + 23]).reason == 'truncated'
    whole = sample('sisimai-arf-02.eml')
    cut_in_original = whole[: whole.index(b'Subject: Nyaaaaaaaan\nMIME')]
    assert parse(cut_in_original)[0].recipient == 'this-local-part-does-not-exist-on-yahoo@yahoo.com'


@pytest.mark.parametrize('depth', [50, 5000])
def test_deeply_nested_parts_are_refused_not_a_recursion_error(depth: int) -> None:
    nested = b'From: a@example.org\n' + b'Content-Type: message/rfc822\n\n' * depth + b'Subject: x\n\nbody\n'
    assert error(nested).reason == ('unknown-format' if depth == 50 else 'too-deep')
    report = b'From: a@example.org\nContent-Type: multipart/report; report-type=feedback-report; boundary="b0"\n\n'
    report += b''.join(b'--b%d\nContent-Type: multipart/mixed; boundary="b%d"\n\n' % (i, i + 1) for i in range(depth))
    assert error(report).reason == ('no-feedback-report' if depth == 50 else 'too-deep')


def test_non_utf8_report_fields_do_not_crash() -> None:
    data = sample('synthetic-arf-no-original.eml').replace(b'<Bob@ISP.example>', b'<B\xf6b@ISP.example>')
    assert error(data).reason == 'no-original-message'  # the address is unreadable, nothing else names anyone
    latin_subject = sample('sisimai-arf-02.eml').replace(b'Subject: Fw: Nyaaaaaaaan', b'Subject: Fw: \xe9t\xe9')
    assert len(parse(latin_subject)) == 1


# --- the samples match today's VERP/token formats ------------------------------------------------------------------


def test_the_synthetic_samples_are_current() -> None:
    """Fails when feedback.verp/tokens change their format: rewrite the samples (feedback_samples.py says how)."""
    stale = [name for name, content in samples().items() if (DATA / name).read_text(encoding='utf-8') != content]
    assert stale == [], f'regenerate with: python -m tests.agent.feedback_samples {DATA}'


# --- never a traceback -----------------------------------------------------------------------------------------------


def mutations(data: bytes, rng: random.Random) -> list[bytes]:
    """Cut at random points, flip random bytes, drop random lines, and insert non-UTF-8 bytes."""
    out = [data[: rng.randrange(len(data))] for _ in range(60)]
    for _ in range(40):
        flipped = bytearray(data)
        for _ in range(rng.randrange(1, 20)):
            flipped[rng.randrange(len(flipped))] = rng.randrange(256)
        out.append(bytes(flipped))
    lines = data.split(b'\n')
    for _ in range(30):
        kept = [line for line in lines if rng.random() > 0.1]
        out.append(b'\n'.join(kept))
    out += [data.replace(b'\n', b'\r\n'), data.replace(b': ', b':\xff\xfe ', 5), data.replace(b'--', b'-', 3)]
    return out


@pytest.mark.parametrize('name', sorted(path.name for path in DATA.glob('*.eml')))
def test_broken_messages_give_events_or_an_event_error_never_a_traceback(name: str) -> None:
    rng = random.Random(name)  # the same mutations on every run
    outcomes: dict[str, int] = {}
    for data in mutations(sample(name), rng):
        try:
            events = parse(data, received=NOW)
        except EventError as caught:
            outcomes[caught.reason] = outcomes.get(caught.reason, 0) + 1
        else:
            assert all(isinstance(event, Event) and event.key for event in events)
            outcomes['events'] = outcomes.get('events', 0) + 1
    try:
        intact = bool(parse(sample(name), received=NOW))
    except EventError:
        intact = False
    assert len(outcomes) > 1  # the mutations are refused for different reasons ...
    assert not intact or outcomes.get('events', 0) > 0  # ... and some of a good sample still parse


# --- real-world shapes (modelled on public samples, written here) ----------------------------------------------------
# Shapes, not copies: RFC 5965's example (https://www.rfc-editor.org/rfc/rfc5965#appendix-B), FBL reports that put
# the header From in Original-Mail-From or send their parts in base64 (as in the sisimai corpus,
# https://github.com/sisimai/set-of-emails, maildir/bsd/arf-*.eml), SMTPUTF8 recipients (RFC 6532), and
# out-of-office replies (RFC 3834, https://www.rfc-editor.org/rfc/rfc3834#section-5).

SHAPED = """\
From: fbl@isp.example
To: fbl@news.example.com
Date: Sun, 06 Dec 2026 06:00:00 +0000
Message-ID: <report.1@isp.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="b"

--b
Content-Type: text/plain

An abuse report.

--b
Content-Type: message/feedback-report
{report_headers}
{report}
--b
Content-Type: message/rfc822
{original_headers}
{original}
--b--
"""
VERP = verp.encode(KEYS, stream='marketing', domain='bounces.news.example.com', recipient='ann@isp.example')


def shaped_report(fields: str, original: str, *, report_encoding: str = '', original_encoding: str = '') -> bytes:
    def encoded(text: str, encoding: str) -> str:
        return base64.encodebytes(text.encode()).decode() if encoding == 'base64' else text

    return SHAPED.format(
        report_headers=f'Content-Transfer-Encoding: {report_encoding}\n' if report_encoding else '',
        report=encoded(fields, report_encoding),
        original_headers=f'Content-Transfer-Encoding: {original_encoding}\n' if original_encoding else '',
        original=encoded(original, original_encoding),
    ).encode()


FIELDS = 'Feedback-Type: abuse\nUser-Agent: SomeFBL/1.0\nVersion: 1\nArrival-Date: Sun, 06 Dec 2026 05:00:00 +0000\n'
ORIGINAL = (
    f'Return-Path: <{VERP}>\nFrom: news@news.example.com\nTo: REDACTED\nMessage-ID: <o.1@news.example.com>\n\nhi\n'
)


def test_our_verp_in_the_originals_return_path_counts_when_original_mail_from_is_another_address() -> None:
    data = shaped_report(FIELDS + 'Original-Mail-From: news@news.example.com\n', ORIGINAL)
    [event] = parse(data)
    assert (event.recipient, event.stream, event.sender) == ('ann@isp.example', 'marketing', VERP)
    local, domain = VERP.split('@')
    forged = f'{local[:-3]}{"a" if local[-3] != "a" else "b"}{local[-2:]}@{domain}'  # the signature altered
    with pytest.raises(NoRecipient) as caught:  # a forged one is still ignored, and said so
        parse(shaped_report(FIELDS + f'Original-Mail-From: {forged}\n', ORIGINAL.replace(VERP, forged)))
    assert 'does not verify' in str(caught.value)


@pytest.mark.parametrize(
    ('report_encoding', 'original_encoding'), [('base64', ''), ('', 'base64'), ('base64', 'base64')]
)
def test_report_and_original_parts_in_base64_are_decoded(report_encoding: str, original_encoding: str) -> None:
    data = shaped_report(
        FIELDS + 'Original-Rcpt-To: <Bob@ISP.example>\n',
        ORIGINAL.replace(VERP, 'news@news.example.com'),
        report_encoding=report_encoding,
        original_encoding=original_encoding,
    )
    [event] = parse(data)
    assert (event.recipient, event.feedback_type, event.message_id) == (
        'bob@isp.example',
        'abuse',
        'o.1@news.example.com',
    )
    [ours] = parse(shaped_report(FIELDS, ORIGINAL, original_encoding='base64'))
    assert (ours.recipient, ours.stream) == ('ann@isp.example', 'marketing')  # the VERP inside the base64 original


@pytest.mark.parametrize(
    ('value', 'expected'),
    [('<jöe@bücher.example>', 'jöe@xn--bcher-kva.example'), ('bob@isp.example.', 'bob@isp.example')],
)
def test_utf8_and_trailing_dot_recipients_are_read(value: str, expected: str) -> None:
    [event] = parse(
        shaped_report(FIELDS + f'Original-Rcpt-To: {value}\n', ORIGINAL.replace(VERP, 'n@news.example.com'))
    )
    assert event.recipient == expected


@pytest.mark.parametrize(
    'headers',
    [
        'Return-Path: <>\nAuto-Submitted: auto-replied\nSubject: Re: deals',
        'Return-Path: <bob@isp.example>\nSubject: Automatic reply: deals',
        'Return-Path: <bob@isp.example>\nX-Autoreply: yes\nSubject: deals',
        'Return-Path: <>\nPrecedence: auto_reply\nSubject: Out of Office',
    ],
)
def test_an_out_of_office_reply_is_an_auto_reply_never_a_bounce(headers: str) -> None:
    message = f'{headers}\nFrom: Bob <bob@isp.example>\nTo: {VERP}\nMessage-ID: <ooo.1@isp.example>\n\nAway.\n'
    assert error(message.encode(), envelope_recipient=VERP).reason == 'auto-reply'


def test_a_text_bounce_with_the_auto_submitted_header_is_still_a_bounce() -> None:
    """Exim and Postfix put ``Auto-Submitted: auto-replied`` on their bounces too."""
    exim = (
        f'Return-Path: <>\nFrom: Mail Delivery System <Mailer-Daemon@mx.isp.example>\nTo: {VERP}\n'
        'Subject: Mail delivery failed: returning message to sender\nAuto-Submitted: auto-replied\n\n'
        'A message that you sent could not be delivered.\n  bob@isp.example\n    550 5.1.1 User unknown\n'
    )
    assert error(exim.encode()).reason == 'no-delivery-status'
    assert error(sample('sisimai-lhost-qmail-02.eml')).reason == 'no-delivery-status'


def test_an_auto_generated_notice_is_no_auto_reply() -> None:
    """RFC 3834 ``auto-generated`` marks notices (a blocked-message notice, a text bounce), not out-of-office
    replies: it stays a bounce we cannot read."""
    notice = (
        f'Return-Path: <>\nFrom: noreply@mx.isp.example\nTo: {VERP}\nSubject: Message blocked\n'
        'Auto-Submitted: auto-generated\n\nYour message to bob@isp.example was blocked.\n'
    )
    assert error(notice.encode(), envelope_recipient=VERP).reason == 'no-delivery-status'


@pytest.mark.parametrize('value', ['abuse (user clicked spam)', 'Abuse(fbl)', '(isp) abuse'])
def test_a_feedback_type_with_a_comment_is_still_a_complaint(value: str) -> None:
    """RFC 5965 allows CFWS around the token: a comment must not turn a complaint into ``not-a-complaint``."""
    fields = FIELDS.replace('Feedback-Type: abuse', f'Feedback-Type: {value}') + 'Original-Rcpt-To: bob@isp.example\n'
    [event] = parse(shaped_report(fields, ORIGINAL.replace(VERP, 'n@news.example.com')))
    assert (event.kind, event.feedback_type, event.recipient) == ('complaint', 'abuse', 'bob@isp.example')
    not_spam = fields.replace(f'Feedback-Type: {value}', 'Feedback-Type: not-spam (user moved it back)')
    assert error(shaped_report(not_spam, ORIGINAL)).reason == 'not-a-complaint'


@pytest.mark.parametrize('value', ['gone@faß.de', '<Gone@FAẞ.DE.>', 'Gone <gone@fa\u00df\u3002de>'])
def test_a_utf8_original_rcpt_to_gets_the_uts46_form_the_suppression_list_keys(value: str) -> None:
    """RFC 6532 reports name the recipient in UTF-8. ``faß.de`` was read with Python's IDNA 2003 codec as
    ``fass.de`` (another domain); the complaint must suppress ``xn--fa-hia.de``, the key of every spelling."""
    from mailinfra_agent.suppression import canonical_address

    fields = FIELDS + f'Original-Rcpt-To: {value}\n'
    [event] = parse(shaped_report(fields, ORIGINAL.replace(VERP, 'n@news.example.com')))
    assert (event.kind, event.recipient) == ('complaint', 'gone@xn--fa-hia.de')
    assert event.recipient == canonical_address(value.rpartition('<')[2].rstrip('>'))
