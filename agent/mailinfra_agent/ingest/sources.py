"""Ingest sources: log files (Postfix, PowerMTA accounting) followed by checkpoint, and a Maildir of reports.

Each ``step`` reads one batch, parses it and hands it to the :class:`~.store.Writer` together with what
marks it done; only after the write does the source move on. A line or message a parser cannot read is
logged with its location, counted, and skipped; its neighbours are kept.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

from ..feedback.arf import NoRecipient
from ..feedback.events import Event, EventError
from ..feedback.postfix_log import ParsedLines
from ..store.events import (
    Problem,
    checkpoint,
    maildir_done,
    mark_maildir_done,
    save_checkpoint,
)
from . import BATCH_LINES
from .files import Batch as FileBatch
from .files import LogFollower
from .store import CONFIRM_WAIT, CONFIRM_WAIT_MAX, Batch, Writer

log = logging.getLogger(__name__)

RETRY_SECONDS = 60.0
"""A postponed DSN's first back-off; it doubles at every retry up to :data:`RETRY_MAX` (``ingest run --follow``)."""
RETRY_MAX = 900.0
"""The longest back-off of a postponed DSN."""


class LineParser(Protocol):
    """What a log parser offers (``PostfixLogParser``, ``PowermtaAcctParser``)."""

    def parse_line(self, line: str, source: str, lineno: int) -> list[Any]: ...


class BatchParser(LineParser, Protocol):
    """A parser that also reads a whole batch of raw lines at once (``PostfixLogParser.parse_lines``)."""

    def parse_lines(self, lines: Sequence[bytes], source: str, first: int) -> ParsedLines: ...


def _decode(raw: bytes) -> tuple[str, bool]:
    """The line as text, and whether it was valid UTF-8 (otherwise undecodable bytes are U+FFFD)."""
    try:
        return raw.decode('utf-8'), True
    except UnicodeDecodeError:
        return raw.decode('utf-8', 'replace'), False


def problem(kind: str, reason: str, location: str, message: str) -> Problem:
    log.warning('%s: %s (%s)', location, message, reason)
    return Problem(kind, reason, location)


@dataclass
class LogSource:
    """One log file: ``kind`` is ``postfix-log`` or ``powermta-acct``; ``make_parser`` gives a fresh parser.

    Parsers keep state between lines (a queue id's deferrals, the accounting file's header), so a parser that
    starts in the middle of a file — after a restart, or after a batch the store did not take — first reads
    the file's lines before the checkpoint again, without storing them.
    """

    path: Path
    kind: str
    make_parser: Callable[[], LineParser]
    reset_per_file: bool = False
    """Call the parser's ``reset()`` when a new file starts (PowerMTA accounting: each file has its header)."""
    batch_lines: int = BATCH_LINES
    follower: LogFollower = field(init=False)
    _parser: LineParser | None = field(default=None, init=False)
    _loaded: bool = field(default=False, init=False)
    at_end: bool = field(default=False, init=False)
    """The last read found nothing new: every line of the file so far is stored."""

    def __post_init__(self) -> None:
        self.follower = LogFollower(self.path)

    @property
    def name(self) -> str:
        return str(self.path)

    def _ready_parser(self) -> LineParser:
        if self._parser is None:
            parser = self.make_parser()
            for line in self.follower.before():
                with contextlib.suppress(EventError):  # counted when it was first read
                    parser.parse_line(_decode(line.text)[0], self.name, line.number)
            self._parser = parser
        return self._parser

    def step(self, writer: Writer) -> bool:
        """Read, parse and store one batch; False when there was nothing new."""
        if not self._loaded:
            self.follower.checkpoint = writer.call(lambda db: checkpoint(db, writer.host, self.name))
            self._loaded = True
        try:
            parser = self._ready_parser()
            read = self.follower.read(self.batch_lines)
            # at its end: nothing new, or a short batch of the current file (a log that never goes quiet still
            # reaches its end between two writes)
            self.at_end = read is None or (len(read.texts) < self.batch_lines and not read.rotated)
            if read is None:
                return False
            batch = self._parse(parser, read)
            point = read.checkpoint
            batch.done = lambda db, now: save_checkpoint(db, writer.host, self.name, point, now)
            writer.write(batch)
        except BaseException:
            # Not stored: read again from the checkpoint, with a parser that has not seen these lines.
            self.follower.rewind()
            self._parser = None
            raise
        self.follower.commit(read)
        return True

    def _parse(self, parser: LineParser, read: FileBatch) -> Batch:
        batch = Batch()
        name = self.name
        for number in read.oversized:
            batch.problems.append(problem(self.kind, 'oversized', f'{self.path}:{number}', 'line longer than 64 KiB'))
        if hasattr(parser, 'parse_lines') and not self.reset_per_file:
            return self._parse_lines(cast(BatchParser, parser), read, batch)
        parse_line = parser.parse_line
        events, messages = batch.events, batch.messages
        for line in read.lines:
            try:
                text = line.text.decode('utf-8')
            except UnicodeDecodeError:
                text = line.text.decode('utf-8', 'replace')
                where = f'{self.path}:{line.number}'
                batch.problems.append(problem(self.kind, 'encoding', where, 'not UTF-8; read with replacements'))
            if line.number == 1 and self.reset_per_file:
                reset = getattr(parser, 'reset', None)
                if callable(reset):
                    reset()
            try:
                results = parse_line(text, name, line.number)
            except EventError as error:
                where = f'{self.path}:{line.number}'
                message = str(error).removeprefix(f'{name}:{line.number}: ')  # the parser's message names it too
                batch.problems.append(problem(self.kind, error.reason, where, message))
                continue
            for result in results:
                if isinstance(result, Event):
                    if result.status == 'expired' and not result.recipient:
                        batch.expiries.append((result, text.rstrip('\r\n')))
                    else:
                        events.append(result)
                elif getattr(result, 'queue_id', None):
                    messages.append(result)  # a MessageSeen
        return batch

    def _parse_lines(self, parser: BatchParser, read: FileBatch, batch: Batch) -> Batch:
        """:meth:`_parse` with one call of the parser for the whole batch (the same events, records and problems)."""
        name = self.name
        parsed = parser.parse_lines(read.texts, name, read.first)
        batch.events, batch.expiries = parsed.events, parsed.expiries
        batch.messages = list(parsed.messages)
        for number, error in parsed.problems:
            where = f'{self.path}:{number}'
            if error is None:
                batch.problems.append(problem(self.kind, 'encoding', where, 'not UTF-8; read with replacements'))
            else:
                message = str(error).removeprefix(f'{name}:{number}: ')  # the parser's message names it too
                batch.problems.append(problem(self.kind, error.reason, where, message))
        return batch


MessageParser = Callable[[bytes, str, float], list[Event]]
"""(message bytes, source, received time) -> events; raises EventError."""


@dataclass
class MaildirSource:
    """A Maildir of DSNs and complaints: each message is stored once (its name in ``ingest_maildir``), then
    moved from ``new/`` to ``cur/`` with the seen flag."""

    path: Path
    parse: MessageParser
    max_bytes: int
    kind: str = 'maildir'
    _stored: set[str] = field(default_factory=set, init=False)
    """Names known to be stored: not asked of the store again."""
    logs_at_end: Callable[[], bool] = lambda: True
    """Whether every log source of this run has reached the end of its file (so the store holds every delivery
    logged so far)."""
    _waiting: dict[str, tuple[float, float, bool]] = field(default_factory=dict, init=False)
    """Postponed names -> (next offer, back-off, whether the logs were at their end then); monotonic time."""

    @property
    def name(self) -> str:
        return f'maildir:{self.path}'

    def _pending(self) -> list[tuple[str, Path]]:
        entries: list[tuple[str, Path]] = []
        for sub in ('new', 'cur'):
            try:
                names = sorted(os.listdir(self.path / sub))
            except FileNotFoundError:
                continue
            entries.extend(
                (name.split(':', 1)[0], self.path / sub / name) for name in names if not name.startswith('.')
            )
        return entries

    def step(self, writer: Writer) -> bool:
        """Store every message not stored yet; False when there was none.

        A DSN whose recipients wait for their deliveries stays where it is: until :data:`~.store.CONFIRM_WAIT`
        after its arrival (the file's time) and, past that, until every log has reached its end (after an outage the
        deliveries of the DSNs that came meanwhile are still being read). It is offered again after its own back-off
        (:data:`RETRY_SECONDS` doubling up to :data:`RETRY_MAX`), or at once when the logs have reached their end
        since its last offer."""
        entries = self._pending()
        asked = [base for base, _ in entries if base not in self._stored]
        if asked:
            self._stored |= writer.call(lambda db: maildir_done(db, writer.host, self.name, asked))
        now = time.monotonic()
        at_end = self.logs_at_end()
        written: list[tuple[str, Path, Batch]] = []
        seen: list[Path] = []
        for base, path in entries:
            if base in self._stored:
                if path.parent.name == 'new':
                    seen.append(path)
                continue
            waiting = self._waiting.get(base)
            if waiting is not None and now < waiting[0] and (waiting[2] or not at_end):
                continue
            batch = self._store(writer, base, path, at_end)
            if batch is not None:
                written.append((base, path, batch))
        if written or seen:
            writer.flush()  # a message waiting for a group: moved to cur/ (seen) only once its row is committed
        worked = False
        for base, path, batch in written:
            if batch.postponed:
                delay = min(self._waiting[base][1] * 2, RETRY_MAX) if base in self._waiting else RETRY_SECONDS
                self._waiting[base] = (now + delay, delay, at_end)
                continue
            self._waiting.pop(base, None)
            self._stored.add(base)
            worked = True
            if path.parent.name == 'new':
                seen.append(path)
        for path in seen:
            _mark_seen(path)
        return worked

    def _store(self, writer: Writer, base: str, path: Path, logs_at_end: bool) -> Batch | None:
        """Store one message (or postpone it: see :meth:`step`); None when it was gone before it could be read."""
        location = f'maildir:{path.parent.name}/{path.name}'
        batch = Batch()
        try:
            with open(path, 'rb') as handle:
                data = handle.read(self.max_bytes + 1)
                received = os.fstat(handle.fileno()).st_mtime
        except FileNotFoundError:
            return None  # moved meanwhile (by another process, or a mail client): it is read where it went
        try:
            batch.events = self.parse(data, f'maildir:{base}', received)
        except NoRecipient as error:
            batch.unresolved.append((_bare(error), location))
            batch.arrival = received
            batch.confirm_until = received + (CONFIRM_WAIT if logs_at_end else CONFIRM_WAIT_MAX)
        except EventError as error:
            batch.problems.append(problem(self.kind, error.reason, location, str(error)))
        except MemoryError:
            raise  # not the message's fault: read again at the next start
        except Exception as error:  # a defect of ours, not the message's: counted, and the other messages go on
            log.error('%s: the parser failed', location, exc_info=True)
            batch.problems.append(problem(self.kind, 'parser-error', location, f'{type(error).__name__}: {error}'))
        name = self.name
        batch.done = lambda db, now: mark_maildir_done(db, writer.host, name, base, now)
        writer.write(batch)
        return batch


def _bare(error: NoRecipient) -> NoRecipient:
    """The complaint without its traceback and context: they hold the parsing frames (the message, the batch) in a
    cycle, and ``ingest run`` pauses the cyclic collector while the batch waits for its group."""
    error.__traceback__ = error.__context__ = error.__cause__ = None
    return error


def _mark_seen(path: Path) -> None:
    """new/NAME -> cur/NAME:2,S (Maildir: moved to cur, flagged seen)."""
    target = path.parent.parent / 'cur' / f'{path.name.split(":", 1)[0]}:2,S'
    try:
        path.rename(target)
    except FileNotFoundError:
        pass
    except OSError as error:
        log.warning('%s: cannot move to cur/: %s', path, error)
