"""The Postfix log parser and ``ingest run`` on logs a real Postfix 3.7 wrote, in the formats hosts write them.

The files (``tests/agent/data/postfix-logs/``, README there says how they were made) hold the same deliveries as
rsyslog (Debian 12's default RFC 3339 stamps, and its traditional format) and journalctl (``short-iso``,
``short-precise``) write them; one run through ``maillog_file``, one across New Year, one with quoted addresses
and one with address verification probes.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from mailinfra_agent.cli import main
from mailinfra_agent.contract import load_contract
from mailinfra_agent.feedback import postfix_log
from mailinfra_agent.feedback.events import Event, EventError
from mailinfra_agent.feedback.postfix_log import (
    FAST_LINES,
    UTC,
    Instance,
    MessageSeen,
    ParsedLines,
    PostfixLogParser,
    local_zone,
)
from mailinfra_agent.ingest.service import postfix_parser
from tests.agent.ingest_logs import contract_data

DATA = Path(__file__).resolve().parent / 'data' / 'postfix-logs'
SYSLOG = 'rsyslog-rfc3339.log'
SAME_EVENTS = [
    SYSLOG,
    'rsyslog-traditional.log',
    'rsyslog-date-pgsql.log',
    'rsyslog-date-mysql.log',
    'rsyslog-date-unixtimestamp.log',
    'journalctl-short-iso.log',
    'journalctl-short-iso-precise.log',
    'journalctl-short-precise.log',
    'journalctl-short-full.log',
    'journalctl-short-unix.log',
    'syslog-ng-ts-unix.log',
]
"""One Postfix run, as each of these logs it."""
UNREAD = [
    'journalctl-cat.log',
    'journalctl-short-monotonic.log',
    'journalctl-json.log',
    'journalctl-export.log',
    'journalctl-verbose.log',
    'journalctl-json-pretty.log',
]
"""The first lines (or entries) of the run as journalctl writes them in formats without a header or a date, not
read; export, verbose and json-pretty put the message alone on a line (``MESSAGE=``, ``"MESSAGE" : "``)."""
REFERENCE = dt.datetime(2026, 12, 8, tzinfo=dt.UTC).timestamp()
LONG_REPLY = 'long1@r.test'
"""The sink answered this recipient with a 41-line 550 reply: Postfix cut the line at 2,000 bytes."""


def raw_lines(name: str) -> list[bytes]:
    return (DATA / name).read_bytes().split(b'\n')[:-1]


def parse(lines: list[bytes], reference: float = REFERENCE, instances: tuple[Instance, ...] = ()) -> ParsedLines:
    return PostfixLogParser(instances, reference_time=reference).parse_lines(lines, 'maillog')


def delivered(parsed: ParsedLines) -> list[Event]:
    return parsed.events + [event for event, _ in parsed.expiries]


def outcomes(parsed: ParsedLines) -> list[tuple[Any, ...]]:
    return sorted(
        (e.queue_id, e.recipient, e.status, e.dsn, e.relay, e.smtp_code, e.sender, e.message_id, e.stream)
        for e in delivered(parsed)
    )


@pytest.mark.parametrize('name', SAME_EVENTS)
def test_each_format_gives_the_deliveries_postfix_logged(name: str) -> None:
    parsed = parse(raw_lines(name))
    assert parsed.problems == []
    assert Counter(e.status for e in delivered(parsed)) == {'sent': 20, 'deferred': 61, 'bounced': 6, 'expired': 9}
    assert outcomes(parsed) == outcomes(parse(raw_lines(SYSLOG)))
    # The same moments (short-iso has whole seconds only), all on the day of the run.
    exact = sorted(e.time for e in delivered(parse(raw_lines(SYSLOG))))
    assert all(abs(a - b) < 1 for a, b in zip(sorted(e.time for e in delivered(parsed)), exact, strict=True))
    assert {dt.datetime.fromtimestamp(e.time, dt.UTC).date() for e in delivered(parsed)} == {dt.date(2026, 12, 7)}


def test_short_full_stamps_are_read_with_the_hosts_zone() -> None:
    """journalctl's ``short-full`` names the zone by its abbreviation (``CET``), which is read only as one of the
    host's zone (ingest's ``local_zone``): that also tells the two 02:30 of the night daylight saving ends apart
    (``CEST``, then ``CET``). Another zone's abbreviation is never guessed: each line is a problem."""
    berlin = ZoneInfo('Europe/Berlin')
    lines = raw_lines('journalctl-short-full-cet.log')
    assert lines[0].startswith(b'Mon 2026-12-07 12:01:31 CET mx1 ')
    local = PostfixLogParser(tz=berlin, reference_time=REFERENCE).parse_lines(lines, 'maillog')
    utc = parse(raw_lines('journalctl-short-full.log'))
    assert local.problems == []
    assert [(e.time, e.key != u.key) for e, u in zip(delivered(local), delivered(utc), strict=True)] == [
        (u.time, True) for u in delivered(utc)
    ]
    elsewhere = parse(lines)
    assert (elsewhere.events, elsewhere.messages) == ([], [])
    assert len(elsewhere.problems) > 91  # every delivery line, and more
    assert all(
        error is not None and error.reason == 'garbage' and "unreadable time stamp 'Mon 2026-12-07 " in str(error)
        for _, error in elsewhere.problems
    )
    dst = raw_lines('journalctl-short-full-dst.log')
    assert [line[:29] for line in dst] == [b'Sun 2026-10-25 02:30:00 CEST ', b'Sun 2026-10-25 02:30:00 CET m']
    parsed = PostfixLogParser(tz=berlin, reference_time=REFERENCE).parse_lines(dst, 'maillog')
    assert [dt.datetime.fromtimestamp(e.time, dt.UTC).isoformat() for e in parsed.events] == [
        '2026-10-25T00:30:00+00:00',
        '2026-10-25T01:30:00+00:00',
    ]


@pytest.mark.parametrize('name', UNREAD)
def test_formats_without_a_header_or_a_date_are_counted_never_dropped_unseen(name: str) -> None:
    """``journalctl -o cat`` (no stamp, no program), ``-o short-monotonic`` (time since boot), ``-o json``,
    ``export``, ``verbose`` and ``json-pretty``: no event, and each delivery line is a problem that names the
    formats read."""
    lines = raw_lines(name)
    parsed = parse(lines)
    assert (parsed.events, parsed.messages, parsed.expiries) == ([], [], [])
    deliveries = [number for number, line in enumerate(lines, 1) if b': to=<' in line and b'status=' in line]
    assert len(deliveries) > 10
    assert [number for number, _ in parsed.problems] == deliveries
    assert all(
        error is not None and error.reason == 'garbage' and 'unreadable log line header (read: syslog' in str(error)
        for _, error in parsed.problems
    )


@pytest.mark.parametrize('name', [*SAME_EVENTS, 'maillog-file.log', 'new-year.log'])
def test_line_by_line_gives_the_same(name: str) -> None:
    lines = raw_lines(name)
    parser = PostfixLogParser(reference_time=REFERENCE)
    one_by_one = [r for n, line in enumerate(lines, 1) for r in parser.parse_line(line.decode(), 'maillog', n)]
    batch = parse(lines)
    assert batch.expiries == []  # every expiry's recipients were seen deferred: the events come in line order
    assert [r for r in one_by_one if isinstance(r, Event)] == batch.events
    assert [r for r in one_by_one if not isinstance(r, Event)] == batch.messages


@pytest.mark.parametrize('name', [*SAME_EVENTS, 'maillog-file.log'])
def test_a_long_reply_postfix_cut_is_still_a_bounce(name: str) -> None:
    (line,) = [line for line in raw_lines(name) if f'to=<{LONG_REPLY}>'.encode() in line]
    assert not line.endswith(b')')  # as Postfix wrote it: the message cut at 2,000 bytes
    assert len(line.split(b']: ', 1)[1]) == 2000
    (event,) = [e for e in parse(raw_lines(name)).events if e.recipient == LONG_REPLY]
    assert (event.status, event.dsn, event.smtp_code) == ('bounced', '5.7.1', '550')
    assert event.diagnostic is not None
    assert event.diagnostic.startswith('host 127.0.0.1[127.0.0.1] said: 550-5.7.1 000 xxx')


def test_a_line_cut_shorter_than_postfix_cuts_stays_an_error() -> None:
    (line,) = [line for line in raw_lines(SYSLOG) if f'to=<{LONG_REPLY}>'.encode() in line]
    parser = PostfixLogParser(reference_time=REFERENCE)
    with pytest.raises(EventError) as error:
        parser.parse_line(line[:-1].decode(), 'maillog', 7)
    assert error.value.reason == 'truncated'
    assert parse([line[:-1]]).problems[0][1] is not None


def long_reply_line() -> bytes:
    (line,) = [line for line in raw_lines(SYSLOG) if f'to=<{LONG_REPLY}>'.encode() in line]
    return line


@pytest.mark.parametrize(
    ('message_end', 'size'),
    [
        (b'', 2000),
        (b'x', 2001),  # longer than Postfix writes
        (b'xx', 2002),
        (b'\xff', 2001),
    ],
)
def test_a_message_longer_than_postfix_writes_is_no_cut(message_end: bytes, size: int) -> None:
    line = long_reply_line() + message_end
    assert len(line.split(b']: ', 1)[1]) == size
    problems = parse([line]).problems
    if size == 2000:
        assert problems == []
        return
    assert [error.reason for _, error in problems if error is not None] == ['truncated']
    with pytest.raises(EventError) as error:
        PostfixLogParser(reference_time=REFERENCE).parse_line(line.decode('utf-8', 'surrogateescape'), 'maillog', 1)
    assert error.value.reason == 'truncated'


@pytest.mark.parametrize(
    ('cut', 'invalid', 'event'),
    [
        (2, b'\xff', False),  # 1,999 bytes, one of them not UTF-8: read as U+FFFD it is 2,001
        (3, b'\xff', False),  # 1,998 bytes: read as U+FFFD it is 2,000
        (2, b'\xff\xff', True),  # 2,000 bytes, two not UTF-8 (6 as U+FFFD)
        (2, b'\xe2\x82', True),  # 2,000 bytes, a character cut after 2 of its 3 (one U+FFFD)
        (1, b'\xf0', True),
        (3, b'\xf0\x9f\x98', True),
    ],
)
def test_the_cut_is_measured_in_the_bytes_postfix_wrote(cut: int, invalid: bytes, event: bool) -> None:
    line = long_reply_line()[:-cut] + invalid
    parsed = parse([line])
    errors = [error.reason for _, error in parsed.problems if error is not None]
    assert (len(parsed.events), errors) == ((1, []) if event else (0, ['truncated']))
    parser = PostfixLogParser(reference_time=REFERENCE)
    escaped = line.decode('utf-8', 'surrogateescape')  # each byte that is not UTF-8 one surrogate: exact
    replaced = line.decode('utf-8', 'replace')
    for text, raw in [(escaped, None), (replaced, line)]:
        if event:
            assert len(parser.parse_line(text, 'maillog', 1, raw)) == 1
        else:
            with pytest.raises(EventError) as error:
                parser.parse_line(text, 'maillog', 1, raw)
            assert error.value.reason == 'truncated'


def test_a_reply_postfix_cut_in_a_character_is_still_an_event(tmp_path: Path) -> None:
    """postlog(1) cuts a message as Postfix's daemons do (MSG_SYSLOG_RECLEN): exactly 2,000 bytes from the queue id,
    through a character when one spans the limit."""
    (tmp_path / 'main.cf').write_text(
        f'compatibility_level = 3.6\nmaillog_file = /dev/stdout\nqueue_directory = {tmp_path}\n', encoding='utf-8'
    )
    texts = [
        '4jjfL36pDSzSxKv: to=<long1@r.test>, relay=127.0.0.1[127.0.0.1]:25, delay=1, delays=1/0/0/0, dsn=5.7.1, '
        'status=bounced (host 127.0.0.1[127.0.0.1] said: 550-5.7.1 ' + 'x' * (1827 + shift) + character * 100 + ')'
        for character in ['é', '€', '😀']
        for shift in range(4)
    ]
    written = subprocess.run(
        ['postlog', '-c', str(tmp_path), '-t', 'postfix-marketing/smtp'],  # one message a line of its input
        input='\n'.join(texts).encode() + b'\n',
        env={'TZ': 'UTC', 'PATH': '/usr/sbin:/usr/bin:/sbin:/bin'},
        capture_output=True,
        check=True,
    ).stdout
    lines = written.split(b'\n')[:-1]
    assert len(lines) == len(texts)
    assert sum(not postfix_log._utf8(line) for line in lines) == 7  # cut in a character (the others between two)
    for line in lines:
        message = line.split(b']: ', 1)[1]
        assert len(message) == 2000
        assert message.startswith(b'4jjfL36pDSzSxKv: ')
        parsed = parse([line])
        assert parsed.problems == ([] if postfix_log._utf8(line) else [(1, None)])
        (event,) = parsed.events
        assert (event.status, event.recipient, event.smtp_code) == ('bounced', 'long1@r.test', '550')
        parser = PostfixLogParser(reference_time=REFERENCE)
        assert parser.parse_line(line.decode('utf-8', 'replace'), 'maillog', 1) == [event]


def test_address_verification_and_other_lines_are_no_deliveries() -> None:
    text = (DATA / SYSLOG).read_text(encoding='utf-8')
    assert len(re.findall(r'status=(?:deliverable|undeliverable) ', text)) == 4  # sendmail -bv
    lines_with_status = len(re.findall(r', status=(?:sent|deferred|bounced) ', text))
    events = parse(raw_lines(SYSLOG)).events
    assert lines_with_status == len([e for e in events if e.status != 'expired']) == 87


def test_crlf_and_lines_without_a_pid_give_the_same() -> None:
    lines = raw_lines(SYSLOG)
    assert outcomes(parse([line + b'\r' for line in lines])) == outcomes(parse(lines))
    without_pid = [re.sub(rb'^(\S+ \S+ \S+)\[\d+\]: ', rb'\1: ', line) for line in lines]
    assert without_pid != lines
    assert outcomes(parse(without_pid)) == outcomes(parse(lines))


def test_the_maillog_file_run() -> None:
    parsed = parse(raw_lines('maillog-file.log'))
    assert parsed.problems == []
    assert Counter(e.status for e in delivered(parsed)) == {'sent': 20, 'deferred': 62, 'bounced': 6, 'expired': 9}


RFC5424 = 'logger-rfc5424.log'
"""The lines of SYSLOG sent again as RFC 5424 by util-linux ``logger --rfc5424`` (APP-NAME, PROCID, structured data)."""
MARKETING = Instance('postfix-marketing', 'marketing')
"""The instance of the runs, as the contract names it."""
RFC3164 = 'logger-rfc3164.log'
"""The same sent by ``logger --rfc3164``: classic syslog with its ``<PRI>`` first."""


def rsyslog_app_name(line: bytes) -> bytes:
    """As rsyslog's RFC 5424 template writes APP-NAME: the program name cut at its first ``/``."""
    return re.sub(rb'^(\S+ \S+ \S+ [^/ ]+)/\S+', rb'\1', line)


@pytest.mark.parametrize(
    'variant',
    [
        lambda line: line,
        rsyslog_app_name,
        lambda line: line.replace(b'<22>1 ', b'', 1),  # a file template without PRI and VERSION
        lambda line: line.replace(b'[timeQuality tzKnown="1" isSynced="0"] ', b'- ', 1),  # no structured data
        # rsyslog's %msg% keeps the space before the message; quoted values may hold "]", '\"' and spaces; a BOM
        lambda line: line.replace(b'isSynced="0"] ', b'isSynced="0"][x@1 a="] \\"b\\" ]"]  \xef\xbb\xbf', 1),
    ],
)
def test_rfc5424_lines_give_the_deliveries_postfix_logged(variant: Callable[[bytes], bytes]) -> None:
    lines = [variant(line) for line in raw_lines(RFC5424)]
    assert lines[1].startswith((b'<22>1 2026-12-07T', b'2026-12-07T'))
    same_deliveries(lines, (MARKETING,))


def test_an_rfc5424_app_name_cut_at_its_slash_is_postfix_only_for_a_known_instance() -> None:
    """rsyslog's RFC 5424 template leaves ``postfix-marketing`` of ``postfix-marketing/smtp``: the instance, its
    daemon unknown. Of an instance the contract names that is Postfix's; of another ``postfix-*`` name it is no
    event (any program may call itself that), and a delivery line of it is a counted problem, never dropped unseen."""
    lines = raw_lines('rsyslog-protocol23.log')
    assert lines[1].startswith(b'<22>1 2026-12-07T11:01:31+00:00 mx1 postfix-marketing 24154 - -  4jjfL36l86zSxVZ: ')
    parsed = parse(lines)
    assert parsed.events == parsed.messages == parsed.expiries == []
    assert len(parsed.problems) == 91  # each delivery line
    assert {error.reason for _, error in parsed.problems if error} == {'garbage'}
    assert 'RFC 5424 APP-NAME \'postfix-marketing\' (cut at its "/"' in str(parsed.problems[0][1])
    assert outcomes(parse(lines, instances=(MARKETING,))) == outcomes(parse(raw_lines(SYSLOG)))


def test_syslog_ng_rfc5424_lines_give_the_deliveries_postfix_logged() -> None:
    """syslog-ng's ``flags(syslog-protocol)`` file: the whole program name as APP-NAME, its ``[meta sequenceId]``."""
    lines = raw_lines('syslog-ng-protocol.log')
    assert lines[1].startswith(b'<22>1 2026-12-07T11:01:31+00:00 mx1 postfix-marketing/cleanup 24154 - [meta ')
    same_deliveries(lines)


def test_rfc3164_lines_with_their_priority_give_the_deliveries_postfix_logged() -> None:
    lines = raw_lines(RFC3164)
    assert lines[1].startswith(b'<22>Dec  7 ')
    same_deliveries(lines)


def test_rfc3339_lines_with_their_priority_give_the_deliveries_postfix_logged() -> None:
    """rsyslog's RSYSLOG_ForwardFormat: ``<PRI>`` before the RFC 3339 stamp, no RFC 5424 version."""
    same_deliveries([b'<22>' + line for line in raw_lines(SYSLOG)])


def same_deliveries(lines: list[bytes], instances: tuple[Instance, ...] = ()) -> None:
    """``lines`` give what SYSLOG gives (the stamps aside), line by line as in a batch."""
    parsed = parse(lines, instances=instances)
    assert parsed.problems == []
    expected = parse(raw_lines(SYSLOG))
    assert outcomes(parsed) == outcomes(expected)
    assert [(m.queue_id, m.sender, m.message_id) for m in parsed.messages] == [
        (m.queue_id, m.sender, m.message_id) for m in expected.messages
    ]
    (event,) = [e for e in parsed.events if e.recipient == LONG_REPLY]  # cut by Postfix at 2,000 bytes
    assert (event.status, event.smtp_code) == ('bounced', '550')
    parser = PostfixLogParser(instances, reference_time=REFERENCE)
    one_by_one = [r for n, line in enumerate(lines, 1) for r in parser.parse_line(line.decode(), 'maillog', n)]
    assert [r for r in one_by_one if isinstance(r, Event)] == parsed.events


def test_postsuper_force_expiry_is_an_expiry() -> None:
    """``postsuper -e`` (Postfix 3.5+): qmgr logs ``status=force-expired, returned to sender``; the recipient last
    seen deferred is expired as with ``status=expired``. ``postsuper -r`` requeues under a new queue id (pickup's
    ``orig_id=``): its deliveries are read under that id. Counts as pflogsumm's: 5 delivered, 23 deferrals."""
    lines = raw_lines('postsuper.log')
    parsed = parse(lines)
    assert parsed.problems == []
    assert Counter(e.status for e in delivered(parsed)) == {'sent': 5, 'deferred': 23, 'expired': 1}
    (expired,) = [e for e in delivered(parsed) if e.status == 'expired']
    assert (expired.queue_id, expired.recipient, expired.sender, expired.dsn) == (
        'D75BC218AEA',
        'full.a@r.test',
        's1@example.test',
        '4.2.2',
    )
    parser = PostfixLogParser(reference_time=REFERENCE)
    one_by_one = [r for n, line in enumerate(lines, 1) for r in parser.parse_line(line.decode(), 'maillog', n)]
    assert [r for r in one_by_one if isinstance(r, Event)] == parsed.events


def test_a_local_forward_is_no_outcome() -> None:
    """local(8)'s ``status=sent (forwarded as NEW)`` hands the recipient on; the new message's lines are the
    outcomes. Counts as pflogsumm's: 3 delivered (and 2 forwarded, which it does not count as delivered), 5
    deferrals; ``fwd2@`` was not delivered, one of its two addresses was deferred."""
    lines = raw_lines('local-forward.log')
    assert sum(b'status=sent (forwarded as ' in line for line in lines) == 2
    parsed = parse(lines)
    assert parsed.problems == []
    assert Counter(e.status for e in delivered(parsed)) == {'sent': 3, 'deferred': 5}
    assert {e.recipient for e in parsed.events} == {'ok.h@r.test', 'ok.f@r.test', 'ok.g@r.test', 'full.g@r.test'}
    assert {e.sender for e in parsed.events} == {'s4@example.test'}
    parser = PostfixLogParser(reference_time=REFERENCE)
    one_by_one = [r for n, line in enumerate(lines, 1) for r in parser.parse_line(line.decode(), 'maillog', n)]
    assert [r for r in one_by_one if isinstance(r, Event)] == parsed.events


def test_a_log_across_new_year_gets_both_years() -> None:
    lines = raw_lines('new-year.log')
    new_year = dt.datetime(2027, 1, 1, tzinfo=dt.UTC).timestamp()
    parsed = parse(lines, reference=new_year + 300)  # read five minutes into 2027
    assert parsed.problems == []
    years = Counter(
        (dt.datetime.fromtimestamp(e.time, dt.UTC).year, len(e.queue_id or '') > 12) for e in delivered(parsed)
    )
    assert years == {(2026, False): 29, (2027, True): 29}  # short queue ids before midnight, long ones after
    assert all(new_year - 30 < e.time < new_year + 10 for e in delivered(parsed))


@pytest.mark.parametrize('name', [SYSLOG, RFC5424, RFC3164, 'rsyslog-protocol23.log'])
def test_ingest_run_stores_what_postfix_logged(tmp_path: Path, name: str) -> None:
    log = tmp_path / 'mail.log'
    shutil.copy(DATA / name, log)
    contract = tmp_path / 'agent.json'
    store = tmp_path / 'agent.db'
    # The contract names the log and its instance (rsyslog's RFC 5424 template leaves only that of the program).
    data = contract_data({'backend': 'sqlite', 'path': str(store)}, {'postfix-marketing': log})
    contract.write_text(json.dumps(data), encoding='utf-8')
    assert main(['ingest', '--contract', str(contract), 'run', '--once']) == 0
    with sqlite3.connect(store) as db:
        counts = dict(db.execute("SELECT status, count(*) FROM feedback_events WHERE kind = 'delivery' GROUP BY 1"))
        problems = db.execute('SELECT reason, count FROM ingest_problems').fetchall()
        bounced = db.execute(
            "SELECT dsn, smtp_code FROM feedback_events WHERE recipient = ? AND status = 'bounced'", (LONG_REPLY,)
        ).fetchall()
    assert counts == {'sent': 20, 'deferred': 61, 'bounced': 6, 'expired': 9}
    assert problems == []
    assert bounced == [('5.7.1', '550')]


def test_yearless_stamps_are_read_in_the_hosts_zone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Postfix writes local time (here postlog(1) itself, ``maillog_file = /dev/stdout``); ingest reads it so."""
    (tmp_path / 'main.cf').write_text(
        f'compatibility_level = 3.6\nmaillog_file = /dev/stdout\nqueue_directory = {tmp_path}\n', encoding='utf-8'
    )
    text = '4jjfL36pDSzSxKv: to=<a@r.test>, relay=none, delay=1, delays=1/0/0/0, dsn=2.0.0, status=sent (250 2.0.0 Ok)'
    zone = 'America/New_York'
    before = time.time()
    written = subprocess.run(
        ['postlog', '-c', str(tmp_path), '-t', 'postfix-marketing/smtp', text],
        env={'TZ': zone, 'PATH': '/usr/sbin:/usr/bin:/sbin:/bin'},
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    after = time.time()
    assert written.endswith(f']: {text}\n')
    monkeypatch.setenv('TZ', zone)
    contract = load_contract(contract_data({'backend': 'sqlite', 'path': str(tmp_path / 'agent.db')}, {}))
    (event,) = postfix_parser(contract).parse_line(written, 'maillog', 1)
    assert int(before) <= event.time <= after  # the same moment, not five hours off


def test_local_zone(tmp_path: Path) -> None:
    assert str(local_zone({'TZ': 'America/New_York'})) == 'America/New_York'
    assert str(local_zone({'TZ': ':Europe/Berlin'})) == 'Europe/Berlin'
    assert local_zone({'TZ': 'Etc/UTC'}) is UTC  # the fixed-offset fast path
    assert local_zone({}, '/usr/share/zoneinfo/Etc/UTC') is UTC
    assert local_zone({}, '/usr/share/zoneinfo/Asia/Kolkata').utcoffset(dt.datetime(2026, 1, 1)) == dt.timedelta(
        hours=5, minutes=30
    )
    assert local_zone({}, str(tmp_path / 'missing')) is UTC  # no /etc/localtime: glibc's UTC


JULY, JANUARY = dt.datetime(2026, 7, 1, 12), dt.datetime(2026, 1, 1, 12)


@pytest.mark.parametrize(
    ('tz', 'july', 'january'),
    [
        (':/usr/share/zoneinfo/Europe/Berlin', 2, 1),  # a path, as glibc reads it
        ('/usr/share/zoneinfo/Europe/Berlin', 2, 1),
        ('/usr/share/zoneinfo/America/New_York', -4, -5),
        ('JST-9', 9, 9),  # POSIX rule strings
        ('CET-1CEST,M3.5.0,M10.5.0/3', 2, 1),
        (':EST5EDT,M3.2.0,M11.1.0', -4, -5),
        ('<+0530>-5:30', 5.5, 5.5),
    ],
)
def test_local_zone_reads_tz_as_glibc_does(tz: str, july: float, january: float) -> None:
    zone = local_zone({'TZ': tz})
    assert zone.utcoffset(JULY) == dt.timedelta(hours=july)
    assert zone.utcoffset(JANUARY) == dt.timedelta(hours=january)
    environment = {'TZ': tz, 'PATH': '/usr/bin:/bin'}
    for moment in (JULY, JANUARY):  # what date(1) (glibc) makes of the same TZ
        utc = moment.replace(tzinfo=dt.UTC)
        shown = subprocess.run(
            ['date', '-d', f'@{int(utc.timestamp())}', '+%Y-%m-%dT%H:%M'],
            env=environment,
            capture_output=True,
            check=True,
            text=True,
        ).stdout.strip()
        offset = zone.utcoffset(moment)
        assert offset is not None
        assert shown == (utc + offset).strftime('%Y-%m-%dT%H:%M')


@pytest.mark.parametrize('tz', ['', ':', ':/usr/share/zoneinfo/Etc/UTC', 'UTC0', 'Etc/UTC'])
def test_local_zone_utc(tz: str, caplog: pytest.LogCaptureFixture) -> None:
    assert local_zone({'TZ': tz}, '/usr/share/zoneinfo/Asia/Kolkata') is UTC  # TZ= is UTC, not /etc/localtime
    assert caplog.records == []


@pytest.mark.parametrize(
    'tz',
    # AAA24: a POSIX offset of 24 hours, which glibc takes and datetime refuses (every stamp failed)
    ['No/Such_Zone', '../../etc/passwd', '/etc/passwd', '/no/such/file', 'CET-1CEST', 'AAA24', 'AAA-24:59:59'],
)
def test_an_unreadable_tz_is_utc_with_a_warning_once(
    tz: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postfix_log, '_zone_warnings', set())
    assert local_zone({'TZ': tz}) is UTC
    assert local_zone({'TZ': tz}) is UTC
    (record,) = caplog.records
    assert record.levelname == 'WARNING'
    assert record.getMessage().startswith(f'TZ={tz!r}: not a time zone this parser reads (')
    assert record.getMessage().endswith('): yearless Postfix stamps are read as UTC')


def test_an_unreadable_localtime_is_utc_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / 'localtime').write_bytes(b'not TZif')
    assert local_zone({}, str(tmp_path / 'localtime')) is UTC
    assert [record.levelname for record in caplog.records] == ['WARNING']


QUOTED = [
    '"a b"@r.test',
    '"a>, relay=x, delay=1, delays=1, dsn=2.0.0, status=sent (250 ok)"@r.test',
    'jörg@r.test',
    '"odd>, x"@r.test',
    '"q\\"x"@r.test',
    '"unknown>, relay=x"@r.test',
]


def test_quoted_addresses_are_read_whole() -> None:
    """Postfix quotes a local part with specials; a quoted ``>, status=...`` is part of the address."""
    lines = raw_lines('quoted-addresses.log')
    parsed = parse(lines)
    assert parsed.problems == []
    assert parsed.expiries == []  # the sender '"x>, status=expired"@...' is no expiry
    got = [(e.recipient, e.status, e.dsn, e.relay, e.sender) for e in parsed.events]
    odd_sender, other_sender = '"x>, status=expired"@bounces.example.test', '"y>, size=1"@bounces.example.test'
    relay = '127.0.0.1[127.0.0.1]:49809'
    assert sorted(got[:6]) == [(address, 'bounced', '5.6.7', relay, odd_sender) for address in sorted(QUOTED)]
    assert got[6:9] == [
        ('grey.z@r.test', 'deferred', '4.2.0', relay, other_sender),
        ('ok.z@r.test', 'sent', '2.0.0', relay, other_sender),
        (odd_sender, 'sent', '2.0.0', relay, ''),  # the non-delivery notification to that sender
    ]
    assert [m.sender for m in parsed.messages if m.sender is not None] == [odd_sender, other_sender, '']
    parser = PostfixLogParser(reference_time=REFERENCE)
    one_by_one = [r for n, line in enumerate(lines, 1) for r in parser.parse_line(line.decode(), 'maillog', n)]
    assert [r for r in one_by_one if isinstance(r, Event)] == parsed.events


def test_a_quoted_orig_to_is_read_whole() -> None:
    line = (
        'Dec  7 11:01:31 mx1 postfix-marketing/smtp[1]: 4jjfL36pDSzSxKv: to=<ok@r.test>, '
        'orig_to=<"list>, relay=x, status=sent (1)"@r.test>, relay=127.0.0.1[127.0.0.1]:25, delay=1, '
        'delays=1/0/0/0, dsn=5.1.1, status=bounced (host 127.0.0.1[127.0.0.1] said: 550 5.1.1 no)'
    )
    (event,) = PostfixLogParser(reference_time=REFERENCE).parse_line(line, 'maillog', 1)
    assert isinstance(event, Event)
    assert (event.recipient, event.status, event.relay, event.dsn) == (
        'ok@r.test',
        'bounced',
        '127.0.0.1[127.0.0.1]:25',
        '5.1.1',
    )
    with pytest.raises(EventError) as error:  # cut in the quoted part
        PostfixLogParser(reference_time=REFERENCE).parse_line(line[: line.index('(1)"@')], 'm', 1)
    assert error.value.reason == 'truncated'


UNQUOTED = (
    'Dec  7 11:01:31 mx1 postfix-marketing/smtp[1]: 4jjfL36pDSzSxKv: to=<"abc@r.test>, '
    'relay=127.0.0.1[127.0.0.1]:25, delay=1, delays=1/0/0/0, dsn=2.0.0, status=sent (250 2.0.0 Ok)'
)
"""A local part ``"abc`` as Postfix logs it with ``info_log_address_format = internal`` (and before 3.5)."""


@pytest.mark.parametrize(
    'line',
    [
        UNQUOTED,
        UNQUOTED.replace('(250 2.0.0 Ok)', '(250 2.0.0 Ok "queued" as x)'),  # a quote later, which no @ follows
        UNQUOTED.replace('to=<"abc@r.test>, ', 'to=<ok@r.test>, orig_to=<"abc@r.test>, '),
    ],
)
def test_an_address_logged_unquoted_ends_at_its_bracket(line: str) -> None:
    (event,) = PostfixLogParser(reference_time=REFERENCE).parse_line(line, 'maillog', 1)
    assert isinstance(event, Event)
    assert (event.recipient, event.status, event.dsn) == (
        'ok@r.test' if 'orig_to' in line else '"abc@r.test',
        'sent',
        '2.0.0',
    )
    assert parse([line.encode()]).events == [event]


def test_a_sender_logged_unquoted_ends_at_its_bracket() -> None:
    line = 'Dec  7 11:01:31 mx1 postfix-marketing/qmgr[1]: 4jjfL36pDSzSxKv: from=<"abc@r.test>, size=1, nrcpt=1'
    (seen,) = PostfixLogParser(reference_time=REFERENCE).parse_line(line, 'maillog', 1)
    assert isinstance(seen, MessageSeen)
    assert seen.sender == '"abc@r.test'


def test_address_verification_probes_are_no_deliveries_nor_problems() -> None:
    lines = raw_lines('address-verification.log')
    text = b'\n'.join(lines).decode()
    assert text.count('status=undeliverable-but-not-cached (') == 9
    assert text.count('status=deliverable (') == 1
    parsed = parse(lines)
    assert (parsed.events, parsed.expiries, parsed.problems) == ([], [], [])
    assert len(parsed.messages) == 20  # each probe's qmgr from= and cleanup message-id= lines


def test_reused_connections_take_the_fast_path() -> None:
    """smtp(8) logs ``conn_use=N`` after the relay on a reused connection: FAST_LINES reads those lines itself."""
    lines = [line.decode() for line in raw_lines('new-year.log') if b', conn_use=' in line and b'status=sent' in line]
    assert len(lines) == 3
    for line in lines:
        match = FAST_LINES.match('\n' + line + '\n')
        assert match is not None
        assert match.lastindex == 10, line  # a delivery, not "another line for parse_line" (16)
    assert outcomes(parse([line.encode() for line in lines])) == sorted(
        (e.queue_id, e.recipient, e.status, e.dsn, e.relay, e.smtp_code, e.sender, e.message_id, e.stream)
        for n, line in enumerate(lines, 1)
        for e in PostfixLogParser(reference_time=REFERENCE).parse_line(line, 'maillog', n)
        if isinstance(e, Event)
    )
