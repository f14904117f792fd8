"""Postfix log lines -> delivery events and message records (issue 13, ingest).

The sample is a real Postfix instance's own log (``tests/data/feedback/logs/README.md`` says how it was captured).
"""

from __future__ import annotations

import datetime as dt
import gc
import weakref
from pathlib import Path

import pytest

from mailinfra_agent.feedback import postfix_log
from mailinfra_agent.feedback.events import Event, EventError, event_key
from mailinfra_agent.feedback.postfix_log import (
    FAST,
    FAST_LINES,
    Instance,
    IspMatcher,
    MessageSeen,
    ParsedLines,
    PostfixLogParser,
    Record,
    smtp_code_of,
)

LOGS = Path(__file__).resolve().parents[1] / 'data' / 'feedback' / 'logs'
POSTLOG = LOGS / 'postlog-cold_outreach.log'
REFERENCE = dt.datetime(2026, 12, 6, 7, 0, tzinfo=dt.UTC).timestamp()
ISPS = IspMatcher({'sink.invalid': 'sinkisp', 'gmail.com': 'gmail'})

PREFIX = 'Dec  6 06:00:00 mx1 postfix-marketing/out_192_0_2_10/smtp[77]: 3F2A1B4C5D: '
SENT = PREFIX + (
    'to=<Alice@Example.COM>, relay=mx.example.com[192.0.2.99]:25, delay=1.5, delays=0.1/0/0.4/1, dsn=2.0.0, '
    'status=sent (250 2.0.0 OK queued)'
)


def stamp_utc(year: int, month: int, day: int, hour: int, minute: int, second: int) -> float:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.UTC).timestamp()


def parse_all(lines: list[str], parser: PostfixLogParser | None = None, source: str = 'maillog') -> list[Record]:
    parser = parser or PostfixLogParser(isp_of=ISPS, reference_time=REFERENCE)
    records: list[Record] = []
    for number, line in enumerate(lines, 1):
        records += parser.parse_line(line, source, number)
    return records


def events(records: list[Record], status: str | None = None) -> list[Event]:
    return [r for r in records if isinstance(r, Event) and (status is None or r.status == status)]


def captured() -> list[str]:
    return POSTLOG.read_text(encoding='utf-8').splitlines(keepends=True)


def only(lines: list[str], text: str) -> str:
    found = [line for line in lines if text in line]
    assert len(found) == 1, found
    return found[0]


# --- the captured log ------------------------------------------------------------------------------------------------


def test_the_captured_log_gives_one_event_per_delivery_attempt() -> None:
    records = parse_all(captured())
    counts = {status: len(events(records, status)) for status in ('sent', 'deferred', 'bounced', 'expired')}
    # sent: ok1, ok2 and the three notifications; deferred: soft1 and soft2 five times each; expired: both.
    assert counts == {'sent': 5, 'deferred': 10, 'bounced': 1, 'expired': 2}
    seen = [r for r in records if isinstance(r, MessageSeen)]
    # three messages and their three notifications: once per queue id, not per qmgr retry line
    assert len([r for r in seen if r.sender is not None]) == 6
    assert len([r for r in seen if r.message_id is not None]) == 6
    keys = [r.key for r in records]
    assert len(keys) == len(set(keys))


def test_a_bounce_carries_every_field_and_the_verp_sender_of_its_message() -> None:
    (bounce,) = events(parse_all(captured()), 'bounced')
    assert bounce == Event(
        key=bounce.key,
        kind='delivery',
        status='bounced',
        time=stamp_utc(2026, 12, 6, 6, 12, 48),
        recipient='bad1@sink.invalid',
        source='maillog',
        stream='cold_outreach',
        queue_id='ED1E124E37F',
        sending_ip='198.51.100.30',
        sender='bounces+c7.s2.m1-x9f3@sink.invalid',
        isp='sinkisp',
        smtp_code='550',
        dsn='5.1.1',
        diagnostic=(
            'host 127.0.0.1[127.0.0.1] said: 550 5.1.1 <bad1@sink.invalid>: Recipient address rejected: '
            'User unknown (in reply to RCPT TO command)'
        ),
        relay='127.0.0.1[127.0.0.1]:41855',
        delay=0.06,
        message_id='capture-1@news.sink.invalid',
    )


def test_without_the_earlier_lines_sender_and_message_id_are_unknown() -> None:
    line = only(captured(), 'to=<bad1@')
    (bounce,) = events(parse_all([line]))
    assert (bounce.sender, bounce.message_id) == (None, None)


def test_remember_seeds_sender_and_message_id_and_removed_forgets_them() -> None:
    lines = captured()
    parser = PostfixLogParser(reference_time=REFERENCE)
    parser.remember('cold_outreach', 'ED1E124E37F', 'bounces+x@sink.invalid', 'm-1@x')
    (bounce,) = events(parser.parse_line(only(lines, 'to=<bad1@'), 'maillog', 1))
    assert (bounce.sender, bounce.message_id) == ('bounces+x@sink.invalid', 'm-1@x')
    assert parser.parse_line(only(lines, 'ED1E124E37F: removed'), 'maillog', 2) == []
    (again,) = events(parser.parse_line(only(lines, 'to=<bad1@'), 'maillog', 3))
    assert (again.sender, again.message_id) == (None, None)


def test_the_isp_comes_from_the_transport_name_else_from_the_recipient_domain() -> None:
    records = parse_all(captured())
    by_recipient = {e.recipient: e for e in events(records, 'sent')}
    assert by_recipient['ok2@gmail.test'].isp == 'gmail'  # out_198_51_100_30__gmail; the matcher knows no gmail.test
    assert by_recipient['ok1@sink.invalid'].isp == 'sinkisp'
    without = parse_all(captured(), PostfixLogParser(reference_time=REFERENCE))
    assert {e.recipient: e.isp for e in events(without, 'sent')}['ok1@sink.invalid'] is None


def test_expiry_gives_one_event_per_recipient_still_deferred() -> None:
    expired = events(parse_all(captured()), 'expired')
    assert sorted((e.queue_id, e.recipient) for e in expired) == [
        ('ED1E124E37F', 'soft1@sink.invalid'),  # not ok1 (sent) nor bad1 (bounced) of the same message
        ('F261124E382', 'soft2@sink.invalid'),
    ]
    soft1 = next(e for e in expired if e.recipient == 'soft1@sink.invalid')
    assert (soft1.dsn, soft1.smtp_code, soft1.sending_ip, soft1.delay) == ('4.2.1', '450', '198.51.100.30', None)
    assert soft1.time == stamp_utc(2026, 12, 6, 6, 13, 17)
    assert soft1.sender == 'bounces+c7.s2.m1-x9f3@sink.invalid'


def test_expiry_without_the_deferrals_gives_one_event_without_recipient() -> None:
    line = only(captured(), 'F261124E382: from=<bounces+c7.s2.m3-x9f3@sink.invalid>, status=expired')
    (expired,) = events(parse_all([line]))
    assert (expired.status, expired.recipient, expired.queue_id) == ('expired', '', 'F261124E382')
    assert expired.sender == 'bounces+c7.s2.m3-x9f3@sink.invalid'


def test_local_notifications_are_no_events_and_their_delivery_has_the_null_sender() -> None:
    lines = captured()
    notification = only(lines, 'sender non-delivery notification: 07BA924E733')
    assert parse_all([notification]) == []
    ndr = next(e for e in events(parse_all(lines), 'sent') if e.queue_id == '07BA924E733')
    assert (ndr.recipient, ndr.sender) == ('bounces+c7.s2.m1-x9f3@sink.invalid', '')


def test_message_records_strip_the_angle_brackets() -> None:
    records = parse_all(captured()[:6])
    seen = [r for r in records if isinstance(r, MessageSeen)]
    assert [(r.queue_id, r.sender, r.message_id, r.stream) for r in seen] == [
        ('ED1E124E37F', None, 'capture-1@news.sink.invalid', 'cold_outreach'),
        ('ED1E124E37F', 'bounces+c7.s2.m1-x9f3@sink.invalid', None, 'cold_outreach'),
    ]


# --- formats and times -----------------------------------------------------------------------------------------------


def classic(line: str) -> str:
    return line.replace('Dec 06 ', 'Dec  6 ', 1)


def rfc3339(line: str) -> str:
    return '2026-12-06T' + line[7:15] + '.250000+00:00' + line[15:]


@pytest.mark.parametrize('variant', [classic, rfc3339])
def test_syslog_and_rfc3339_lines_give_the_same_events(variant: object) -> None:
    assert callable(variant)
    postlog = events(parse_all(captured()))
    other = events(parse_all([variant(line) for line in captured()]))
    offset = 0.25 if variant is rfc3339 else 0.0
    assert [(e.status, e.recipient, e.queue_id, e.time + offset, e.dsn) for e in postlog] == [
        (e.status, e.recipient, e.queue_id, e.time, e.dsn) for e in other
    ]
    assert {e.key for e in postlog}.isdisjoint(e.key for e in other)  # the stamp text is part of the key


@pytest.mark.parametrize(
    ('stamp', 'seconds'),
    [
        ('1796536800', 0.0),  # journalctl short-unix (with a fraction), rsyslog date-unixtimestamp
        ('1796536800.250000', 0.25),
        ('20261206060000', 0.0),  # rsyslog date-mysql: local time
        ('2026-12-06 06:00:00', 0.0),  # rsyslog date-pgsql: local time, a space before it
        ('2026-12-06 06:00:00.5', 0.5),
        ('2026-12-06 07:00:00+01:00', 0.0),
        ('Sun 2026-12-06 06:00:00 UTC', 0.0),  # journalctl short-full
        ('Sun 2026-12-06 06:00:00 GMT', 0.0),
    ],
)
def test_dated_stamps_of_other_writers(stamp: str, seconds: float) -> None:
    (event,) = parse_all([SENT.replace('Dec  6 06:00:00', stamp)])
    assert event.time == stamp_utc(2026, 12, 6, 6, 0, 0) + seconds


@pytest.mark.parametrize(
    'stamp',
    [
        'Sun 2026-12-06 06:00:00 CET',  # not an abbreviation of the parser's zone (UTC): never guessed
        'Sun 2026-12-06 06:00:00+01:00 CET',
        '179653680000',  # twelve digits: neither seconds since 1970 nor YYYYMMDDhhmmss
        '2026120606000',
        '2026-12-06 25:00:00',
        '2026-12-06',  # a date alone (fromisoformat reads midnight), and in the basic format
        '20261206',
        '179653680',  # nine digits: 1975, never a stamp of a log read now (seconds since 1970 have 10 from 2001)
        'Mon 2026-12-06 06:00:00 UTC',  # short-full: 6 December 2026 is a Sunday
    ],
)
def test_unreadable_dated_stamps_are_garbage(stamp: str) -> None:
    with pytest.raises(EventError) as error:
        parse_all([SENT.replace('Dec  6 06:00:00', stamp)])
    assert error.value.reason == 'garbage'
    assert 'unreadable time stamp' in str(error.value)


@pytest.mark.parametrize('zone', ['CET', 'CEST'])
def test_a_short_full_stamp_in_the_hour_the_clock_skipped_is_garbage(zone: str) -> None:
    """02:30 on 29 March 2026 never happened in Berlin (02:00 CET became 03:00 CEST): under either name it is no
    moment, not the hour before or after."""
    from zoneinfo import ZoneInfo

    parser = PostfixLogParser(reference_time=REFERENCE, tz=ZoneInfo('Europe/Berlin'))
    with pytest.raises(EventError) as error:
        parse_all([SENT.replace('Dec  6 06:00:00', f'Sun 2026-03-29 02:30:00 {zone}')], parser)
    assert 'unreadable time stamp' in str(error.value)
    (event,) = parse_all([SENT.replace('Dec  6 06:00:00', 'Sun 2026-03-29 03:30:00 CEST')], parser)
    assert event.time == stamp_utc(2026, 3, 29, 1, 30, 0)


@pytest.mark.parametrize('stamp', ['2026-10-25 02:30:00', '20261025023000'])
def test_a_stamp_without_an_offset_in_the_repeated_hour_is_read_as_the_first(stamp: str) -> None:
    """date-pgsql and date-mysql (docs/feedback.md): both 02:30 of the night daylight saving ends are 00:30 UTC."""
    from zoneinfo import ZoneInfo

    parser = PostfixLogParser(reference_time=REFERENCE, tz=ZoneInfo('Europe/Berlin'))
    (event,) = parse_all([SENT.replace('Dec  6 06:00:00', stamp)], parser)
    assert event.time == stamp_utc(2026, 10, 25, 0, 30, 0)


def test_a_zone_is_applied_to_stamps_without_one() -> None:
    berlin = dt.timezone(dt.timedelta(hours=1))
    (event,) = events(parse_all([SENT], PostfixLogParser(reference_time=REFERENCE, tz=berlin)))
    assert event.time == stamp_utc(2026, 12, 6, 5, 0, 0)


@pytest.mark.parametrize(
    ('reference', 'stamp', 'year'),
    [
        ((2026, 12, 6), 'Dec  6 06:00:00', 2026),
        ((2026, 12, 6), 'Dec  7 23:00:00', 2026),  # a little in the future: clock skew
        ((2026, 12, 6), 'Dec 20 06:00:00', 2025),  # two weeks ahead is last year's
        ((2027, 1, 2), 'Dec 31 23:59:59', 2026),  # the log crosses New Year
        ((2026, 12, 31), 'Jan  1 00:30:00', 2027),
        ((2029, 3, 1), 'Feb 29 12:00:00', 2028),  # the last year that has the day
    ],
)
def test_yearless_stamps_take_the_year_from_the_reference(
    reference: tuple[int, int, int], stamp: str, year: int
) -> None:
    parser = PostfixLogParser(reference_time=stamp_utc(*reference, 12, 0, 0))
    (event,) = events(parser.parse_line(stamp + SENT[15:], 'maillog', 1))
    assert dt.datetime.fromtimestamp(event.time, dt.UTC).year == year


@pytest.mark.parametrize('tz', [dt.UTC, dt.timezone(dt.timedelta(hours=1))])
def test_a_following_parser_moves_its_reference_with_the_clock(monkeypatch: pytest.MonkeyPatch, tz: dt.tzinfo) -> None:
    """A parser without a fixed reference follows a log for months: three days after it was made, a line of
    today is today's, not last year's (its reference of three days ago would put it more than two days ahead)."""
    from mailinfra_agent.feedback import postfix_log

    clock = [stamp_utc(2026, 12, 3, 12, 0, 0)]
    monkeypatch.setattr(postfix_log.time_module, 'time', lambda: clock[0])
    parser = PostfixLogParser(tz=tz)
    clock[0] = stamp_utc(2026, 12, 6, 12, 0, 0)
    (event,) = events(parser.parse_line('Dec  6 06:00:00' + SENT[15:], 'maillog', 1))
    assert dt.datetime.fromtimestamp(event.time, dt.UTC).year == 2026
    clock[0] = stamp_utc(2027, 1, 1, 0, 30, 0)  # a new year: cached midnights and stamps of the old one go
    (event,) = events(parser.parse_line('Jan  1 00:10:00' + SENT[15:], 'maillog', 2))
    assert dt.datetime.fromtimestamp(event.time, tz).year == 2027


def test_a_stamp_read_before_the_reference_moved_is_read_again_after(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stamp more than two days ahead of the reference is last year's; once the clock has moved on (same year),
    the same stamp is this year's, as a new parser reads it, not the cached answer of the old reference."""
    from mailinfra_agent.feedback import postfix_log

    clock = [stamp_utc(2026, 3, 1, 12, 0, 0)]
    monkeypatch.setattr(postfix_log.time_module, 'time', lambda: clock[0])
    parser = PostfixLogParser()
    (early,) = events(parser.parse_line('Mar 10 12:00:00' + SENT[15:], 'maillog', 1))
    assert dt.datetime.fromtimestamp(early.time, dt.UTC).year == 2025
    clock[0] = stamp_utc(2026, 3, 10, 12, 0, 0)
    events(parser.parse_line('Mar 10 11:59:00' + SENT[15:], 'maillog', 2))  # a miss: the reference moves
    (later,) = events(parser.parse_line('Mar 10 12:00:00' + SENT[15:], 'maillog', 3))
    (fresh,) = events(PostfixLogParser().parse_line('Mar 10 12:00:00' + SENT[15:], 'maillog', 1))
    assert later.time == fresh.time
    assert dt.datetime.fromtimestamp(later.time, dt.UTC).year == 2026


@pytest.mark.parametrize('reference', [(2026, 12, 6), (2027, 1, 2), (2029, 3, 1), (2028, 2, 28)])
def test_a_fixed_offset_reads_stamps_as_a_zone_with_that_offset(reference: tuple[int, int, int]) -> None:
    """A fixed offset (dt.timezone) takes the day's midnight once and adds the time of day; a zone from the tz
    database takes the general path. Both give the same times, years and errors."""
    from zoneinfo import ZoneInfo

    moment = stamp_utc(*reference, 12, 0, 0)
    fixed = PostfixLogParser(reference_time=moment, tz=dt.timezone(dt.timedelta(hours=1)))
    zone = PostfixLogParser(reference_time=moment, tz=ZoneInfo('Etc/GMT-1'))  # UTC+1, never daylight saving
    stamps = [
        'Dec  6 06:00:00',
        'Dec  7 23:59:59',
        'Dec 31 23:59:59.25',
        'Jan  1 00:00:00',
        'Feb 28 12:00:00',
        'Feb 29 12:00:00',
        'Mar  1 00:00:01',
        'Jun 15 13:14:15',
        'Dec 20 06:00:00',
        'Dec  6 06:00:00',
    ]
    bad = ['Dec  6 24:00:00', 'Dec  6 23:60:00', 'Dec  6 23:59:60', 'Feb 30 12:00:00', 'Apr 31 01:00:00']
    for number, stamp in enumerate(stamps + bad, 1):
        results: list[float | str] = []
        for parser in (fixed, zone):
            try:
                (event,) = events(parser.parse_line(stamp + SENT[15:], 'maillog', number))
                results.append(event.time)
            except EventError as error:
                results.append(error.reason)
        assert results[0] == results[1], stamp
        if stamp in bad:
            assert results[0] == 'garbage', stamp
        elif not stamp.startswith('Feb 29'):  # only within a year of a leap year
            assert isinstance(results[0], float), stamp


@pytest.mark.parametrize('second', [0, 30, 59])
def test_the_seconds_of_a_minute_get_the_year_of_the_general_path(second: int) -> None:
    """A fixed offset reads the other seconds of a minute from its first stamp, but only for a minute wholly on one
    side of the reference's limit (two days ahead): here the limit is 06:00:<second> two days on, so the seconds
    up to it are this year's and the later ones last year's. Errors stay errors."""
    from zoneinfo import ZoneInfo

    moment = stamp_utc(2026, 12, 4, 6, 0, second)
    fixed = PostfixLogParser(reference_time=moment)  # UTC: a fixed offset
    zone = PostfixLogParser(reference_time=moment, tz=ZoneInfo('Etc/UTC'))  # the general path
    straddling = [f'Dec  6 06:00:{s:02d}' for s in (10, 59, 0, 30, 31, 45, 29)]
    whole = [f'Dec  6 05:59:{s:02d}' for s in (5, 59, 0)] + ['Dec  6 05:59:7', 'Dec  6 05:59:٣٣']
    bad = ['Dec  6 05:59:60', 'Dec  6 05:59:6x', 'Dec  6 05:59:-1']
    for number, stamp in enumerate(straddling + whole + bad, 1):
        results: list[float | str] = []
        for parser in (fixed, zone):
            try:
                (event,) = events(parser.parse_line(stamp + SENT[15:], 'maillog', number))
                results.append(event.time)
            except EventError as error:
                results.append(error.reason)
        assert results[0] == results[1], stamp
        if stamp in bad:
            assert results[0] == 'garbage', stamp
            continue
        assert isinstance(results[0], float)
        year = dt.datetime.fromtimestamp(results[0], dt.UTC).year
        late = stamp in straddling and int(stamp[-2:]) > second
        assert year == (2025 if late else 2026), stamp
    assert fixed.parse_line('Dec  6 05:59:33' + SENT[15:], 'maillog', 99)[0].time == stamp_utc(2026, 12, 6, 5, 59, 33)


def test_keys_are_the_event_keys_of_the_line() -> None:
    """Lines are keyed ``event_key('postfix', line)`` (a shortcut computes it): keys of stores written before stay."""
    lines = [*captured(), SENT.replace('Alice', 'Al\udcffice') + '\n']
    records = parse_all(lines)
    keyed = [record for record in records if not (isinstance(record, Event) and record.status == 'expired')]
    assert len(keyed) > 20
    by_line = {event_key('postfix', line.rstrip('\r\n')) for line in lines}
    assert all(record.key in by_line for record in keyed)
    assert any(isinstance(record, MessageSeen) for record in keyed)


def test_a_fraction_of_seconds_in_a_yearless_stamp_is_kept() -> None:
    (event,) = events(parse_all(['Dec 06 06:00:00.500000' + SENT[15:]]))
    assert event.time == stamp_utc(2026, 12, 6, 6, 0, 0) + 0.5


# --- instances, transports, ISPs -------------------------------------------------------------------------------------


def test_the_sending_ip_comes_from_the_transport_else_the_instances_only_address() -> None:
    plain = SENT.replace('out_192_0_2_10/smtp', 'smtp')
    one = PostfixLogParser([Instance('postfix-marketing', 'news', ('192.0.2.7',))], reference_time=REFERENCE)
    pair = ('192.0.2.7', '192.0.2.8')
    two = PostfixLogParser([Instance('postfix-marketing', 'news', pair)], reference_time=REFERENCE)
    (from_transport,) = events(one.parse_line(SENT, 'maillog', 1))
    assert (from_transport.sending_ip, from_transport.stream) == ('192.0.2.10', 'news')
    (single,) = events(one.parse_line(plain, 'maillog', 2))
    assert single.sending_ip == '192.0.2.7'
    (ambiguous,) = events(two.parse_line(plain, 'maillog', 1))
    assert ambiguous.sending_ip is None
    named = SENT.replace('out_192_0_2_10/', 'out_alloc1__gmail/')
    (not_an_address,) = events(one.parse_line(named, 'maillog', 3))
    assert (not_an_address.sending_ip, not_an_address.isp) == ('192.0.2.7', 'gmail')
    keyed = PostfixLogParser(
        [Instance('postfix-marketing', 'news', pair, (('alloc1', '192.0.2.8'),))], reference_time=REFERENCE
    )
    (from_key,) = events(keyed.parse_line(named, 'maillog', 1))
    assert from_key.sending_ip == '192.0.2.8'
    (unknown_key,) = events(two.parse_line(named, 'maillog', 4))
    assert unknown_key.sending_ip is None


def test_streams_of_unlisted_instances_follow_the_role_naming() -> None:
    (stream,) = events(parse_all([SENT]))
    assert stream.stream == 'marketing'
    (primary,) = events(parse_all([SENT.replace('postfix-marketing/', 'postfix/')]))
    assert primary.stream is None
    assert parse_all([SENT.replace('postfix-marketing/', 'opendkim/')]) == []
    assert parse_all([SENT.replace('postfix-marketing/out_192_0_2_10/smtp', 'postfix-marketing')]) == []


def test_isp_matcher_takes_the_longest_listed_suffix() -> None:
    matcher = IspMatcher({'gmail.com': 'gmail', 'Example.COM.': 'example', 'mail.example.com': 'other'})
    assert matcher('gmail.com') == 'gmail'
    assert matcher('eu.mail.example.com') == 'other'
    assert matcher('example.com') == 'example'
    assert matcher('gmail.com.evil.test') is None
    assert IspMatcher({}, default='*')('nowhere.test') == '*'


@pytest.mark.parametrize(
    ('text', 'code'),
    [
        ('250 2.0.0 OK queued', '250'),
        ('host mx[192.0.2.1] said: 550-5.1.1 The email account does not exist', '550'),
        ('host mx[192.0.2.1] refused to talk to me: 554 5.7.1 blocked', '554'),
        ('connect to mx[192.0.2.1]:25: Connection refused', None),
        ('delivery temporarily suspended: lost connection with mx[192.0.2.1]', None),
        ('host mx said: 5500 nonsense', None),
    ],
)
def test_smtp_code_of(text: str, code: str | None) -> None:
    assert smtp_code_of(text) == code


# --- keys ------------------------------------------------------------------------------------------------------------


def test_the_same_line_read_twice_gives_the_same_key() -> None:
    first = events(parse_all(captured(), source='/var/log/postfix/postfix-cold_outreach.log'))
    again = events(parse_all(captured(), source='/var/log/postfix/postfix-cold_outreach.log.1'))
    assert [e.key for e in first] == [e.key for e in again]
    (one,) = events(parse_all([SENT]))
    (other,) = events(parse_all([SENT.replace('delay=1.5', 'delay=1.6')]))
    assert one.key != other.key


# --- bad input -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    'cut',
    [
        PREFIX + 'to=<alice@example.com',
        PREFIX + 'to=<alice@example.com>, relay=mx.example.com[192.0.2.99]:25, delay=1.5, dsn=2',
        PREFIX + 'to=<alice@example.com>, relay=mx.example.com[192.0.2.99]:25, delay=1.5, dsn=2.0.0, status=se',
        PREFIX + 'to=<alice@example.com>, relay=mx.example.com[192.0.2.99]:25, delay=1.5, dsn=2.0.0, status=sent (250 ',
    ],
)
def test_a_truncated_delivery_line_is_an_error_with_its_location(cut: str) -> None:
    parser = PostfixLogParser(reference_time=REFERENCE)
    with pytest.raises(EventError) as error:
        parser.parse_line(cut, '/var/log/postfix.log', 42)
    assert error.value.reason == 'truncated'
    assert str(error.value).startswith('/var/log/postfix.log:42: ')


@pytest.mark.parametrize(
    ('line', 'reason'),
    [
        (SENT.replace('dsn=2.0.0', 'dsn=two'), 'garbage'),
        (SENT.replace('delay=1.5', 'delay=soon'), 'garbage'),
        (SENT.replace('relay=', 'relay'), 'garbage'),
        (SENT.replace('Dec  6', 'Dxc  6'), 'garbage'),
        (SENT.replace('Dec  6 06:00:00', 'Dec 36 06:00:00'), 'garbage'),
        (SENT.replace('status=sent', 'status=frobbed'), 'unknown-status'),
        ('Dec  6 06:00:00 mx1 postfix/smtp[1] to=<a@b>, status=sent (x)', 'garbage'),
    ],
)
def test_a_garbled_delivery_line_is_an_error(line: str, reason: str) -> None:
    with pytest.raises(EventError) as error:
        parse_all([line])
    assert error.value.reason == reason
    assert str(error.value).startswith('maillog:1: ')


@pytest.mark.parametrize(
    'line', [SENT.replace(' mx1 ', ' ', 1), SENT.replace('Dec  6 06:00:00 mx1 ', '2026-12-06 06:00:00 ', 1)]
)
def test_a_line_without_its_host_name_is_garbage(line: str) -> None:
    """A template without the host name: the program where the host goes, never a stamp of the date alone."""
    with pytest.raises(EventError) as error:
        parse_all([line])
    assert error.value.reason == 'garbage'


MTA = Instance('mta', 'bulk')
"""An instance whose syslog_name does not start with ``postfix``."""


def test_a_line_without_its_host_name_is_garbage_for_any_instance_name() -> None:
    line = SENT.replace('postfix-marketing/out_192_0_2_10/', 'mta/', 1)
    (event,) = parse_all([line], PostfixLogParser([MTA], reference_time=REFERENCE))
    assert (event.stream, event.status) == ('bulk', 'sent')
    with pytest.raises(EventError) as error:
        parse_all([line.replace(' mx1 ', ' ', 1)], PostfixLogParser([MTA], reference_time=REFERENCE))
    assert error.value.reason == 'garbage'
    assert 'no host name before the program' in str(error.value)
    assert parse_all([line.replace(' mx1 ', ' ', 1)]) == []  # without the instance: another program's line


@pytest.mark.parametrize('host', ['postfix1', 'postfix-relay', 'postfix'])
def test_a_host_named_postfix_is_a_host(host: str) -> None:
    """Another program's line with ``to=<`` and ``status=`` on a host whose name starts with ``postfix`` is not
    Postfix's, and Postfix's lines there are read."""
    other = f'Dec  6 06:00:00 {host} sendmail[12]: foo to=<a@b>, status=sent'
    assert parse_all([other]) == []
    assert PostfixLogParser(reference_time=REFERENCE).parse_lines([other.encode()], 'maillog') == ParsedLines()
    (event,) = parse_all([SENT.replace(' mx1 ', f' {host} ', 1)])
    assert event.status == 'sent'


@pytest.mark.parametrize(
    'line',
    [
        '',
        '\x00\x01garbage',
        'Dec  6 06:00:00 mx1 systemd[1]: mailinfra.service: Main process exited, status=1/FAILURE',
        'Dec  6 06:00:00 mx1 dovecot[9]: lmtp(alice)<5><x>: to=<alice@example.com>: saved mail to INBOX',
        'Dec  6 06:00:00 mx1 postfix-marketing/inject/smtpd[5]: 3F2A1B4C5D: client=unknown[127.0.0.1]',
        'Dec  6 06:00:00 mx1 postfix-marketing/smtpd[5]: NOQUEUE: reject: RCPT from x[192.0.2.1]: 554 5.7.1 '
        '<a@b>: Relay access denied; from=<x@y> to=<a@b> proto=ESMTP helo=<x>',
        'Dec  6 06:00:00 mx1 postfix-marketing/smtp[5]: warning: to=<a@b> something new, status=odd',
        'Dec  6 06:00:00 mx1 postfix-marketing/pickup[5]: 3F2A1B4C5D: uid=0 from=<root>',
        PREFIX + 'to=<a@example.com>, relay=none, delay=0, dsn=2.1.5, status=deliverable (address verified)',
    ],
)
def test_other_lines_give_nothing(line: str) -> None:
    assert parse_all([line]) == []


def test_a_known_line_still_parses_after_one_that_failed() -> None:
    parser = PostfixLogParser(reference_time=REFERENCE)
    with pytest.raises(EventError):
        parser.parse_line(PREFIX + 'to=<alice@example.com', 'maillog', 1)
    assert len(events(parser.parse_line(SENT, 'maillog', 2))) == 1


def test_text_that_was_not_utf8_goes_through() -> None:
    raw = SENT.encode().replace(b'Alice', b'Al\xe9ce')
    line = raw.decode('utf-8', 'surrogateescape')
    (event,) = events(parse_all([line]))
    assert event.recipient == 'al\udce9ce@example.com'
    assert event.key == events(parse_all([line]))[0].key


@pytest.mark.parametrize(
    'line',
    [
        SENT.replace('Alice', 'Al\ud800ce'),
        SENT.replace('OK queued', 'OK \udfff'),
        'Dec  6 06:00:00 mx1 postfix-marketing/qmgr[5]: 3F2A1B4C5D: from=<b\ud800@x.example>, size=1, nrcpt=1',
        'Dec  6 06:00:00 mx1 postfix-marketing/cleanup[5]: 3F2A1B4C5D: message-id=<\udbff@x.example>',
        'Dec  6 06:00:00 mx1 postfix-marketing/qmgr[5]: 3F2A1B4C5D: from=<\ud800>, status=expired, returned to sender',
    ],
)
def test_a_lone_surrogate_is_an_encoding_error_that_changes_nothing(line: str) -> None:
    """A str no bytes decode to (not surrogateescape's U+DC80..U+DCFF) raised UnicodeEncodeError from the key."""
    parser = PostfixLogParser(reference_time=REFERENCE)
    with pytest.raises(EventError) as error:
        parser.parse_line(line, 'maillog', 3)
    assert error.value.reason == 'encoding'
    assert str(error.value).startswith('maillog:3: ')
    (event,) = events(parser.parse_line(SENT, 'maillog', 4))
    assert event.sender is None and event.message_id is None  # the failed line left no sender or Message-ID behind


def test_parse_lines_counts_surrogates_encoded_as_bytes_as_not_utf8() -> None:
    raw = SENT.encode().replace(b'Alice', b'Al\xed\xa0\x80ce')
    parsed = PostfixLogParser(reference_time=REFERENCE).parse_lines([raw, SENT.encode()], 'maillog', 1)
    assert parsed.problems == [(1, None)]
    assert len(parsed.events) == 2


def test_long_queue_ids_are_read_and_words_are_not_queue_ids() -> None:
    long_id = SENT.replace('3F2A1B4C5D', '4XyZbCdFgHz1Jk')
    (event,) = events(parse_all([long_id]))
    assert event.queue_id == '4XyZbCdFgHz1Jk'
    assert parse_all([SENT.replace('3F2A1B4C5D', 'warning')]) == []


def test_the_queue_id_map_is_bounded() -> None:
    parser = PostfixLogParser(reference_time=REFERENCE, max_messages=2)
    for number, queue_id in enumerate(('AAAAA1', 'AAAAA2', 'AAAAA3'), 1):
        parser.parse_line(
            f'Dec  6 06:00:00 mx1 postfix-m/qmgr[9]: {queue_id}: from=<s{number}@x>, size=1, nrcpt=1 (queue active)',
            'maillog',
            number,
        )
    senders = [
        events(parser.parse_line(SENT.replace('3F2A1B4C5D', queue_id).replace('marketing', 'm'), 'maillog', 9))[0]
        for queue_id in ('AAAAA1', 'AAAAA2', 'AAAAA3')
    ]
    assert [e.sender for e in senders] == [None, 's2@x', 's3@x']


def test_a_recipient_delivered_after_a_deferral_does_not_expire() -> None:
    deferred = SENT.replace('dsn=2.0.0, status=sent (250 2.0.0 OK queued)', 'dsn=4.2.1, status=deferred (busy)')
    lines = [
        deferred,
        deferred.replace('Alice@Example.COM', 'bob@example.com'),
        SENT.replace('06:00:00', '06:10:00'),  # alice delivered on retry
        'Dec  6 07:00:00 mx1 postfix-marketing/qmgr[9]: 3F2A1B4C5D: from=<s@x>, status=expired, returned to sender',
    ]
    assert [e.recipient for e in events(parse_all(lines), 'expired')] == ['bob@example.com']


# --- parse_lines: the batch path (issue 13, speed) -------------------------------------------------------------------

H = 'Dec  6 06:00:0{s} mx1 '
SMTP = H + 'postfix-marketing/out_192_0_2_10__gmail/smtp[77]: {q}: '
QMGR = H + 'postfix-marketing/qmgr[5]: {q}: '
FIELDS = 'relay=mx.example.com[192.0.2.99]:25, delay=1.5, delays=0.1/0/0.4/1, dsn={d}, status={st}'
MIXED = [
    SMTP + 'to=<A@Gmail.com>, ' + FIELDS.format(d='2.0.0', st='sent (250 2.0.0 OK)'),
    QMGR + 'from=<bounce+a@example.org>, size=10, nrcpt=1 (queue active)',
    QMGR + 'from=<bounce+a@example.org>, size=10, nrcpt=1 (queue active)',  # the same line again (a retry)
    H + 'postfix-marketing/cleanup[6]: {q}: message-id=<m1@example.org>',
    H + 'postfix-marketing/cleanup[6]: {q}: message-id=<m1@example.org>',
    H + 'postfix-marketing/cleanup[6]: {q}: message-id= <m2@example.org> ',
    SMTP + 'to=<d@gmail.com>, ' + FIELDS.format(d='4.2.1', st='deferred (host x said: 450 4.2.1 slow down)'),
    SMTP + 'to=<e@gmail.com>, ' + FIELDS.format(d='4.2.1', st='SOFTBOUNCE (host x refused to talk to me: 421 no)'),
    QMGR + 'from=<bounce+a@example.org>, status=expired, returned to sender',
    'Dec  6 06:00:09 mx1 postfix-marketing/qmgr[5]: 5D4C3B2A1F: from=<x@example.org>, status=expired, returned',
    SMTP + 'to=<b@gmail.com>, orig_to=<c@gmail.com>, ' + FIELDS.format(d='5.1.1', st='bounced (550 5.1.1 no)'),
    SMTP + 'to=<v@gmail.com>, ' + FIELDS.format(d='2.0.0', st='deliverable (250 ok)'),
    H + 'postfix-marketing/local[8]: {q}: to=<root@mx1>, relay=local, delay=0, delays=0/0/0/0, dsn=2.0.0, '
    'status=sent (delivered to mailbox)',
    QMGR + 'removed',
    SMTP + 'to=<a@gmail.com>, ' + FIELDS.format(d='2.0.0', st='sent (250 2.0.0 OK)') + '\r',  # CRLF
    QMGR + 'from=<crlf@example.org>, size=1, nrcpt=1 (queue active)\r',
    H + 'postfix-marketing/cleanup[6]: {q}: message-id=<crlf@example.org>\r',
    QMGR + 'removed\r',
    '2026-12-06T06:00:00.123456+00:00 mx1 postfix/smtp[9]: 1A2B3C4D5E: to=<iso@gmail.com>, '
    + FIELDS.format(d='2.0.0', st='sent (250 ok)'),
    'Dec 06 06:00:00.5 mx1 postfix-marketing/smtp[9]: 1A2B3C4D5E: to=<post@gmail.com>, '
    + FIELDS.format(d='2.0.0', st='sent (250 ok)'),
    'Dec  6 06:00:00  mx1 postfix/smtp[9]: 1A2B3C4D5E: to=<spaces@gmail.com>, '
    + FIELDS.format(d='2.0.0', st='sent (x)'),
    'Dec  6 06:00:00 mx1 postfix/smtpd[2]: NOQUEUE: reject: RCPT from x[192.0.2.1]: 554 5.7.1 <a@b>: Relay access '
    'denied; from=<s@example.org> to=<a@b> proto=ESMTP helo=<h>',
    'Dec  6 06:00:00 mx1 opendkim[3]: 3F2A1B4C5D: to=<a@b>, status=sent (not postfix)',
    'Dec  6 06:00:00 mx1 postfix/pickup[4]: 3F2A1B4C5D: uid=0 from=<root>',
    # bad input: truncated, garbage, unknown status, unreadable header, stamps
    SMTP + 'to=<cut@gmail.com>, relay=mx.example.com[192.0.2.99]:25, delay=1.5, del',
    SMTP + 'to=<cut@gmail.com>, ' + FIELDS.format(d='2.0.0', st='sent (250 2.0.0 OK'),
    SMTP + 'to=<cut@gmail.com>, ' + FIELDS.format(d='2.0.0', st='sent'),
    SMTP + 'to=<cut@gmail.com',
    SMTP + 'to=<g@gmail.com>, relay=x, delay=soon, delays=0, dsn=2.0.0, status=sent (ok)',
    SMTP + 'to=<g@gmail.com>, relay=x, delay=1, delays=0, dsn=2.x.0, status=sent (ok)',
    SMTP + 'to=<g@gmail.com>, relay=x, delay 1, dsn=2.0.0, status=sent (ok)',
    SMTP + 'to=<u@gmail.com>, ' + FIELDS.format(d='2.0.0', st='delivered (250 ok)'),
    'Foo  6 06:00:00 mx1 postfix/smtp[9]: 1A2B3C4D5E: to=<stamp@gmail.com>, ' + FIELDS.format(d='2.0.0', st='sent (x)'),
    'Dec 99 06:00:00 mx1 postfix-marketing/qmgr[5]: 1A2B3C4D5E: from=<s@example.org>, size=1, nrcpt=1 (queue active)',
    'Dec 99 06:00:00 mx1 postfix-marketing/cleanup[6]: 1A2B3C4D5E: message-id=<new@example.org>',
    'postfix/smtp[9]: to=<nohead@gmail.com>, status=sent (x)',
    'garbled postfix line to=<x@y>, and then status=sent',  # no ": to=<": kept for its "status="
    'ys=0.1/0/0.4/1, dsn=2.0.0, status=sent (250 ok)',  # the rest of a cut line: "status=" without "to=<"
    SMTP + 'to=<two@gmail.com>, ' + FIELDS.format(d='5.0.0', st='bounced (host x said: to=<two@gmail.com>: no)'),
    SMTP + 'to=<x@gmail.com>, ' + FIELDS.format(d='2.0.0', st='sent (250 status=sent)'),  # two "status="
    '',
    'Dec  6 06:00:00 mx1 kernel: nothing to see',
    # other writers' stamps (rsyslog date-pgsql, date-unixtimestamp; journalctl short-full), and formats not read
    '2026-12-06 06:00:0{s} mx1 postfix/smtp[9]: {q}: to=<pgsql@gmail.com>, ' + FIELDS.format(d='2.0.0', st='sent (x)'),
    '179653680{s} mx1 postfix/smtp[9]: {q}: to=<unix@gmail.com>, ' + FIELDS.format(d='2.0.0', st='sent (x)'),
    'Sun 2026-12-06 06:00:0{s} UTC mx1 postfix/qmgr[9]: {q}: from=<full@example.org>, size=1, nrcpt=1 (queue active)',
    '{q}: to=<cat@gmail.com>, ' + FIELDS.format(d='2.0.0', st='sent (x)'),
    '2026-12-06 06:00:0{s} postfix/smtp[9]: {q}: to=<nohost@gmail.com>, ' + FIELDS.format(d='2.0.0', st='sent (x)'),
    'Dec  6 06:00:0{s} postfix/smtp[9]: {q}: to=<nohost@gmail.com>, ' + FIELDS.format(d='2.0.0', st='sent (x)'),
    '[    1.00000{s}] mx1 postfix/smtp[9]: {q}: to=<monotonic@gmail.com>, ' + FIELDS.format(d='2.0.0', st='sent (x)'),
]
NON_UTF8 = [
    (SMTP + 'to=<n@gmail.com>, ' + FIELDS.format(d='5.1.1', st='bounced (550 5.1.1 caf\udcc3 nein)')).encode(
        'utf-8', 'surrogateescape'
    ),  # kept: read with U+FFFD, and an encoding problem
    b'Dec  6 06:00:00 mx1 postfix/smtpd[2]: connect from \xff\xfe[192.0.2.1]',  # not kept: only the problem
    (SMTP + 'to=<j\u00fcrgen@gmail.com>, ' + FIELDS.format(d='2.0.0', st='sent (250 \u00fcber ok)')).encode(),
    (SMTP + 'to=<cut\udcff@gmail.com>, relay=x').encode('utf-8', 'surrogateescape'),  # both problems, in order
]


def _corpus() -> list[bytes]:
    lines = [line.format(s=n % 10, q='3F2A1B4C5D').encode() for n, line in enumerate(MIXED)]
    lines[20:20] = NON_UTF8
    captured_lines = [line.rstrip('\n').encode() for line in captured()]
    return captured_lines + lines + captured_lines + lines


def _line_by_line(lines: list[bytes], parser: PostfixLogParser, first: int) -> ParsedLines:
    """What the ingest's per-line loop makes of the lines (decoding as it does)."""
    out = ParsedLines()
    for number, raw in enumerate(lines, first):
        try:
            text = raw.decode('utf-8')
        except UnicodeDecodeError:
            text = raw.decode('utf-8', 'replace')
            out.problems.append((number, None))
        try:
            records = parser.parse_line(text, 'maillog', number)
        except EventError as error:
            out.problems.append((number, error))
            continue
        out.add(records, text.rstrip('\r\n'))
    return out


def _comparable(parsed: ParsedLines) -> tuple[object, ...]:
    problems = [(n, None if e is None else (e.reason, str(e))) for n, e in parsed.problems]
    return parsed.events, parsed.messages, parsed.expiries, problems


@pytest.mark.parametrize('size', [1, 3, 17, 10_000])
@pytest.mark.parametrize('chunk', [postfix_log.CHUNK_LINES, 7])
def test_parse_lines_equals_parse_line(size: int, chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postfix_log, 'CHUNK_LINES', chunk)
    lines = _corpus()
    one = PostfixLogParser(isp_of=ISPS, reference_time=REFERENCE, max_messages=4)  # small: evictions too
    expected = _line_by_line(lines, one, 101)
    batch = PostfixLogParser(isp_of=ISPS, reference_time=REFERENCE, max_messages=4)
    got = ParsedLines()
    for start in range(0, len(lines), size):
        part = batch.parse_lines(lines[start : start + size], 'maillog', 101 + start)
        got.events += part.events
        got.messages += part.messages
        got.expiries += part.expiries
        got.problems += part.problems
    assert _comparable(got) == _comparable(expected)
    assert list(batch._queued) == list(one._queued)
    # The corpus has what it is meant to have.
    reasons = {e.reason if e else 'encoding' for _, e in expected.problems}
    assert reasons == {'truncated', 'garbage', 'unknown-status', 'encoding'}
    assert {e.status for e in expected.events} == {'sent', 'deferred', 'bounced', 'expired'}
    assert expected.expiries and any(m.message_id for m in expected.messages)


def test_parse_lines_reports_bad_lines_with_their_numbers() -> None:
    parser = PostfixLogParser(isp_of=ISPS, reference_time=REFERENCE)
    lines = [
        SENT.encode(),
        b'\xff to=<x>',
        (PREFIX + 'to=<cut@example.com>').encode(),
        b'garbage postfix to=<a> status=x',
    ]
    parsed = parser.parse_lines(lines, 'maillog', 7)
    assert [(n, e.reason if e else None) for n, e in parsed.problems] == [
        (8, None),
        (9, 'truncated'),
        (10, 'garbage'),
    ]
    assert str(parsed.problems[1][1]).startswith('maillog:9: ')
    (event,) = parsed.events
    assert event.recipient == 'alice@example.com' and event.smtp_code == '250'
    assert event.key == event_key('postfix', SENT)


FAST_SAMPLES = [
    line.format(s=1, q='3F2A1B4C5D')
    for line in (
        SMTP + 'to=<A@Gmail.com>, ' + FIELDS.format(d='2.0.0', st='sent (250 2.0.0 OK)'),
        SMTP + 'to=<d@gmail.com>, ' + FIELDS.format(d='4.2.1', st='deferred (host x said: 450 4.2.1 slow down)'),
        QMGR + 'from=<bounce+a@example.org>, size=10, nrcpt=1 (queue active)',
        QMGR + 'from=<bounce+a@example.org>, status=expired, returned to sender',
        H + 'postfix-marketing/cleanup[6]: {q}: message-id=<m1@example.org>',
        QMGR + 'removed',
    )
] + [
    # smtp(8) on a reused connection (a real Postfix 3.7 line, tests/agent/data/postfix-logs/new-year.log)
    'Dec 31 23:59:39 mx1 postfix-marketing/smtp[24443]: 77830374171: to=<bounces+b@bounces.example.test>, '
    'relay=127.0.0.1[127.0.0.1]:50067, conn_use=2, delay=0.03, delays=0.01/0.02/0/0, dsn=2.0.0, '
    'status=sent (250 2.0.0 Ok: queued as 4ABC)',
    '2026-12-06T06:00:00.123456+00:00 mx1 postfix/smtp[9]: 1A2B3C4D5E: to=<iso@gmail.com>, '
    + FIELDS.format(d='2.0.0', st='sent (250 ok)'),
]


def test_fast_lines_matches_the_lines_fast_matches() -> None:
    """FAST_LINES (a batch at once) takes a line where FAST takes it, with the same groups: checked with every ASCII
    character but newline, and one that is not ASCII, put at every position of usual lines (or in place of the
    character there)."""
    checked = 0
    for sample in FAST_SAMPLES:
        assert FAST.match(sample)
        for position in range(len(sample) + 1):
            for char in [*map(chr, range(10)), *map(chr, range(11, 128)), '\u00e9']:
                for line in (
                    sample[:position] + char + sample[position:],
                    sample[:position] + char + sample[position + 1 :],
                ):
                    fast = FAST.match(line) if line.isascii() else None
                    batch = FAST_LINES.match('\n' + line + '\n')
                    assert (fast.groups() if fast else None) == (
                        batch.groups()[:-1] if batch and batch.lastindex != 16 else None
                    ), repr(line)
                    checked += 1
    assert checked > 100_000


def test_fast_lines_sends_other_lines_with_a_field_to_parse_line() -> None:
    cut = SENT[:-20]
    match = FAST_LINES.match('\n' + cut + '\n')
    assert match is not None and match.lastindex == 16 and match[16].startswith('to=<')
    assert FAST_LINES.match('\n' + SENT + '\n').lastindex == 10  # type: ignore[union-attr]


class _Lines(list[bytes]):
    """A batch that can be watched with a weak reference."""


def test_parse_lines_keeps_no_frame_of_the_batch_alive() -> None:
    """A collected error's traceback would hold parse_lines' frame, and so the whole batch, in a cycle: ``ingest run``
    pauses the cyclic collector, so that batch would stay in memory (1,000,000 lines: peak RSS 119 -> 230 MB)."""
    bad_stamp = SENT.replace('Dec  6 06:00:00', 'Dec 32 06:00:00')
    lines = _Lines([SENT.encode(), (PREFIX + 'to=<cut@example.com>').encode(), bad_stamp.encode()])
    watched = weakref.ref(lines)
    parser = PostfixLogParser(isp_of=ISPS, reference_time=REFERENCE)
    enabled = gc.isenabled()
    gc.disable()
    try:
        parsed = parser.parse_lines(lines, 'maillog', 1)
        del lines
        assert watched() is None
    finally:
        if enabled:
            gc.enable()
    assert [(n, e.reason if e else None) for n, e in parsed.problems] == [(2, 'truncated'), (3, 'garbage')]


@pytest.mark.parametrize('digit', ['\u00b2', '\u2080', '\u0663'])  # superscript two, subscript zero, Arabic-Indic three
def test_a_transport_with_non_ascii_digits_is_no_address_and_no_crash(digit: str) -> None:
    """str.isdigit() takes these (int() refuses the first two): one such line must not stop the ingest for good."""
    line = SENT.replace('out_192_0_2_10/', f'out_192_0_2_1{digit}/')
    (event,) = events(parse_all([line]))
    assert event.sending_ip is None and event.recipient == 'alice@example.com'
    parsed = PostfixLogParser(isp_of=ISPS, reference_time=REFERENCE).parse_lines([line.encode()], 'maillog', 1)
    assert [e.sending_ip for e in parsed.events] == [None]


@pytest.mark.parametrize('delay', ['nan', 'inf', '1e400', '-5', '1_0', '0x10'])
def test_a_delay_postfix_never_writes_is_garbage(delay: str) -> None:
    """float() takes these; a delay as Postfix writes it is digits with an optional fraction."""
    line = SENT.replace('delay=1.5,', f'delay={delay},')
    with pytest.raises(EventError, match='unreadable delay') as error:
        parse_all([line])
    assert error.value.reason == 'garbage'
    parsed = PostfixLogParser(isp_of=ISPS, reference_time=REFERENCE).parse_lines([line.encode()], 'maillog', 1)
    assert [(n, e.reason if e else None) for n, e in parsed.problems] == [(1, 'garbage')] and not parsed.events


def test_parse_lines_refuses_a_line_with_a_newline() -> None:
    with pytest.raises(ValueError, match='a line holds a newline'):
        PostfixLogParser(reference_time=REFERENCE).parse_lines([SENT.encode() + b'\n' + SENT.encode()], 'maillog', 1)
