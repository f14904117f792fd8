"""The shaping service: follow each Postfix stream instance's log, decide, converge the instances.

The logs are read with ingest's :class:`~mailinfra_agent.ingest.files.LogFollower` and parsed by the same
``PostfixLogParser`` ingest uses (``ingest.service.postfix_parser``); each file has its own checkpoint in
``ingest_checkpoints`` under the source name ``shaping:<path>``, advanced in the transaction that stores what
its lines caused. A checkpoint another process moved meanwhile makes this one read from there instead: two
services on one store never apply a line twice.

After each round the engine's desired actions are converged, per stream, by the actuator: when they changed
since the last successful convergence, when the actuator finds the instance changed by someone else (the role
installed its rendered files again: the actions are put back within a round), and every ``resync`` seconds
anyway. A failed convergence is logged and retried next round; the stored state stays the truth.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..contract import Contract, Stream
from ..feedback.events import Event, EventError
from ..ingest.files import LogFollower
from ..ingest.service import Stop, postfix_parser
from ..store import Database, StoreError, migrate
from ..store.events import Checkpoint, checkpoint, save_checkpoint
from .actions import Action, Actuator, ActuatorError
from .engine import Change, Engine, log_change

log = logging.getLogger('mailinfra_agent.shaping')

BATCH_LINES = 5000
"""Lines per transaction at most (a follower stores what it finds sooner)."""
POLL = 0.2
"""Seconds between looks at the logs when nothing was new: the reaction time's floor."""
RESYNC = 60.0
"""Seconds after which the instances are converged again even when nothing changed."""
SOURCE_PREFIX = 'shaping:'


def stream_logs(contract: Contract) -> list[tuple[str, str]]:
    """(path, stream) of the Postfix stream instances' logs the contract names."""
    streams = {stream.name for stream in contract.streams}
    return [
        (entry.path, entry.stream)
        for entry in contract.logs
        if entry.format == 'postfix' and entry.stream is not None and entry.stream in streams
    ]


@dataclass
class Source:
    path: Path
    stream: str
    follower: LogFollower = field(init=False)
    loaded: bool = False
    oversized: int = 0
    """Lines over 64 KiB skipped so far (the first is logged)."""

    def __post_init__(self) -> None:
        self.follower = LogFollower(self.path)

    @property
    def name(self) -> str:
        return SOURCE_PREFIX + str(self.path)


@dataclass
class Report:
    """What a round did (for ``--once`` and tests)."""

    lines: int = 0
    batches: int = 0
    """Batches read (a rotation may give one without lines)."""
    changes: list[Change] = field(default_factory=list)
    converged: list[str] = field(default_factory=list)
    problems: int = 0
    """Unreadable and oversized lines, matching lines of transports the contract does not know, failed convergences."""
    unconverged: set[str] = field(default_factory=set)
    """Streams whose last convergence failed."""


class Service:
    """The shaping service of one host."""

    def __init__(
        self,
        contract: Contract,
        open_store: Callable[[], Database],
        actuator: Actuator | None,
        *,
        engine: Engine | None = None,
        logs: Sequence[tuple[str, str]] | None = None,
        batch_lines: int = BATCH_LINES,
        resync: float = RESYNC,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.contract = contract
        self.engine = engine or Engine(contract)
        self.open_store = open_store
        self.actuator = actuator
        self.sources = [
            Source(Path(path), stream) for path, stream in (stream_logs(contract) if logs is None else logs)
        ]
        self.batch_lines = batch_lines
        self.resync = resync
        self.clock = clock
        self._streams: dict[str, Stream] = {stream.name: stream for stream in contract.streams}
        self._parser = postfix_parser(contract)
        self._db: Database | None = None
        self._converged: dict[str, tuple[tuple[object, ...], ...]] = {}
        self._converged_at: dict[str, float] = {}

    # --- store --------------------------------------------------------------------------------------------------

    def db(self) -> Database:
        if self._db is None:
            db = self.open_store()
            try:
                migrate(db)
            except StoreError:
                db.close()
                raise
            self._db = db
        return self._db

    def close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(Exception):
                self._db.close()
            self._db = None
        for source in self.sources:
            source.follower.close()

    # --- one round ----------------------------------------------------------------------------------------------

    def step(self) -> Report:
        """Read one batch of every log, expire and cap, converge. Raises StoreError when the store fails."""
        report = Report()
        db = self.db()
        self.engine.refresh_caps(db, self.clock())  # before reading: deliveries count towards today's caps
        for source in self.sources:
            self._read(db, source, report)
        now = self.clock()
        with db.transaction():
            changes = self.engine.evaluate(db, now)
        for change in changes:
            log_change(change)
        report.changes.extend(changes)
        desired = self.engine.desired(db, now)
        self._converge(desired, now, report)
        return report

    def _read(self, db: Database, source: Source, report: Report) -> None:
        follower = source.follower
        if not source.loaded:
            follower.checkpoint = checkpoint(db, self.contract.host.name, source.name)
            source.loaded = True
        batch = follower.read(self.batch_lines)
        if batch is None:
            return
        events: list[Event] = []
        for line in batch.lines:
            text = line.text.decode('utf-8', 'replace')
            try:
                records = self._parser.parse_line(text, str(source.path), line.number, line.text)
            except EventError:
                report.problems += 1  # ingest counts and reports unreadable lines
                continue
            events.extend(record for record in records if isinstance(record, Event))
        host = self.contract.host.name
        point = batch.checkpoint
        ignored = Counter(self.engine.ignored)  # put back if the batch is not stored: it is read again
        try:
            with db.transaction():
                if db.dialect == 'postgresql':  # SQLite's BEGIN IMMEDIATE already serialises the writers
                    db.execute(
                        'SELECT 1 FROM ingest_checkpoints WHERE host = ? AND source = ? FOR UPDATE', (host, source.name)
                    )
                stored = checkpoint(db, host, source.name)
                if stored != follower.checkpoint:
                    raise _Moved(stored)
                changes = self.engine.observe(db, events, self.clock())
                save_checkpoint(db, host, source.name, point, int(self.clock()))
        except _Moved as moved:
            log.info('%s: another shaping process moved the checkpoint; reading on from there', source.path)
            self.engine.ignored = ignored
            follower.rewind()
            follower.checkpoint = moved.checkpoint
            return
        except BaseException:
            self.engine.ignored = ignored
            follower.rewind()
            raise
        follower.commit(batch)
        if batch.oversized and not source.oversized:  # ingest counts them too (problem "oversized")
            log.warning(
                '%s:%d: line longer than 64 KiB skipped (logged once per file; all are counted)',
                source.path,
                batch.oversized[0],
            )
        source.oversized += len(batch.oversized)
        report.problems += self.engine.ignored.total() - ignored.total() + len(batch.oversized)
        report.lines += len(batch.lines)
        report.batches += 1
        for change in changes:
            log_change(change)
        report.changes.extend(changes)

    def _converge(self, desired: dict[str, tuple[Action, ...]], now: float, report: Report) -> None:
        if self.actuator is None:
            return
        for name, actions in desired.items():
            stream = self._streams.get(name)
            if stream is None:
                continue
            shape = tuple((a.ip, a.isp, a.kind, a.failover) for a in actions)
            due = now - self._converged_at.get(name, float('-inf')) >= self.resync or self.actuator.changed(stream)
            if self._converged.get(name) == shape and not due:
                continue
            try:
                made = list(self.actuator.converge(stream, actions))
            except ActuatorError as error:
                log.error('stream=%s converge failed: %s (retried next round)', name, error)
                self._converged.pop(name, None)
                report.problems += 1
                report.unconverged.add(name)
                continue
            self._converged[name] = shape
            self._converged_at[name] = now
            report.unconverged.discard(name)
            for item in made:
                log.info('stream=%s changed: %s', name, item)
            report.converged.extend(f'{name}: {item}' for item in made)

    # --- loop ---------------------------------------------------------------------------------------------------

    def run(self, *, follow: bool, poll: float = POLL, stop: Stop | None = None) -> Report:
        """Rounds until nothing is new (``follow`` False) or until stopped; the store may fail and come back."""
        stop = stop or Stop()
        total = Report()
        while not stop.requested:
            try:
                report = self.step()
            except StoreError as error:
                if not follow:
                    raise
                log.error('store: %s (retrying)', error)
                self.close()
                time.sleep(max(poll, 1.0))
                continue
            total.lines += report.lines
            total.changes.extend(report.changes)
            total.converged.extend(report.converged)
            total.problems += report.problems
            total.unconverged = (total.unconverged - set(self._converged)) | report.unconverged
            if report.batches == 0:
                if not follow:
                    break
                time.sleep(poll)
        return total


class _Moved(Exception):
    def __init__(self, point: Checkpoint | None) -> None:
        super().__init__('checkpoint moved')
        self.checkpoint = point
