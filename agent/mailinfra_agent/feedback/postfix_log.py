"""Postfix log lines -> delivery :class:`~mailinfra_agent.feedback.events.Event` values and message records.

One event per delivery attempt (``to=<...>, ..., status=sent|deferred|bounced (...)`` of smtp(8), lmtp(8),
local(8), error(8), ...), and one :class:`MessageSeen` per qmgr ``from=<...>`` line (the envelope sender: a VERP
return path) and per cleanup ``message-id=<...>`` line, which the ingest service stores so that later delivery
lines can be matched to their message. The parser also keeps a bounded map queue id -> (sender, message id),
so an event carries both when their lines went through the same parser.

Line formats (the header before ``program[pid]: ``):

- classic syslog, ``Dec  6 06:00:00 host postfix-marketing/smtp[123]: ...``;
- Postfix's own ``maillog_file`` (postlogd, what the roles write), ``Dec 06 06:00:00 host ...`` (day zero-padded,
  whole seconds; a fraction of seconds after the time, as journalctl's ``short-precise`` writes, is accepted too);
- RFC 3339 (rsyslog's high-precision format, Debian's default), ``2026-12-06T06:00:00.123456+00:00 host ...``;
- journalctl's ``short`` (as postlogd's), ``short-precise``, ``short-iso`` and ``short-iso-precise``
  (``2026-12-06T06:00:00+0000``); a program without ``[pid]``; a CR before the newline.
- classic syslog with its priority first, as sent (``logger --rfc3164``: ``<22>Dec  6 06:00:00 host ...``);
- RFC 5424 (``<22>1 2026-12-06T06:00:00.123456+00:00 host postfix-marketing/smtp 123 - [sd ...] ...``, with or
  without ``<PRI>VERSION``): APP-NAME and PROCID are the program; rsyslog's template cuts APP-NAME at its first
  ``/`` (``postfix-marketing``: the daemon is unknown, and so are the transport's IP and ISP), read only for a known
  :class:`Instance` or ``postfix`` (a delivery line of another ``postfix-*`` name cut so is ``garbage``);
- a space before the time (rsyslog's ``date-pgsql``, ``2026-12-06 06:00:00``), ``YYYYMMDDhhmmss`` (``date-mysql``),
  seconds since 1970 (``date-unixtimestamp``, journalctl's ``short-unix``), journalctl's ``short-full``
  (``Sun 2026-12-06 07:00:00 CET``: the abbreviation must be one of ``tz`` then, or ``UTC``/``GMT``).

Formats without a date or a header (journalctl's ``short-monotonic``, ``-o cat``, ``-o json``) and lines without
the host name are not read: their delivery lines are ``garbage`` (as any delivery line whose header is unreadable),
never silently nothing; a date without its time is an unreadable stamp, never midnight.

Postfix writes yearless stamps in the host's local time: they are read in ``tz`` (default UTC; ingest passes
:func:`local_zone`, read once when it starts: a change of the host's zone needs a restart of ingest) and get the
latest year that puts them at most two days after ``reference_time`` (default: now, moved with the clock every
hour while following a log; the slack covers clock and zone skew); pass the file's modification time when reading
an old file, so a log that crosses New Year gets both years right.

The program is ``<syslog_name>[/<service>]/<daemon>``. The roles give each stream instance the syslog_name
``postfix-<stream>`` and each outbound transport the service name ``out_<ip key>`` or ``out_<ip key>__<isp>``,
bound to one address (``smtp_bind_address``). The line does not carry the sending IP, so it comes from that
transport name (an ip key ``198_51_100_20`` is the address ``198.51.100.20``; other keys through
``Instance.transport_ips``), else from the instance's only IP (:class:`Instance`), else it is None. The ISP comes
from the transport's ``__<isp>`` suffix, else from ``isp_of`` (e.g. an :class:`IspMatcher`) on the recipient's
domain. Programs whose syslog_name is neither a known instance nor ``postfix``/``postfix-*`` are other programs:
ignored.

Decisions:

- **Expiry.** Postfix logs an expiry once per message (qmgr ``from=<...>, status=expired, returned to sender``;
  ``status=force-expired`` after ``postsuper -e``), with no line per recipient. The parser turns it into one
  ``expired`` event per recipient whose last attempt it saw deferred (carrying that attempt's code, text, relay, IP
  and ISP); when it saw none (the earlier lines were in a file it did not read), one ``expired`` event with an
  empty recipient. pflogsumm (1.1.5, Debian 12) has no expiry count: its "delivered" counts ``status=sent``
  lines (notifications included, local forwards not), "bounced" the ``bounced``
  lines, "deferred" the queue ids with a deferral and "(N deferrals)" the ``deferred`` lines.
- **Locally generated bounces.** ``postfix/bounce[...]: ID: sender non-delivery notification: NEW`` is not a
  delivery attempt: no event (the recipient's ``bounced``/``expired`` event came from its own line). The
  notification NEW is then an ordinary message with the null sender: its delivery yields events with
  ``sender == ''`` when its qmgr line was seen (a report should leave those out of the stream's rates).
- **Local forwards.** local(8)'s ``status=sent (forwarded as NEW)`` (an alias or ``.forward`` to other addresses)
  is not an outcome: no event. NEW is an ordinary message with the same sender and message id, whose deliveries
  are the outcomes (pflogsumm, too, counts it "forwarded", not "delivered").
- **Address verification** probes (``status=deliverable``/``undeliverable``, and
  ``undeliverable-but-not-cached`` with ``address_verify_negative_cache = no``) are not deliveries: ignored.
  ``status=SOFTBOUNCE`` (``soft_bounce = yes``) is a deferral.
- **Quoted addresses.** Postfix quotes a local part with specials, and such a part may hold ``>, status=sent (``
  or ``>, size=``: the address ends after its closing quote (``_address_end``); FAST takes no quoted address. An
  address with a ``"`` but no closing quote before ``@``/``>`` was logged unquoted (``info_log_address_format =
  internal``, Postfix < 3.5): it ends at the first ``>, ``.
- **Cut by Postfix.** Postfix cuts every log message (what follows ``program[pid]: ``, from the queue id on) at
  2,000 bytes (``MESSAGE_LIMIT``), in a UTF-8 character if one spans the limit: a delivery line with a long remote
  reply has no closing parenthesis. A message of exactly that many bytes (counted in the bytes of the line, which
  ``parse_lines`` has; ``parse_line`` takes them as ``raw``) is still its event, with the reply text as logged.
- **Bad input.** Lines of other programs and Postfix messages the parser does not know give ``[]``. A delivery
  line that is cut otherwise (no ``status=``, no closing parenthesis) raises ``EventError('truncated', ...)``; one with
  unreadable fields or stamp ``EventError('garbage', ...)``; an unknown status word
  ``EventError('unknown-status', ...)``; a line with a surrogate no bytes decode to (``'\\ud800'``; not one
  of ``surrogateescape``'s) ``EventError('encoding', ...)``. Messages start with ``source:lineno:``. Text decoded
  with ``surrogateescape`` goes through unchanged.
- **Keys.** ``event_key('postfix', line[, recipient])`` (the line without its line end; the recipient for the
  events of an expiry): the same line read twice (or from a renamed, rotated file) gives the same key; the source
  path is not part of it.

Speed: a cheap substring prefilter drops most lines, and no regular expression can backtrack. ``parse_lines``
reads a batch of raw lines with the same results: 2,000 lines at a time are joined, decoded once and searched by
one regular expression (``FAST_LINES``) that finds the usual lines and their fields at C speed; counts of the
prefilter's literals show whether a line with a record's field was left out (then a slower exact pass finds it);
anything unusual goes through ``parse_line``, in line order. On benchmarks/feedback's 1,000,000-line
three-instance log (Python 3.11) reading and parsing went from about 4.7 s to 3.5 s of CPU (README, session 10),
parsing alone from about 3.0 s to 2.3 s (session 11).

Standard library only (a shared leaf: both the agent and the controller import it).
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import io
import logging
import os
import re
import struct
import time as time_module
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import accumulate
from typing import final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mailinfra_agent.feedback.events import Event, EventError, Status, event_key

__all__ = [
    'Instance',
    'IspMatcher',
    'MessageSeen',
    'ParsedLines',
    'PostfixLogParser',
    'Record',
    'local_zone',
    'smtp_code_of',
]

log = logging.getLogger(__name__)
UTC = dt.UTC
MONTH_NAMES = ('Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec')
MONTHS = {name: number for number, name in enumerate(MONTH_NAMES, 1)}
WEEKDAY_NAMES = ('Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun')
WEEKDAYS = frozenset(WEEKDAY_NAMES)
_CLOCK = re.compile(r'[0-9]{2}:[0-9]{2}:[0-9]{2}(?:[.,][0-9]+)?(?:Z|[+-][0-9:]+)?\Z')
"""The time after a date and a space (rsyslog's ``date-pgsql``), with a fraction and an offset if any."""
UNIX_STAMP = re.compile(r'[0-9]{10}(?:\.[0-9]{1,9})?\Z')
"""Seconds since 1970 (journalctl's ``short-unix``, rsyslog's ``date-unixtimestamp``, syslog-ng's
``ts-format(unix)``): 10 digits, 2001-09-09 to 2286-11-20."""
COMPACT_STAMP = re.compile(r'[0-9]{14}\Z')
"""``YYYYMMDDhhmmss`` in local time (rsyslog's ``date-mysql``)."""
_BARE_DELIVERY = re.compile(r'(?<![0-9A-Za-z])(?:[0-9A-F]{5,20}|[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z]{10,30}): to=<')
"""A delivery message in a line without a header: the line itself (journalctl's ``-o cat``) or a field's value
(``MESSAGE=`` of ``-o export`` and ``-o verbose``, ``"MESSAGE" : "`` of ``-o json-pretty``)."""
READ_FORMATS = (
    'read: syslog, RFC 3339 or a space before the time, RFC 5424, seconds since 1970; journalctl -o short,'
    ' short-precise, short-iso, short-iso-precise, short-full, short-unix'
)
ZERO_OFFSET_NAMES = frozenset({'UTC', 'GMT'})
"""Zone abbreviations that always mean offset 0, whatever this host's zone."""
# Short queue ids are upper-case hex; long ones (enable_long_queue_ids) use digits and consonants only, so words
# such as "warning" or "NOQUEUE" never pass.
QUEUE_ID = re.compile(r'[0-9A-F]{5,20}|[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z]{10,30}')
DSN = re.compile(r'[245]\.\d{1,3}\.\d{1,3}')
DELAY = re.compile(r'\d+(?:\.\d+)?')  # as FAST reads a delay (decimal digits, which float() reads)
# The reply code: at the start of the text, or after "said: " / "refused to talk to me: ". No nested repetition.
SMTP_CODE = re.compile(r'(?:^|said: |to me: )([245]\d\d)(?=[ -]|$)')
_CODE_FIRST = re.compile(r'([245]\d\d)(?=[ -]|$)')
"""SMTP_CODE at the start: tried first (a search for SMTP_CODE tries every position)."""
STATUSES: dict[str, Status] = {
    'sent': 'sent',
    'deferred': 'deferred',
    'bounced': 'bounced',
    'expired': 'expired',
    'SOFTBOUNCE': 'deferred',
}
SENDER_DAEMONS = ('qmgr', '')
"""The daemons whose ``from=<...>, size=`` line is a message's sender: qmgr, or unknown (a program name without it)."""
FORWARDED = 'forwarded as '
"""local(8)'s ``status=sent (forwarded as NEWID)``: see :func:`_forwarded`."""
IGNORED_STATUSES = frozenset({'deliverable', 'undeliverable', 'undeliverable-but-not-cached'})
"""Address verification probes (the last with ``address_verify_negative_cache = no``)."""
# parse_lines: a line without one of these and without "status=" gives no record, no error and no change of state
# in parse_line (records need ": " before their field; the only error outside them, an unreadable header, needs
# "status=", which a line rarely has without ": to=<"). A pattern with a literal start: searched at C speed.
KEEP = re.compile(rb': (?:to=<|from=<|message-id=|removed)')
STATUS = re.compile(rb'status=')
OTHER_TO = re.compile(rb'to=<(?<!: to=<)')
# The usual lines, matched only where parse_line would read the same parts (single spaces, no
# brackets in the program name, the four delivery fields of smtp/lmtp/local in their order, with smtp's
# ``conn_use=N`` of a reused connection, no CR at the end).
# Groups: 1 RFC 3339 stamp, 2 syslog stamp, 3 program name, 4 queue id; delivery 5 recipient, 6 relay, 7 delay,
# 8 dsn, 9 status, 10 text, 11 the reply code at its start (SMTP_CODE's first case); from 12 sender, 13 "size="
# (else an expiry); 14 message id; 15 removed. The last group matched tells the kind of line. The readable form of
# FAST_LINES, which parse_lines runs; the tests check that FAST_LINES takes exactly the lines FAST takes.
FAST = re.compile(
    r'(?:(\d\S*)|([A-Za-z]\S* {1,2}\S+ \S+)) \S+ ([^\s\[\]]+)\[\d+\]: '
    r'([0-9A-F]{5,20}|[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z]{10,30}): '
    r'(?:to=<([^>"]*)>, relay=([^,]*), (?:conn_use=\d+, )?delay=(\d+(?:\.\d+)?), delays=[^,]*, '
    r'dsn=([245]\.\d{1,3}\.\d{1,3}), '
    r'status=(sent|deferred|bounced|SOFTBOUNCE) \(((?:([245]\d\d)(?=[ -]|\)\Z))?.*)\)'
    r'|from=<([^>"]*)>, (?:(size=)|status=expired)[^\r]*'
    r'|message-id=<([^\s<>]*)>'
    r'|(removed))\Z'
)
_DELIVERY, _SIZE, _MESSAGE_ID, _REMOVED, _OTHER = 10, 13, 14, 15, 16


def _ascii(excluded: str = '', *, space: bool = True) -> str:
    """A character class of the ASCII characters but newline, ``excluded`` and (``space=False``) what ``str``'s
    ``\\s`` matches (which has U+001C-U+001F too)."""
    chars = [chr(c) for c in range(128) if chr(c) not in excluded + '\n' and (space or not chr(c).isspace())]
    return '[' + ''.join(f'\\x{ord(c):02x}' for c in chars) + ']'


_S, _DOT = _ascii(space=False), _ascii()
_ADDRESS = _ascii('>"')
"""An address FAST_LINES reads: no quoted local part (parse_line finds where one ends)."""
# parse_lines: FAST over a chunk of lines ("\n" + the lines joined with "\n" + "\n"), as one finditer: each match is a
# line FAST matches. Its classes take ASCII only (and no newline), so a line with anything else (or U+FFFD) does not
# match, as FAST is tried on ASCII lines only; quantifiers that cannot give anything back are possessive (a line of
# another kind fails at once). Same groups as FAST, and 16: any other line with a record's field after the queue id
# (cut, CR at the end, not ASCII, ...: for parse_line). The line starts after the match's newline.
FAST_LINES = re.compile(
    rf'\n(?:([0-9]{_S}*+)|([A-Za-z]{_S}*+ {{1,2}}+{_S}++ {_S}++)) {_S}++ ({_ascii("[]", space=False)}++)\[[0-9]++\]: '
    r'([0-9A-F]{5,20}+|[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z]{10,30}+): '
    rf'(?:to=<({_ADDRESS}*+)>, relay=({_ascii(",")}*+), (?:conn_use=[0-9]++, )?+'
    rf'delay=([0-9]++(?:\.[0-9]++)?), delays={_ascii(",")}*+, '
    r'dsn=([245]\.[0-9]{1,3}\.[0-9]{1,3}), '
    rf'status=(sent|deferred|bounced|SOFTBOUNCE) \(((?:([245][0-9][0-9])(?=[ -]|\)\n))?{_DOT}*)\)'
    rf'|from=<({_ADDRESS}*+)>, (?:(size=)|status=expired){_ascii(chr(13))}*+'
    rf'|message-id=<({_ascii("<>", space=False)}*+)>'
    r'|(removed)'
    r'|((?:to=<|from=<|message-id=|removed)[^\n]*+))(?=\n)'
)
RFC5424 = re.compile(
    r'(?:<[0-9]{1,3}+>)?+(?:[0-9]{1,2}+ )?+([0-9]\S*+) (\S++) (\S++) (\S++) \S++ '
    r'(?:-|(?:\[(?:[^\]"\\]|\\.|"(?:[^"\\]|\\.)*+")*+\])++)(?: (.*))?\Z',
    re.DOTALL,
)
"""An RFC 5424 line (``<PRI>VERSION`` optional, as file templates write it): stamp, host, APP-NAME, PROCID, the
message after MSGID and STRUCTURED-DATA (whose quoted values may hold ``]`` and spaces)."""
MESSAGE_LIMIT = 2000
"""Postfix cuts a log message (the text after ``program[pid]: ``) at this many bytes (``MSG_SYSLOG_RECLEN`` in
its util/msg_syslog.c; ``maillog_file`` too): a delivery line with a long reply then has no closing parenthesis."""
CHUNK_LINES = 2000
"""parse_lines joins and decodes this many lines at a time (a few hundred KB)."""
FUTURE_SLACK = 2 * 86400.0
"""A yearless stamp may lie this far after the reference time (clock or zone skew) before it is last year's."""
REFERENCE_REFRESH = 3600.0
"""A parser without a fixed ``reference_time`` (a follower) moves its reference to the clock this often."""


@dataclass(frozen=True, slots=True)
class Instance:
    """A Postfix instance as the log shows it."""

    syslog_name: str
    """``postfix-marketing``; its services log as ``<syslog_name>/<service>`` (``postfix`` for the primary)."""
    stream: str | None
    """The stream it sends for; None for the primary instance."""
    sending_ips: tuple[str, ...] = ()
    """The stream's addresses on this host: the sending IP of every line when there is only one."""
    transport_ips: tuple[tuple[str, str], ...] = ()
    """(ip key, address) of the transports ``out_<ip key>``: ``SendingIp.id`` without its ``<pool>_`` prefix. Needed
    only for ids that are not an address with ``_`` for ``.`` (``alloc1``)."""


_set_class = object.__setattr__


@final  # as Event: __init__ ends by making the object a MessageSeen
@dataclass(frozen=True, slots=True, init=False)
class MessageSeen:
    """A message entering a queue: one record per qmgr ``from=`` line and per cleanup ``message-id=`` line."""

    key: str
    time: float
    source: str
    stream: str | None
    queue_id: str
    sender: str | None
    """The envelope sender (``''`` for the null sender of a notification); None on a ``message-id`` record."""
    message_id: str | None
    """Without the angle brackets; None on a ``from`` record."""

    def __init__(
        self,
        key: str,
        time: float,
        source: str,
        stream: str | None,
        queue_id: str,
        sender: str | None,
        message_id: str | None,
    ) -> None:
        # One per qmgr/cleanup line: plain slot stores, then the frozen class (as Event.__init__ does).
        _set_class(self, '__class__', _BuildingSeen)
        self.key = key  # type: ignore[misc]
        self.time = time  # type: ignore[misc]
        self.source = source  # type: ignore[misc]
        self.stream = stream  # type: ignore[misc]
        self.queue_id = queue_id  # type: ignore[misc]
        self.sender = sender  # type: ignore[misc]
        self.message_id = message_id  # type: ignore[misc]
        self.__class__ = MessageSeen


class _BuildingSeen:
    """:class:`MessageSeen`'s slots without its frozen ``__setattr__`` (see ``Event.__init__``)."""

    __slots__ = MessageSeen.__slots__


Record = Event | MessageSeen


@dataclass(slots=True)
class ParsedLines:
    """What :meth:`PostfixLogParser.parse_lines` found, each list in line order."""

    events: list[Event] = field(default_factory=list)
    messages: list[MessageSeen] = field(default_factory=list)
    expiries: list[tuple[Event, str]] = field(default_factory=list)
    """``expired`` events without a recipient (their deferrals were not seen), with their line."""
    problems: list[tuple[int, EventError | None]] = field(default_factory=list)
    """(line number, the line's error, or None for a line that is not UTF-8 and was read with U+FFFD)."""

    def add(self, records: list[Record], line: str) -> None:
        for record in records:
            if isinstance(record, MessageSeen):
                self.messages.append(record)
            elif record.status == 'expired' and not record.recipient:
                self.expiries.append((record, line))
            else:
                self.events.append(record)


class IspMatcher:
    """Recipient domain -> ISP name: the longest listed suffix of the domain (as the queue collector does)."""

    def __init__(self, domains: Mapping[str, str], default: str | None = None) -> None:
        self._domains = {domain.lower().strip('.'): isp for domain, isp in domains.items()}
        self._default = default
        self._cache: dict[str, str | None] = {}

    def __call__(self, domain: str) -> str | None:
        try:
            return self._cache[domain]
        except KeyError:
            pass
        found = self._default
        labels = domain.lower().strip('.').split('.')
        for start in range(len(labels)):
            isp = self._domains.get('.'.join(labels[start:]))
            if isp is not None:
                found = isp
                break
        if len(self._cache) >= 100_000:
            self._cache.clear()
        self._cache[domain] = found
        return found


_sha256 = hashlib.sha256


def _line_key(line: str) -> str:
    """``event_key('postfix', line)``, without its generic joining (one call per stored line)."""
    return _sha256(('postfix\x1f' + line).encode('utf-8', 'surrogateescape')).hexdigest()[:32]


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode('utf-8')
    except UnicodeDecodeError:
        return False
    return True


def smtp_code_of(diagnostic: str) -> str | None:
    """The remote server's three-digit reply code in a Postfix status text, if it has one."""
    match = _CODE_FIRST.match(diagnostic)
    if match is None and ('said: ' in diagnostic or 'to me: ' in diagnostic):
        match = SMTP_CODE.search(diagnostic)
    return match.group(1) if match else None


def local_zone(environ: Mapping[str, str] = os.environ, localtime: str = '/etc/localtime') -> dt.tzinfo:
    """The zone this host's programs write local times in (Postfix's yearless stamps), read as glibc reads it: ``TZ``
    without a leading ``:`` (a path when it starts with ``/``, else a zone name, else a POSIX rule string such as
    ``CET-1CEST,M3.5.0,M10.5.0/3``), UTC when ``TZ`` is empty, ``/etc/localtime`` when it is unset. ``dt.UTC`` for
    a zone that is UTC all year (the parser's fast path) and when there is no ``/etc/localtime``; a ``TZ`` or
    ``/etc/localtime`` that cannot be read is UTC with a warning (logged once per value)."""
    value = environ.get('TZ')
    name = localtime if value is None else value.removeprefix(':')
    if not name:
        return UTC  # glibc: TZ= and TZ=: are UTC
    try:
        if name.startswith('/'):
            with open(name, 'rb') as handle:
                zone: dt.tzinfo = ZoneInfo.from_file(handle, key=name)
        else:
            try:
                zone = ZoneInfo(name)
            except (OSError, ValueError, ZoneInfoNotFoundError):
                try:
                    zone = _posix_zone(name)  # glibc: a rule string when no zone file has the name
                except ValueError as error:
                    raise ValueError(f'no zone of that name, nor a POSIX rule string zoneinfo reads: {error}') from None
    except FileNotFoundError:
        if value is None:
            return UTC  # no /etc/localtime: glibc's UTC
        _warn_zone(f'TZ={value!r}', 'no such file')
        return UTC
    except (OSError, ValueError) as error:
        _warn_zone(localtime if value is None else f'TZ={value!r}', str(error))
        return UTC
    year = dt.datetime.now(UTC).year
    try:  # datetime checks the offset (under 24 hours) only on an aware time
        offsets = [dt.datetime(y, m, 1, tzinfo=zone).utcoffset() for y in (year - 1, year, year + 1) for m in (1, 7)]
    except ValueError as error:  # e.g. POSIX's 24-hour offsets, which datetime refuses: every stamp would fail
        _warn_zone(localtime if value is None else f'TZ={value!r}', str(error))
        return UTC
    return UTC if all(offset == dt.timedelta(0) for offset in offsets) else zone


def _posix_zone(rule: str) -> ZoneInfo:
    """A POSIX ``TZ`` rule string (``JST-9``, ``CET-1CEST,M3.5.0,M10.5.0/3``) as a zone: the footer of a TZif file
    without transitions, which zoneinfo reads (ValueError for what it cannot read, e.g. ``CET-1CEST`` without its
    rules, for which glibc takes the rules of ``posixrules``)."""
    if '\n' in rule:
        raise ValueError('a newline in a TZ rule string')
    header = b'TZif2' + bytes(15) + struct.pack('>6l', 0, 0, 0, 0, 1, 4) + struct.pack('>lBB', 0, 0, 0) + b'UTC\0'
    return ZoneInfo.from_file(io.BytesIO(header + header + b'\n' + rule.encode('ascii') + b'\n'), key=rule)


_zone_warnings: set[str] = set()


def _warn_zone(what: str, reason: str) -> None:
    if what not in _zone_warnings:
        _zone_warnings.add(what)
        log.warning('%s: not a time zone this parser reads (%s): yearless Postfix stamps are read as UTC', what, reason)


def _address_end(text: str, start: int, end: str) -> int:
    """Where ``end`` (``'>'``, ``'>, '``) closes the address that starts at ``text[start]``, or -1. Postfix quotes a
    local part with specials (``"odd>, status=sent"@example.com``, ``\\`` before ``"`` and ``\\``): the search starts
    after its closing quote (the first unescaped ``"``, which ``@`` or ``>`` follows). Without one the address was
    logged unquoted (``info_log_address_format = internal``, Postfix < 3.5: ``"abc@example.com``): the first ``end``
    closes it."""
    if text.startswith('"', start):
        index, size = start + 1, len(text)
        while index < size and text[index] != '"':
            index += 2 if text[index] == '\\' else 1
        if index + 1 < size and text[index + 1] in '@>':
            return text.find(end, index + 1)
    return text.find(end, start)


def _cut_by_postfix(message: str, raw: bytes | None) -> bool:
    """Whether ``message`` (what follows ``program[pid]: ``) is as long as Postfix lets one be: exactly MESSAGE_LIMIT
    bytes. Read with U+FFFD for bytes that are not UTF-8 (a cut in a character), it is measured in ``raw``, the line's
    bytes; without them a U+FFFD at its end counts as a cut character's 1 to 3 bytes."""
    if raw is not None and '\ufffd' in message:
        header = _header(raw.decode('utf-8', 'surrogateescape').rstrip('\r\n'))
        if header is not None:
            message = header[3]
    size = len(message.encode('utf-8', 'surrogateescape'))
    if raw is None and message.endswith('\ufffd'):
        return MESSAGE_LIMIT <= size <= MESSAGE_LIMIT + 2
    return size == MESSAGE_LIMIT


def _stamp_error(stamp: str, source: str, lineno: int) -> EventError:
    return EventError('garbage', f'{source}:{lineno}: unreadable time stamp {stamp[:40]!r}')


def _transport_ip(key: str) -> str | None:
    """``198_51_100_20`` -> ``198.51.100.20``; None for an ip key that is not an address."""
    parts = key.split('_')
    if len(parts) == 4 and all(
        part.isascii() and part.isdigit() and len(part) <= 3 and int(part) < 256 for part in parts
    ):
        return '.'.join(parts)
    return None


def _header(line: str) -> tuple[str, str, str, str] | None:
    """(stamp, host, ``program[pid]:``, message) of a syslog, postlog, RFC 3339 or RFC 5424 line; None when it has
    none."""
    if line[:1] == '<':  # a priority first: RFC 5424 (``<22>1 ...``), or before a classic or RFC 3339 stamp
        close = line.find('>', 1, 5)  # (``<22>Dec  7 ...``, ``<22>2026-12-07T...``: logger, rsyslog's forward format)
        after = line[close + 1 : close + 5]
        if (
            close > 1
            and line[1:close].isascii()
            and line[1:close].isdigit()
            and (after[:1].isalpha() or after.isdigit())
        ):
            line = line[close + 1 :]
    if line[:1].isdigit() or line[:1] == '<':
        fields = line.split(None, 3)
        if len(fields) < 4 or not fields[2].endswith(':'):
            if _CLOCK.match(fields[1] if len(fields) > 1 else ''):  # a space before the time (date-pgsql)
                fields = line.split(None, 4)
                if len(fields) < 5:
                    return None
                fields[:2] = [f'{fields[0]} {fields[1]}']
                stamp, host, program_text, message = fields
            else:
                return _rfc5424_header(line)
        else:
            stamp, host, program_text, message = fields
    elif line[:3] in WEEKDAYS:  # journalctl's short-full: ``Mon 2026-12-07 11:01:31 CET host ...``
        fields = line.split(None, 6)
        if len(fields) < 7 or not fields[1][:1].isdigit():
            return None
        stamp = ' '.join(fields[:4])  # with the weekday, which must be the date's
        host, program_text, message = fields[4:]
    else:
        fields = line.split(None, 5)
        if len(fields) < 6 or line[:1] == '[':  # journalctl's short-monotonic and short-delta: no date
            return None
        stamp = ' '.join(fields[:3])
        host, program_text, message = fields[3:]
    if not program_text.endswith(':'):
        return None
    return stamp, host, program_text, message


def _rfc5424_header(line: str) -> tuple[str, str, str, str] | None:
    """:func:`_header` of an RFC 5424 line: APP-NAME and PROCID as ``app[procid]:``; the message without the
    leading spaces and BOM rsyslog's and syslog-ng's templates may leave."""
    match = RFC5424.match(line)
    if match is None:
        return None
    stamp, host, app, procid, message = match.groups()
    if '/' not in app:  # rsyslog cuts APP-NAME at the first '/' (postfix-marketing): Postfix's, daemon unknown
        app += '/'
    program_text = f'{app}[{procid}]:' if procid.isascii() and procid.isdigit() else f'{app}:'
    return stamp, host, program_text, (message or '').lstrip(' ').removeprefix('\ufeff')


def _forwarded(status: Status, diagnostic: str) -> bool:
    """local(8) handed the recipient on (an alias or ``.forward`` to other addresses): a new message, whose own
    lines give the outcomes; no event, as pflogsumm counts it "forwarded", not "delivered"."""
    return status == 'sent' and diagnostic.startswith(FORWARDED)


def _delivery_fields(text: str, source: str, lineno: int) -> tuple[str | None, float | None, str | None]:
    """relay, delay and dsn of the ``name=value, ...`` fields between the recipient and the status."""
    relay = delay = dsn = None
    for item in text.split(', '):
        name, equals, value = item.partition('=')
        if not equals:
            raise EventError('garbage', f'{source}:{lineno}: unreadable delivery field {item[:80]!r}')
        if name == 'relay':
            relay = None if value == 'none' else value
        elif name == 'delay':
            if not DELAY.fullmatch(value):  # as Postfix writes it; float() would also take nan, 1e400, -5, 1_0
                raise EventError('garbage', f'{source}:{lineno}: unreadable delay {value[:40]!r}')
            delay = float(value)
        elif name == 'dsn':
            if not DSN.fullmatch(value):
                raise EventError('garbage', f'{source}:{lineno}: unreadable dsn {value[:40]!r}')
            dsn = value
    return relay, delay, dsn


@dataclass(slots=True)
class _Program:
    """What a program name (``postfix-marketing/out_198_51_100_20__gmail/smtp``) tells, computed once per name."""

    instance: str
    stream: str | None
    daemon: str
    """``''`` when the line does not tell (an RFC 5424 APP-NAME rsyslog cut at its ``/``: ``postfix-marketing``)."""
    sending_ip: str | None
    isp: str | None


@dataclass(slots=True)
class _Queued:
    sender: str | None = None
    message_id: str | None = None
    deferred: dict[str, Event] | None = None
    """Recipients whose last attempt was deferred: the expiry event's template."""


class PostfixLogParser:
    """Parse Postfix log lines one at a time; remembers queue ids between lines (bounded)."""

    def __init__(
        self,
        instances: Iterable[Instance] = (),
        *,
        isp_of: Callable[[str], str | None] | None = None,
        reference_time: float | None = None,
        tz: dt.tzinfo = UTC,
        max_messages: int = 200_000,
    ) -> None:
        self._instances = {instance.syslog_name: instance for instance in instances}
        self._isp_of = isp_of
        self._live = reference_time is None
        reference = time_module.time() if reference_time is None else reference_time
        self._reference = reference
        self._reference_year = dt.datetime.fromtimestamp(reference, tz).year
        self._tz = tz
        self._max_messages = max_messages
        self._programs: dict[str, _Program | None] = {}
        self._fast_programs: dict[str, _Program | None] = {}
        """:meth:`parse_lines`: the program name without ``[pid]:`` -> :meth:`_program` of it."""
        self._days: dict[tuple[int, int], tuple[float, ...]] = {}
        self._fixed_offset = isinstance(tz, dt.timezone)
        self._stamps: dict[str, float] = {}
        self._minutes: dict[str, float] = {}
        """``Mmm dd hh:mm`` -> the time of its second 0, for minutes whose 60 seconds all get the same year."""
        self._queued: dict[tuple[str, str], _Queued] = {}

    # --- public --------------------------------------------------------------------------------------------------

    def remember(self, stream: str | None, queue_id: str, sender: str | None, message_id: str | None) -> None:
        """Seed the queue id map (e.g. from the store after a restart) for the instance of ``stream``."""
        instance = next((i.syslog_name for i in self._instances.values() if i.stream == stream), None)
        if instance is None:
            instance = 'postfix' if stream is None else f'postfix-{stream}'
        entry = self._entry(instance, queue_id)
        if sender is not None:
            entry.sender = sender
        if message_id is not None:
            entry.message_id = message_id

    def parse_line(self, line: str, source: str, lineno: int, raw: bytes | None = None) -> list[Record]:
        """The events and message records of one line; ``[]`` for lines that carry none. ``raw``: the bytes ``line``
        was decoded from with U+FFFD for bytes that are not UTF-8 (Postfix's cut at 2,000 bytes is measured in them;
        not needed for a line decoded strictly or with ``surrogateescape``)."""
        # Cheap prefilter: every line that matters has one of these.
        if 'to=<' not in line and 'from=<' not in line and 'message-id=' not in line and ': removed' not in line:
            return []
        line = line.rstrip('\r\n')
        if not line.isascii():
            try:
                line.encode('utf-8', 'surrogateescape')  # as the keys are made, before any state changes
            except UnicodeEncodeError:
                raise EventError('encoding', f'{source}:{lineno}: a lone surrogate, not text: {line[:200]!r}') from None
        header = _header(line)
        program = None if header is None else self._program(header[2])
        if header is None or program is None:
            self._refuse_unread(line, header, source, lineno)
            return []
        stamp, _host, _, message = header
        colon = message.find(': ')
        if colon < 0:
            return []
        queue_id = message[:colon]
        if not QUEUE_ID.fullmatch(queue_id):
            return []
        text = message[colon + 2 :]
        if text.startswith('to=<'):
            return self._delivery(program, queue_id, text, line, stamp, source, lineno, raw)
        if text.startswith('from=<'):
            return self._from(program, queue_id, text, line, stamp, source, lineno)
        if text.startswith('message-id='):
            value = text[11:].strip()
            if value.startswith('<') and value.endswith('>'):
                value = value[1:-1]
            return list(self._message_id(program, queue_id, value, line, stamp, source, lineno))
        if text == 'removed':
            self._queued.pop((program.instance, queue_id), None)
        return []

    def parse_lines(self, lines: Sequence[bytes], source: str, first: int = 1) -> ParsedLines:
        """:meth:`parse_line` over raw lines (without their newline) numbered from ``first``, decoded as UTF-8 with
        U+FFFD for bad bytes, with the same results; a line's error is collected instead of raised, and so is every
        line that is not UTF-8 (``(number, None)``, before that line's error). A line that holds a newline is the
        caller's error (ValueError)."""
        out = ParsedLines()
        ascii_only = True
        for start in range(0, len(lines), CHUNK_LINES):
            ascii_only &= self._parse_chunk(lines[start : start + CHUNK_LINES], source, first + start, out)
        if not ascii_only:  # an encoding problem goes before its line's error
            out.problems.sort(key=lambda problem: (problem[0], problem[1] is not None))
        return out

    def _parse_chunk(self, lines: Sequence[bytes], source: str, first: int, out: ParsedLines) -> bool:
        """:meth:`parse_lines` of a part of the batch (the joined copies stay small); whether it was ASCII."""
        data = b'\n'.join([b'', *lines, b''])
        if data.count(b'\n') != len(lines) + 1:
            raise ValueError('parse_lines: a line holds a newline (lines are split at newlines)')
        ascii_only = data.isascii()
        try:
            text = data.decode('ascii' if ascii_only else 'utf-8')
        except UnicodeDecodeError:  # a line is not UTF-8 (no character spans a newline): which ones, line by line
            out.problems += (
                (first + index, None) for index, raw in enumerate(lines) if not raw.isascii() and not _utf8(raw)
            )
            text = data.decode('utf-8', 'replace')  # only ASCII lines match FAST_LINES: the same lines as one by one
        matches = list(FAST_LINES.finditer(text))
        start = 0
        counted = (0, 0)  # where _matched stopped counting lines: each part goes on from there, not from the start
        others, numbers = self._others(lines, data, text, matches)
        for index, raw in others:  # kept lines FAST_LINES did not match (each after the matches before it): rare
            end = bisect.bisect_left(numbers, index, start)
            counted = self._matched(matches[start:end], out, source, first, text, lines, counted)
            start = end
            self._other(raw.decode('utf-8', 'replace'), out, source, first + index, raw)
        self._matched(matches[start:] if start else matches, out, source, first, text, lines, counted)
        return ascii_only

    def _other(self, line: str, out: ParsedLines, source: str, number: int, raw: bytes) -> None:
        """parse_lines: a line that goes through :meth:`parse_line`."""
        try:
            records = self.parse_line(line, source, number, raw)
        except EventError as error:
            # A copy without traceback and context: those hold the batch's frame in a cycle, which only the collector
            # frees, and ``ingest run`` pauses the collector while it reads.
            out.problems.append((number, EventError(error.reason, str(error))))
            return
        if records:
            out.add(records, line.rstrip('\r\n'))

    @staticmethod
    def _others(
        lines: Sequence[bytes], data: bytes, text: str, matches: list[re.Match[str]]
    ) -> tuple[list[tuple[int, bytes]], list[int]]:
        """(index, line) of the lines :meth:`parse_line` would read (those with a record's field, and those with
        ``status=`` when a line without such a field has it) that FAST_LINES did not match; when there are any, the
        index of each match's line."""
        # Every match holds at least one KEEP hit and hits never overlap, so equal counts mean: each matched line has
        # exactly one, and no other line has any.
        if len(KEEP.findall(data)) == len(matches):
            # Any other line gives nothing in parse_line, but for its "unreadable header" (with "to=<" and "status=").
            for found in OTHER_TO.finditer(data):
                if data.find(b'status=', data.rfind(b'\n', 0, found.start()), data.find(b'\n', found.end())) >= 0:
                    break
            else:
                return [], []
        # The line of each match: the newline before line i is at i + the lengths of the lines before it.
        starts = accumulate(map((1).__add__, map(len, text.split('\n')[1:-1])), initial=0)
        line_of = dict(zip(starts, range(len(lines)), strict=False))  # starts has one more
        numbers = [line_of[match.start()] for match in matches]
        matched = set(numbers)
        rest = [index for index in range(len(lines)) if index not in matched]
        texts = list(map(lines.__getitem__, rest))
        joined = b'\n'.join(texts)  # the other lines, searched at once: offsets -> the line they are in
        offsets = list(accumulate(map((1).__add__, map(len, texts)), initial=0))
        kept = {bisect.bisect_right(offsets, found.start()) - 1 for found in KEEP.finditer(joined)}
        with_status = {bisect.bisect_right(offsets, found.start()) - 1 for found in STATUS.finditer(joined)}
        if not with_status <= kept:  # a line without a record's field has "status=": every "status=" line is read
            kept |= with_status
        return [(rest[line], texts[line]) for line in sorted(kept)], numbers

    def _matched(  # noqa: C901 (one loop, inlined for speed)
        self,
        matches: list[re.Match[str]],
        out: ParsedLines,
        source: str,
        first: int,
        text: str,
        lines: Sequence[bytes],
        counted_from: tuple[int, int] = (0, 0),
    ) -> tuple[int, int]:
        """The records of lines FAST_LINES matched (what :meth:`parse_line` makes of them; ``text`` decoded from
        ``lines``). ``counted_from`` and the result: (a position in ``text``, the newlines before it), so that the next
        part counts on from there."""
        programs, queued, isp_of = self._fast_programs, self._queued, self._isp_of
        events, messages = out.events, out.messages
        # The last stamp read (as in the line) and its time: _time gives the same for the same stamp when it was not
        # called in between.
        last_stamp, last_time = '', 0.0
        counted, newlines = counted_from  # the newlines before text[counted]: a line's number, when one is needed
        for match in matches:
            kind = match.lastindex
            if kind == _OTHER:
                last_stamp = ''
                newlines += text.count('\n', counted, match.start())
                counted = match.start()
                self._other(match[0][1:], out, source, first + newlines, lines[newlines])
                continue
            (
                rfc,
                syslog,
                name,
                queue_id,
                recipient,
                relay,
                delay,
                dsn,
                word,
                diagnostic,
                code,
                sender,
                _,
                value,
                _,
                _,
            ) = match.groups()
            try:
                program = programs[name]
            except KeyError:
                if len(programs) >= 10_000:
                    programs.clear()
                program = programs[name] = self._program(name + ':')
            if program is None:
                continue
            if kind == _REMOVED:
                queued.pop((program.instance, queue_id), None)
                continue
            if kind == _MESSAGE_ID:  # the time only when the id is new (as parse_line)
                entry = queued.get((program.instance, queue_id))
                if entry is None:  # as _entry
                    if len(queued) >= self._max_messages:
                        del queued[next(iter(queued))]
                    entry = queued[program.instance, queue_id] = _Queued()
                elif entry.message_id == value:
                    continue
                entry.message_id = value
            stamp = rfc or syslog
            if stamp != last_stamp:
                try:  # the syslog stamp as _header joins it: "Dec  6" -> "Dec 6"; the line's number only for an error
                    last_time = self._time(stamp.replace('  ', ' '), source, 0)
                except EventError:
                    last_stamp = ''
                    newlines += text.count('\n', counted, match.start())
                    counted = match.start()
                    number = first + newlines
                    out.problems.append((number, _stamp_error(stamp.replace('  ', ' '), source, number)))
                    continue
                last_stamp = stamp
            if kind == _DELIVERY:  # as _delivery_event
                recipient = recipient.lower()
                status = STATUSES[word]
                isp = program.isp
                if isp is None and isp_of is not None:
                    isp = isp_of(recipient.rpartition('@')[2])
                entry = queued.get((program.instance, queue_id))
                event = Event(
                    _sha256(('postfix\x1f' + match[0][1:]).encode()).hexdigest()[:32],
                    'delivery',
                    status,
                    last_time,
                    recipient,
                    source,
                    program.stream,
                    queue_id,
                    program.sending_ip,
                    entry.sender if entry else None,
                    isp,
                    code or smtp_code_of(diagnostic),
                    dsn,
                    diagnostic,
                    None if relay == 'none' else relay,
                    float(delay),
                    entry.message_id if entry else None,
                )
                if not (status == 'sent' and diagnostic.startswith(FORWARDED)):  # as _forwarded
                    events.append(event)
                if status == 'deferred':
                    entry = entry or self._entry(program.instance, queue_id)
                    if entry.deferred is None:
                        entry.deferred = {}
                    entry.deferred[recipient] = event
                elif entry is not None and entry.deferred:
                    entry.deferred.pop(recipient, None)
            elif kind == _MESSAGE_ID:
                key = _sha256(('postfix\x1f' + match[0][1:]).encode()).hexdigest()[:32]
                messages.append(MessageSeen(key, last_time, source, program.stream, queue_id, None, value))
            elif kind == _SIZE:  # qmgr from=<sender>, size=...
                if program.daemon not in SENDER_DAEMONS:
                    continue
                entry = queued.get((program.instance, queue_id)) or self._entry(program.instance, queue_id)
                if entry.sender == sender:
                    continue  # qmgr logs the sender again at every retry
                entry.sender = sender
                key = _sha256(('postfix\x1f' + match[0][1:]).encode()).hexdigest()[:32]
                messages.append(MessageSeen(key, last_time, source, program.stream, queue_id, sender, None))
            else:  # from=<sender>, status=expired
                line = match[0][1:]
                out.add(self._expiry(program, queue_id, sender, line, last_time, source), line)
        return counted, newlines

    # --- line kinds -------------------------------------------------------------------------------------------------

    def _message_id(
        self, program: _Program, queue_id: str, value: str, line: str, stamp: str, source: str, lineno: int
    ) -> list[MessageSeen]:
        entry = self._entry(program.instance, queue_id)
        if entry.message_id == value:
            return []
        entry.message_id = value
        key = _line_key(line)
        time = self._time(stamp, source, lineno)
        return [MessageSeen(key, time, source, program.stream, queue_id, None, value)]

    def _delivery(
        self,
        program: _Program,
        queue_id: str,
        text: str,
        line: str,
        stamp: str,
        source: str,
        lineno: int,
        raw: bytes | None,
    ) -> list[Record]:
        end = _address_end(text, 4, '>, ')
        if end < 0:
            raise EventError(
                'truncated', f'{source}:{lineno}: delivery line without the end of its recipient: {text[:200]!r}'
            )
        recipient = text[4:end].lower()
        fields = end + 3
        if text.startswith('orig_to=<', fields):  # the address before virtual aliasing
            original_end = _address_end(text, fields + 9, '>, ')
            if original_end < 0:
                raise EventError('truncated', f'{source}:{lineno}: delivery line cut in its orig_to: {text[:200]!r}')
            fields = original_end + 3
        marker = text.find(', status=', fields)
        if marker < 0:
            raise EventError('truncated', f'{source}:{lineno}: delivery line without status=: {text[:200]!r}')
        status_text = text[marker + 9 :]
        space = status_text.find(' ')
        word = status_text if space < 0 else status_text[:space]
        if word in IGNORED_STATUSES:
            return []
        status = STATUSES.get(word)
        if status is None:
            if space < 0:
                raise EventError('truncated', f'{source}:{lineno}: delivery line cut in its status: {text[-200:]!r}')
            raise EventError('unknown-status', f'{source}:{lineno}: unknown delivery status {word[:40]!r}')
        if space < 0 or status_text[space + 1 : space + 2] != '(':
            raise EventError('truncated', f'{source}:{lineno}: delivery line cut in its status text: {text[-200:]!r}')
        if status_text.endswith(')'):
            diagnostic = status_text[space + 2 : -1]
        elif _cut_by_postfix(f'{queue_id}: {text}', raw):  # a long reply: Postfix logged its first part
            diagnostic = status_text[space + 2 :]
        else:
            raise EventError('truncated', f'{source}:{lineno}: delivery line cut in its status text: {text[-200:]!r}')
        relay, delay, dsn = _delivery_fields(text[fields:marker], source, lineno)
        time = self._time(stamp, source, lineno)
        event = self._delivery_event(
            program,
            queue_id,
            recipient,
            status,
            diagnostic,
            smtp_code_of(diagnostic),
            relay,
            delay,
            dsn,
            _line_key(line),
            time,
            source,
        )
        return [] if _forwarded(status, diagnostic) else [event]

    def _delivery_event(
        self,
        program: _Program,
        queue_id: str,
        recipient: str,
        status: Status,
        diagnostic: str,
        smtp_code: str | None,
        relay: str | None,
        delay: float | None,
        dsn: str | None,
        key: str,
        time: float,
        source: str,
    ) -> Event:
        # _matched has an inline copy of this for the usual lines: change both (the parse_lines = parse_line tests).
        isp = program.isp
        if isp is None and self._isp_of is not None:
            isp = self._isp_of(recipient.rpartition('@')[2])
        entry = self._queued.get((program.instance, queue_id))
        # Positional (a third of the keyword call's cost): key, kind, status, time, recipient, source, stream,
        # queue_id, sending_ip, sender, isp, smtp_code, dsn, diagnostic, relay, delay, message_id.
        event = Event(
            key,
            'delivery',
            status,
            time,
            recipient,
            source,
            program.stream,
            queue_id,
            program.sending_ip,
            entry.sender if entry else None,
            isp,
            smtp_code,
            dsn,
            diagnostic,
            relay,
            delay,
            entry.message_id if entry else None,
        )
        if status == 'deferred':
            entry = entry or self._entry(program.instance, queue_id)
            if entry.deferred is None:
                entry.deferred = {}
            entry.deferred[recipient] = event
        elif entry is not None and entry.deferred:
            entry.deferred.pop(recipient, None)
        return event

    def _from(
        self,
        program: _Program,
        queue_id: str,
        text: str,
        line: str,
        stamp: str,
        source: str,
        lineno: int,
    ) -> list[Record]:
        end = _address_end(text, 6, '>')
        if end < 0:
            raise EventError(
                'truncated', f'{source}:{lineno}: from= line without the end of its sender: {text[:200]!r}'
            )
        return self._sender(program, queue_id, text[6:end], text[end + 1 :], line, stamp, source, lineno)

    def _sender(
        self,
        program: _Program,
        queue_id: str,
        sender: str,
        rest: str,
        line: str,
        stamp: str,
        source: str,
        lineno: int,
    ) -> list[Record]:
        """A qmgr ``from=<sender>`` line (``rest``: what follows the ``>``)."""
        time = self._time(stamp, source, lineno)
        if rest.startswith((', status=expired', ', status=force-expired')):  # the latter: postsuper -e
            return self._expiry(program, queue_id, sender, line, time, source)
        if program.daemon not in SENDER_DAEMONS or not rest.startswith(', size='):
            return []
        entry = self._entry(program.instance, queue_id)
        if entry.sender == sender:
            return []  # qmgr logs the sender again at every retry
        entry.sender = sender
        key = _line_key(line)
        return [MessageSeen(key, time, source, program.stream, queue_id, sender, None)]

    def _expiry(
        self, program: _Program, queue_id: str, sender: str, line: str, time: float, source: str
    ) -> list[Record]:
        """``from=<sender>, status=expired``: one event per recipient last seen deferred (else one without one)."""
        entry = self._queued.get((program.instance, queue_id))
        template = list(entry.deferred.values()) if entry and entry.deferred else []
        if entry is not None:
            entry.deferred = None
        events: list[Record] = []
        for last in template:
            events.append(
                replace(
                    last,
                    key=event_key('postfix', line, last.recipient),
                    status='expired',
                    time=time,
                    source=source,
                    sender=sender,
                    delay=None,
                )
            )
        if not events:
            events.append(
                Event(
                    key=event_key('postfix', line, ''),
                    kind='delivery',
                    status='expired',
                    time=time,
                    recipient='',
                    source=source,
                    stream=program.stream,
                    queue_id=queue_id,
                    sender=sender,
                    message_id=entry.message_id if entry else None,
                )
            )
        return events

    # --- helpers ----------------------------------------------------------------------------------------------------

    def _entry(self, instance: str, queue_id: str) -> _Queued:
        # _matched has an inline copy of this for the usual lines: change both.
        key = (instance, queue_id)
        entry = self._queued.get(key)
        if entry is None:
            if len(self._queued) >= self._max_messages:
                del self._queued[next(iter(self._queued))]  # the oldest
            entry = self._queued[key] = _Queued()
        return entry

    def _refuse_unread(self, line: str, header: tuple[str, str, str, str] | None, source: str, lineno: int) -> None:
        """A delivery line given no record is ``garbage`` when its header is unreadable (Postfix's, or a format not
        read: journalctl's ``-o cat``, ``json``, ``export``, ``short-monotonic``), has a Postfix program where the
        host goes (a template without the host), or names an RFC 5424 APP-NAME cut at its ``/`` that is no known
        instance."""
        if 'to=<' not in line or 'status=' not in line:
            return
        if header is None:
            if 'postfix' in line or _BARE_DELIVERY.search(line):
                raise EventError(
                    'garbage', f'{source}:{lineno}: unreadable log line header ({READ_FORMATS}): {line[:200]!r}'
                )
            return
        if header[1].endswith(':'):  # a program tag where the host goes (a host name never ends with ":")
            if self._program(header[1]) is not None:
                raise EventError('garbage', f'{source}:{lineno}: no host name before the program: {line[:200]!r}')
            return
        name = header[2].partition('[')[0].removesuffix(':')
        if name.endswith('/') and name.startswith('postfix-'):
            raise EventError(
                'garbage',
                f'{source}:{lineno}: RFC 5424 APP-NAME {name[:-1]!r} (cut at its "/", the daemon unknown) is not a'
                f' Postfix instance of the contract: {line[:200]!r}',
            )

    def _program(self, text: str) -> _Program | None:
        if text.endswith(']:'):  # the pid: cached without it
            bracket = text.rfind('[')
            if bracket < 0 or not text[bracket + 1 : -2].isdigit():
                return None
            text = text[:bracket] + ':'
        try:
            return self._programs[text]
        except KeyError:
            pass
        program = self._read_program(text)
        if len(self._programs) >= 10_000:
            self._programs.clear()
        self._programs[text] = program
        return program

    def _read_program(self, text: str) -> _Program | None:
        name = text[:-1]
        if name.endswith(']'):
            bracket = name.rfind('[')
            if bracket < 0 or not name[bracket + 1 : -1].isdigit():
                return None
            name = name[:bracket]
        parts = name.split('/')
        if len(parts) < 2:
            return None
        syslog_name = parts[0]
        instance = self._instances.get(syslog_name)
        keys: dict[str, str] = {}
        if instance is not None:
            stream = instance.stream
            ips = instance.sending_ips
            keys = dict(instance.transport_ips)
        elif syslog_name == 'postfix':
            stream, ips = None, ()
        elif syslog_name.startswith('postfix-') and len(syslog_name) > 8 and parts[-1]:
            # (an RFC 5424 APP-NAME cut at its "/", daemon unknown, is Postfix's only for a known instance)
            stream, ips = syslog_name[8:], ()
        else:
            return None
        sending_ip = ips[0] if len(ips) == 1 else None
        isp = None
        if len(parts) >= 3 and parts[1].startswith('out_'):
            ip_key, _, isp_name = parts[1][4:].partition('__')
            sending_ip = keys.get(ip_key) or _transport_ip(ip_key) or sending_ip
            isp = isp_name or None
        return _Program(syslog_name, stream, parts[-1], sending_ip, isp)

    def _time(self, stamp: str, source: str, lineno: int) -> float:
        cached = self._stamps.get(stamp)
        if cached is not None:
            return cached
        minute = self._minutes.get(stamp[:-3])
        if minute is not None and stamp[-3] == ':':
            seconds = stamp[-2:]
            if seconds.isascii() and seconds.isdigit() and seconds < '60':
                return minute + int(seconds)
        try:
            if stamp[:1].isdigit():
                value = self._dated(stamp)
            else:
                value = self._full(stamp) if stamp[:3] in WEEKDAYS else self._yearless(stamp)
        except (ValueError, KeyError, OverflowError):
            raise _stamp_error(stamp, source, lineno) from None
        if len(self._stamps) >= 4096:
            self._stamps.clear()
        self._stamps[stamp] = value
        return value

    def _dated(self, stamp: str) -> float:
        """A stamp with its year: RFC 3339 or ISO 8601 (``T`` or a space before the time), seconds since 1970 or
        ``YYYYMMDDhhmmss``; without an offset in ``self._tz`` (the first of a repeated hour)."""
        if UNIX_STAMP.match(stamp):
            return float(stamp)
        if COMPACT_STAMP.match(stamp):
            moment = dt.datetime.strptime(stamp, '%Y%m%d%H%M%S')
        else:
            if ':' not in stamp:  # a date alone (a line without its time) is no moment
                raise ValueError(stamp)
            moment = dt.datetime.fromisoformat(stamp)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self._tz)
        return moment.timestamp()

    def _full(self, stamp: str) -> float:
        """journalctl's short-full, ``Mon 2026-12-07 11:01:31 CET``: the weekday must be the date's, the
        abbreviation one of the host's zone at that time (which also tells which of a repeated hour)."""
        weekday, _, rest = stamp.partition(' ')
        text, space, zone_name = rest.rpartition(' ')
        if not space or ' ' not in text:
            raise ValueError(stamp)
        moment = dt.datetime.fromisoformat(text)
        if moment.tzinfo is not None or WEEKDAY_NAMES[moment.weekday()] != weekday:
            raise ValueError(stamp)
        if zone_name in ZERO_OFFSET_NAMES:
            return moment.replace(tzinfo=UTC).timestamp()
        for fold in (0, 1):
            local = moment.replace(tzinfo=self._tz, fold=fold)
            if local.tzname() == zone_name:
                # A time the clock skipped (the hour daylight saving starts) takes either name: it does not come back.
                if local.astimezone(UTC).astimezone(self._tz).replace(tzinfo=None) != moment:
                    raise ValueError(f'{moment} is no local time of the zone {self._tz}')
                return local.timestamp()
        raise ValueError(f'{zone_name} is not an abbreviation of the zone {self._tz} at {moment}')

    def _yearless(self, stamp: str) -> float:
        if self._live:  # a follower runs for months: "now" must not stay at its start
            now = time_module.time()
            if now - self._reference > REFERENCE_REFRESH:
                self._move_reference(now)
        month_name, day, clock = stamp.split(' ')
        month = MONTHS[month_name]
        hours, minutes, seconds = clock.split(':')
        whole, _, fraction = seconds.partition('.')
        if not (day.isdigit() and hours.isdigit() and minutes.isdigit() and whole.isdigit()):
            raise ValueError(stamp)
        if fraction and not fraction.isdigit():
            raise ValueError(stamp)
        parts = (int(day), int(hours), int(minutes), int(whole))
        if self._fixed_offset:  # no daylight saving: a day's midnights once, then plain arithmetic
            return self._fixed_offset_time(stamp, month, parts, whole, fraction)
        for year in (self._reference_year + 1, self._reference_year, self._reference_year - 1):
            try:
                moment = dt.datetime(year, month, *parts, tzinfo=self._tz)
            except ValueError:  # 29 February of a year without it
                continue
            value = moment.timestamp()
            if value <= self._reference + FUTURE_SLACK:
                return value + (float('0.' + fraction) if fraction else 0.0)
        raise ValueError(stamp)

    def _fixed_offset_time(
        self, stamp: str, month: int, parts: tuple[int, int, int, int], whole: str, fraction: str
    ) -> float:
        midnights = self._days.get((month, parts[0]))
        if midnights is None:
            midnights = self._midnights(month, parts[0])
            if len(self._days) >= 1000:
                self._days.clear()
            self._days[(month, parts[0])] = midnights
        if parts[1] > 23 or parts[2] > 59 or parts[3] > 59:
            raise ValueError(stamp)
        offset = parts[1] * 3600 + parts[2] * 60 + parts[3]
        limit = self._reference + FUTURE_SLACK
        same_minute = not fraction and len(whole) == 2  # whether the minute's other seconds may be read from this
        for midnight in midnights:
            value = midnight + offset
            start = value - parts[3]
            if value <= limit:
                # Every second of the minute gets this year (all of it within the limit, every year tried before
                # beyond it): :meth:`_time` reads the minute's other seconds from its start.
                if same_minute and start + 59 <= limit:
                    if len(self._minutes) >= 4096:
                        self._minutes.clear()
                    self._minutes[stamp[:-3]] = start
                return value + (float('0.' + fraction) if fraction else 0.0)
            same_minute = same_minute and start > limit
        raise ValueError(stamp)

    def _move_reference(self, now: float) -> None:
        year = dt.datetime.fromtimestamp(now, self._tz).year
        if year != self._reference_year:  # midnights of the old reference's years
            self._days.clear()
        # Stamps and minutes were read against the old limit (a stamp beyond it went to the year before).
        self._stamps.clear()
        self._minutes.clear()
        self._reference, self._reference_year = now, year

    def _midnights(self, month: int, day: int) -> tuple[float, ...]:
        """The start of ``day`` of ``month`` in the years :meth:`_yearless` tries, in its order (only the years that
        have that day)."""
        found = []
        for year in (self._reference_year + 1, self._reference_year, self._reference_year - 1):
            try:
                found.append(dt.datetime(year, month, day, tzinfo=self._tz).timestamp())
            except ValueError:  # 29 February of a year without it, or no such day
                continue
        return tuple(found)
