"""PowerMTA accounting CSV -> events (issue 13, ingest).

The field list is the powermta role's (``powermta__acct_fields``), read from its defaults, so a change there shows
up here; ``f`` and ``rb`` records use PowerMTA's default fields (mta.md §1.4) through per-type header lines.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from mailinfra_agent.feedback.events import Event, EventError
from mailinfra_agent.feedback.postfix_log import IspMatcher
from mailinfra_agent.feedback.powermta_acct import PowermtaAcctParser

ROOT = Path(__file__).resolve().parents[2]
ROLE_FIELDS: list[str] = yaml.safe_load((ROOT / 'roles/powermta/defaults/main.yml').read_text())[
    'powermta__acct_fields'
]
HEADER = ','.join(ROLE_FIELDS)
FEEDBACK_HEADER = '#f,timeLogged,orig,rcpt,feedbackType,format,userAgent,reportingMta,reportedDomain,vmtaPool'
REMOTE_HEADER = '#rb,timeLogged,orig,rcpt,dsnAction,dsnStatus,dsnDiag,dsnReportingMta,bounceCat,vmtaPool'


def row(kind: str, **values: str) -> str:
    defaults = {
        'timeLogged': '2026-12-06 06:00:05+0000',
        'timeQueued': '2026-12-06 06:00:00+0000',
        'orig': 'bounces+c7.s2.m9-x9f3@bounce.example',
        'rcpt': 'Alice@Example.COM',
        'dsnAction': 'relayed',
        'dsnStatus': '2.0.0 (success)',
        'dsnDiag': 'smtp;250 2.0.0 OK 1700000000 gsmtp',
        'dsnMta': 'mx.example.com (192.0.2.99)',
        'bounceCat': '',
        'srcMta': 'app.example',
        'dlvSourceIp': '198.51.100.20',
        'dlvDestinationIp': '192.0.2.99',
        'dlvSize': '4321',
        'vmta': 'marketing_198_51_100_20',
        'jobId': 'job-7',
        'envId': 'env-7',
    }
    defaults.update(values)
    return ','.join([kind, *(csv_field(defaults.get(name, '')) for name in ROLE_FIELDS[1:])])


def csv_field(value: str) -> str:
    return '"' + value.replace('"', '""') + '"' if ',' in value or '"' in value else value


def parse(lines: list[str], parser: PowermtaAcctParser | None = None) -> list[Event]:
    parser = parser or PowermtaAcctParser(
        isp_of=IspMatcher({'example.com': 'example'}), vmta_streams={'marketing_198_51_100_20': 'marketing'}
    )
    out: list[Event] = []
    for number, line in enumerate(lines, 1):
        out += parser.parse_line(line + '\n', '/var/log/pmta/acct.csv', number)
    return out


def test_the_role_configures_the_fields_the_parser_reads() -> None:
    assert {'type', 'timeLogged', 'timeQueued', 'orig', 'rcpt', 'dsnStatus', 'dsnDiag', 'dlvSourceIp', 'vmta'} <= set(
        ROLE_FIELDS
    )


def test_a_delivery_record_gives_a_sent_event_with_every_field() -> None:
    (event,) = parse([HEADER, row('d')])
    assert event == Event(
        key=event.key,
        kind='delivery',
        status='sent',
        time=dt.datetime(2026, 12, 6, 6, 0, 5, tzinfo=dt.UTC).timestamp(),
        recipient='alice@example.com',
        source='/var/log/pmta/acct.csv',
        stream='marketing',
        sending_ip='198.51.100.20',
        sender='bounces+c7.s2.m9-x9f3@bounce.example',
        isp='example',
        smtp_code='250',
        dsn='2.0.0',
        diagnostic='250 2.0.0 OK 1700000000 gsmtp',
        relay='mx.example.com (192.0.2.99)',
        delay=5.0,
    )


@pytest.mark.parametrize(
    ('kind', 'status', 'dsn', 'diagnostic', 'code'),
    [
        ('b', 'bounced', '5.1.1 (bad destination mailbox address)', 'smtp;550 5.1.1 <a@b>: User unknown, sorry', '550'),
        ('t', 'deferred', '4.7.28 (delivery not authorized)', 'smtp;421 4.7.28 Unusual rate, try later', '421'),
    ],
)
def test_bounce_and_transient_records(kind: str, status: str, dsn: str, diagnostic: str, code: str) -> None:
    (event,) = parse([HEADER, row(kind, dsnStatus=dsn, dsnDiag=diagnostic, bounceCat='bad-mailbox')])
    assert (event.kind, event.status, event.dsn, event.smtp_code) == ('delivery', status, dsn[:6].strip(), code)
    assert event.diagnostic == diagnostic[5:]  # the quoted comma survives
    assert event.category is None  # ingest classifies, not PowerMTA's bounceCat


def test_feedback_and_remote_bounce_records_use_their_own_header_lines() -> None:
    lines = [
        HEADER,
        FEEDBACK_HEADER,
        REMOTE_HEADER,
        'f,2026-12-06 07:00:00+0000,bounces+x@bounce.example,Bob@example.com,abuse,arf,Yahoo!-Mail-Feedback/2.0,'
        'feedback@arf.mail.yahoo.com,example.com,cold',
        'rb,2026-12-06 08:00:00+0000,bounces+y@bounce.example,carol@example.com,failed,5.2.2 (mailbox full),'
        '"smtp;552 5.2.2 Mailbox full, quota exceeded",mx.example.com,quota-issues,cold',
        row('d'),
    ]
    complaint, remote, delivered = parse(lines)
    assert (complaint.kind, complaint.status, complaint.feedback_type) == ('complaint', 'complaint', 'abuse')
    assert (complaint.recipient, complaint.stream, complaint.sender) == (
        'bob@example.com',
        'cold',
        'bounces+x@bounce.example',
    )
    assert (remote.kind, remote.status, remote.dsn, remote.smtp_code) == ('delivery', 'bounced', '5.2.2', '552')
    assert remote.diagnostic == '552 5.2.2 Mailbox full, quota exceeded'
    assert remote.delay is None  # no timeQueued in an rb record
    assert (delivered.status, delivered.stream) == ('sent', 'marketing')


def test_records_without_an_outcome_are_ignored_and_unknown_ones_refused() -> None:
    assert parse([HEADER, row('r'), row('tq'), '', '   ']) == []
    with pytest.raises(EventError) as error:
        parse([HEADER, row('x')])
    assert (error.value.reason, str(error.value)[:26]) == ('unknown-record', '/var/log/pmta/acct.csv:2: ')


def test_without_a_vmta_mapping_the_stream_is_unknown() -> None:
    (event,) = parse([HEADER, row('d')], PowermtaAcctParser())
    assert (event.stream, event.isp) == (None, None)


def test_a_message_id_header_field_is_read_without_brackets() -> None:
    header = HEADER + ',header_Message-Id'
    (event,) = parse([header, row('d') + ',<m-1@app.example>'])
    assert event.message_id == 'm-1@app.example'
    (without,) = parse([HEADER, row('d')])
    assert without.message_id is None


def test_the_same_line_gives_the_same_key_and_another_line_another() -> None:
    first = parse([HEADER, row('d'), row('d', rcpt='bob@example.com')])
    again = parse([HEADER, row('d'), row('d', rcpt='bob@example.com')])
    assert [e.key for e in first] == [e.key for e in again]
    assert first[0].key != first[1].key


def test_a_record_before_the_header_is_an_error_and_reset_forgets_the_header() -> None:
    with pytest.raises(EventError) as error:
        parse([row('d')])
    assert error.value.reason == 'no-header'
    parser = PowermtaAcctParser()
    assert len(parse([HEADER, row('d')], parser)) == 1
    parser.reset()
    with pytest.raises(EventError):
        parser.parse_line(row('d'), 'acct.csv.1', 1)


@pytest.mark.parametrize(
    ('line', 'reason'),
    [
        (row('d').rsplit(',', 3)[0], 'truncated'),
        (row('d') + ',extra', 'garbage'),
        (row('d', timeLogged='yesterday'), 'garbage'),
        (row('d', timeQueued='06:00'), 'garbage'),
        (row('d', rcpt=''), 'garbage'),
        ('d,"2026-12-06 06:00:05+0000', 'garbage'),  # an unclosed quote
    ],
)
def test_bad_rows_are_errors_with_their_location(line: str, reason: str) -> None:
    parser = PowermtaAcctParser()
    parser.parse_line(HEADER, 'acct.csv', 1)
    with pytest.raises(EventError) as error:
        parser.parse_line(line, 'acct.csv', 7)
    assert error.value.reason == reason
    assert str(error.value).startswith('acct.csv:7: ')
    assert len(parser.parse_line(row('d'), 'acct.csv', 8)) == 1  # the next row still parses


def test_text_that_was_not_utf8_goes_through() -> None:
    raw = row('d', rcpt='al-ce@example.com').encode().replace(b'al-ce', b'al\xe9ce')
    (event,) = parse([HEADER, raw.decode('utf-8', 'surrogateescape')])
    assert event.recipient == 'al\udce9ce@example.com'


@pytest.mark.parametrize('line', [row('d', rcpt='al\ud800ce@example.com'), row('d', dsnDiag='smtp;"\udfff"')])
def test_a_lone_surrogate_is_an_encoding_error(line: str) -> None:
    """A str no bytes decode to (not surrogateescape's U+DC80..U+DCFF) raised UnicodeEncodeError from the key."""
    parser = PowermtaAcctParser()
    parser.parse_line(HEADER, 'acct.csv', 1)
    with pytest.raises(EventError) as error:
        parser.parse_line(line, 'acct.csv', 2)
    assert error.value.reason == 'encoding'
    assert str(error.value).startswith('acct.csv:2: ')
    assert len(parser.parse_line(row('d'), 'acct.csv', 3)) == 1


def test_a_zone_is_applied_to_times_without_one() -> None:
    plus_one = dt.timezone(dt.timedelta(hours=1))
    line = row('d', timeLogged='2026-12-06 07:00:05', timeQueued='2026-12-06 07:00:00')
    (event,) = parse([HEADER, line], PowermtaAcctParser(tz=plus_one))
    assert event.time == dt.datetime(2026, 12, 6, 6, 0, 5, tzinfo=dt.UTC).timestamp()
    assert event.delay == 5.0
