"""PowerMTA accounting CSV -> :class:`~mailinfra_agent.feedback.events.Event` values.

The powermta role writes ``acct.csv`` (records ``d,b,f,rb``) and ``diag.csv`` (records ``t``), with the fields
``powermta__acct_fields`` (+ ``powermta__acct_extra_fields``) for ``d``, ``b`` and ``t`` (``type, timeLogged,
timeQueued, orig, rcpt, orcpt, dsnAction, dsnStatus, dsnDiag, dsnMta, bounceCat, srcMta, dlvSourceIp,
dlvDestinationIp, dlvSize, vmta, jobId, envId``) and PowerMTA's default fields for ``f`` and ``rb``.

Records -> events (``kind='delivery'`` unless said otherwise):

- ``d`` delivered -> ``sent``; ``t`` transient failure -> ``deferred``; ``b`` bounced and ``rb`` remote bounce (a
  DSN PowerMTA received after it had delivered) -> ``bounced``;
- ``f`` feedback loop report -> ``kind='complaint'``, ``status='complaint'``, ``feedback_type`` from
  ``feedbackType``;
- ``r``, ``tq`` and ``rs`` records carry no outcome: ignored. Another record type -> ``EventError('unknown-record')``.

Header lines name the fields: ``type,timeLogged,...`` for every record type, or ``#<type>,<field>,...`` for one
record type (the first column is the type). A file starts with its header, so call :meth:`PowermtaAcctParser.reset`
when a new file starts. Field names are matched case-insensitively, so ``vmtaPool`` and ``vmtapool`` are one.

Event fields: ``recipient`` = ``rcpt`` (lower-cased), ``sender`` = ``orig``, ``time`` = ``timeLogged``, ``delay`` =
``timeLogged - timeQueued``, ``dsn`` = the code of ``dsnStatus`` (``5.1.1 (bad destination mailbox address)`` ->
``5.1.1``), ``diagnostic`` = ``dsnDiag`` without its ``smtp;`` type, ``smtp_code`` its reply code, ``relay`` =
``dsnMta`` (else ``dlvDestinationIp``), ``sending_ip`` = ``dlvSourceIp``, ``stream`` = ``vmtaPool`` when the file
has it, else the stream of the virtual MTA ``vmta`` (``vmta_streams``: the role names one virtual MTA per
sending IP and one pool per stream), ``message_id`` = a ``header_Message-Id`` field when configured, ``isp`` =
``isp_of(recipient domain)``. PowerMTA's own ``bounceCat`` is not copied: ingest sets ``category`` with the
deployment's classifier, one classification for every MTA.

Bad rows raise :class:`EventError` with ``source:lineno``: a record before any header (``no-header``), a row with
fewer fields than its header (``truncated``) or more (``garbage``), an unreadable time or an empty recipient
(``garbage``), a line with a surrogate no bytes decode to (``encoding``). The key is ``event_key('powermta', line)``:
the same line read twice gives the same key.
Standard library only (a shared leaf).
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable, Mapping

from mailinfra_agent.feedback.events import Event, EventError, Status, event_key
from mailinfra_agent.feedback.postfix_log import DSN, smtp_code_of

__all__ = ['IGNORED_RECORDS', 'RECORDS', 'PowermtaAcctParser']

RECORDS: dict[str, Status] = {'d': 'sent', 't': 'deferred', 'b': 'bounced', 'rb': 'bounced', 'f': 'complaint'}
IGNORED_RECORDS = frozenset({'r', 'tq', 'rs'})
"""Receptions, queue-level transient records and remote status reports: no delivery outcome."""


class PowermtaAcctParser:
    """Parse one accounting file line by line; the header lines set the field names."""

    def __init__(
        self,
        *,
        isp_of: Callable[[str], str | None] | None = None,
        vmta_streams: Mapping[str, str] | None = None,
        tz: dt.tzinfo = dt.UTC,
    ) -> None:
        self._isp_of = isp_of
        self._vmta_streams = dict(vmta_streams or {})
        self._tz = tz
        self._all: list[str] | None = None
        self._by_type: dict[str, list[str]] = {}
        self._times: dict[str, float] = {}

    def reset(self) -> None:
        """Forget the header: a new file starts."""
        self._all = None
        self._by_type.clear()

    def parse_line(self, line: str, source: str, lineno: int) -> list[Event]:
        """The event of one accounting line; ``[]`` for a header, a blank line or a record without an outcome."""
        line = line.rstrip('\r\n')
        if not line.strip():
            return []
        where = f'{source}:{lineno}'
        if not line.isascii():
            try:
                line.encode('utf-8', 'surrogateescape')  # as the key is made, before the header is read
            except UnicodeEncodeError:
                raise EventError('encoding', f'{where}: a lone surrogate, not text: {line[:200]!r}') from None
        if '"' in line:
            try:
                row = next(csv.reader([line], strict=True))
            except csv.Error as error:
                raise EventError('garbage', f'{where}: unreadable CSV: {error}') from None
        else:
            row = line.split(',')  # no quoting: what csv would give, several times faster
        kind = row[0].strip()
        if kind.startswith('#') or kind.lower() == 'type':
            self._header(kind.lstrip('#'), row)
            return []
        if kind in IGNORED_RECORDS:
            return []
        status = RECORDS.get(kind)
        if status is None:
            raise EventError('unknown-record', f'{where}: unknown accounting record type {kind[:20]!r}')
        names = self._by_type.get(kind, self._all)
        if names is None:
            raise EventError('no-header', f'{where}: {kind} record before the header line that names the fields')
        if len(row) != len(names):
            reason = 'truncated' if len(row) < len(names) else 'garbage'
            raise EventError(reason, f'{where}: {len(row)} fields, the header names {len(names)}')
        record = dict(zip(names, row, strict=True))
        return [self._event(kind, status, record, line, source, where)]

    def _header(self, kind: str, row: list[str]) -> None:
        names = ['type', *(name.strip().lower() for name in row[1:])]
        if kind.lower() == 'type':
            self._all = names
            self._by_type.clear()
        else:
            self._by_type[kind] = names

    def _event(self, kind: str, status: Status, record: dict[str, str], line: str, source: str, where: str) -> Event:
        recipient = record.get('rcpt', '').strip().lower()
        if not recipient:
            raise EventError('garbage', f'{where}: {kind} record without a recipient (rcpt)')
        time = self._time(record.get('timelogged', ''), where)
        queued = record.get('timequeued', '')
        delay = max(0.0, time - self._time(queued, where)) if queued else None
        dsn: str | None = record.get('dsnstatus', '').split(' ', 1)[0]
        if not (dsn and DSN.fullmatch(dsn)):
            dsn = None
        diagnostic = record.get('dsndiag', '')
        if diagnostic[:5].lower() == 'smtp;':
            diagnostic = diagnostic[5:].lstrip()
        vmta = record.get('vmta', '')
        stream = record.get('vmtapool') or self._vmta_streams.get(vmta) or None
        isp = self._isp_of(recipient.rpartition('@')[2]) if self._isp_of is not None else None
        message_id = record.get('header_message-id', '').strip().strip('<>') or None
        return Event(
            key=event_key('powermta', line),
            kind='complaint' if kind == 'f' else 'delivery',
            status=status,
            time=time,
            recipient=recipient,
            source=source,
            stream=stream,
            sending_ip=record.get('dlvsourceip') or None,
            sender=record.get('orig'),
            isp=isp,
            smtp_code=smtp_code_of(diagnostic) if diagnostic else None,
            dsn=dsn,
            diagnostic=diagnostic or None,
            relay=record.get('dsnmta') or record.get('dlvdestinationip') or None,
            delay=delay,
            message_id=message_id,
            feedback_type=(record.get('feedbacktype') or None) if kind == 'f' else None,
        )

    def _time(self, text: str, where: str) -> float:
        cached = self._times.get(text)
        if cached is not None:
            return cached
        try:
            moment = dt.datetime.fromisoformat(text.strip())
        except ValueError:
            raise EventError('garbage', f'{where}: unreadable time {text[:40]!r}') from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self._tz)
        value = moment.timestamp()
        if len(self._times) >= 4096:
            self._times.clear()
        self._times[text] = value
        return value
