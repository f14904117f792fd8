"""The ingest side of the store: one batch per transaction, retried with back-off while the store is away.

A batch is everything one read produced — events, message records, problems — plus what marks it done
(the log checkpoint, the Maildir name). It is written in one transaction, so after a crash or an outage
the store holds all of it or none of it, and the source is read again from the last stored checkpoint.
While the store cannot be reached the batch waits in memory (one batch: reading stops, the source itself
keeps the rest) and the write is retried with exponential back-off.

Sources that are read again after a lost commit (logs, Maildirs: :meth:`Writer.relax`) let the writer group
batches: up to :data:`GROUP_BATCHES` of them, or what came within :data:`GROUP_SECONDS`, wait in memory and go
in one transaction, each with its own checkpoint, in the order they came (the store sees the same writes as with
one transaction each). The run loop flushes them as soon as a round over the sources finds nothing new, so a
follower that has caught up commits at once, unless another source is still catching up (then within about
:data:`GROUP_SECONDS` plus one of its batches). After a crash the store holds whole batches and their checkpoints,
as before; what was waiting is read again.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import TypeVar

from ..feedback.arf import NoRecipient, UnconfirmedComplaint, complaint_key
from ..feedback.classify import Classifier
from ..feedback.dsn import UnconfirmedRecipients
from ..feedback.events import Event, event_key
from ..names import ascii_domain
from ..store import Database, StoreError, migrate
from ..store.events import (
    EVENT_COLUMNS,
    MessageFields,
    Problem,
    add_problems,
    insert_events,
    messages,
    storable,
    upsert_messages,
)

log = logging.getLogger(__name__)

_event_values = attrgetter(*EVENT_COLUMNS)
_event_key = attrgetter('key')
_CATEGORY = EVENT_COLUMNS.index('category')

T = TypeVar('T')

UNCLASSIFIED = frozenset({'sent', 'complaint', 'unsubscribe'})
"""Statuses without a reply to classify."""


NOT_OURS = 'recipient-not-ours'
"""The problem counted for a DSN recipient our VERP return path does not name and the store never delivered to."""
UNATTRIBUTED = 'unattributed-complaint'
"""The problem counted for a complaint recipient only the report names (forgeable) that our data does not attribute:
no id header made for it, no stored delivery of the Message-ID or of our return path to it. Never suppressed."""

CONFIRM_WINDOW = 8 * 86400
"""How long before a DSN's arrival (our clock, not the remote MTA's) the delivery that confirms its recipient is
looked for: longer than a remote MTA's queue lifetime (Postfix: 5 days), so a late asynchronous bounce still finds
it; it bounds the scan."""
SCAN_FORMS = 2000
"""Address forms per scan: every form of a DSN's at most 1,000 blocks (A-label and Unicode), so one scan per DSN."""
CONFIRM_SKEW = 3600
"""How long after a DSN's arrival a delivery may be logged (our hosts' clocks differ by less)."""

CONFIRM_WAIT = 2 * 3600
"""How long after its arrival a DSN with unconfirmed recipients waits for their deliveries (a log behind, after an
outage or during a campaign) before they are counted as :data:`NOT_OURS` (a Maildir's, also until its run's logs
have reached their end, at most :data:`CONFIRM_WAIT_MAX`: sources.py); meanwhile nothing of it is stored."""
CONFIRM_WAIT_MAX = 24 * 3600
"""The longest a Maildir DSN waits for logs that have not reached their end (a log ingest cannot keep up with)."""

EXPIRY_WINDOW = 30 * 86400
"""How far back an expiry's deferrals are looked for (longer than any queue lifetime)."""


def expired_recipients(db: Database, expiry: Event, line: str) -> list[Event]:
    """The per-recipient events of a Postfix expiry whose deferrals the parser did not see (it read them before a
    restart or a rotation), built from the stored deliveries of the queue id as the parser builds them: one per
    recipient whose last attempt was deferred, keyed ``event_key('postfix', line, recipient)``. The expiry itself
    when there are none.
    """
    stream = 'stream IS NULL' if expiry.stream is None else 'stream = ?'
    rows = db.execute(
        f'SELECT {", ".join(EVENT_COLUMNS)} FROM feedback_events WHERE kind = ? AND {stream} AND queue_id = ? '
        'AND source = ? AND time <= ? AND time > ? ORDER BY time, key',
        (
            'delivery',
            *(() if expiry.stream is None else (expiry.stream,)),
            expiry.queue_id,
            expiry.source,
            expiry.time,
            expiry.time - EXPIRY_WINDOW,
        ),
    )
    last: dict[str, Event] = {}
    for row in rows:
        event = Event(**dict(zip(EVENT_COLUMNS, row, strict=True)))
        if event.status == 'expired':
            last.clear()  # an earlier life of the queue id ended here
        elif event.recipient:
            last[event.recipient] = event
    deferred = [event for event in last.values() if event.status == 'deferred']
    if not deferred:
        return [expiry]
    return [
        dataclasses.replace(
            event,
            key=event_key('postfix', line, event.recipient),
            status='expired',
            time=expiry.time,
            source=expiry.source,
            sender=expiry.sender,
            delay=None,
            category=None,
        )
        for event in deferred
    ]


def _agreed(values: set[str | None]) -> str | None:
    """The one value the deliveries agree on, else None."""
    return next(iter(values)) if len(values) == 1 else None


def _with_agreed(event: Event, sent: set[tuple[str | None, str | None, str | None]]) -> Event:
    """``event`` with the stream, segment and campaign its recipient's deliveries (``sent``) agree on, where it has
    none."""
    streams, segments, campaigns = (set(values) for values in zip(*sent, strict=True))
    return dataclasses.replace(
        event,
        stream=event.stream or _agreed(streams),
        segment=event.segment or _agreed(segments),
        campaign=event.campaign or _agreed(campaigns),
    )


def _u_label(address: str) -> str:
    """``address`` with an A-label domain (``xn--``) written in Unicode (punycode, checked to map back through
    :func:`ascii_domain`, the one UTS 46 mapping: ``xn--fa-hia.de`` is ``faß.de``); as it is when it has none
    or a bad one."""
    local, _, domain = address.rpartition('@')
    if 'xn--' not in domain.lower() or not domain.isascii():
        return address
    try:
        labels = [
            label[4:].encode('ascii').decode('punycode') if label.lower().startswith('xn--') else label
            for label in domain.split('.')
        ]
    except UnicodeError:
        return address
    unicode = '.'.join(labels)
    return f'{local}@{unicode}' if ascii_domain(unicode) == domain.lower() else address


def _local_part(address: str) -> str:
    """The local part of ``address``, lower-cased (the whole of it when it has no ``@``)."""
    return address.rpartition('@')[0].lower() if '@' in address else address.lower()


def _like_escape(text: str) -> str:
    """``text`` as a literal in a LIKE pattern with ``ESCAPE '!'`` (not a backslash: PostgreSQL with
    standard_conforming_strings off reads ``'\\'`` as an unterminated string)."""
    return text.replace('!', '!!').replace('%', '!%').replace('_', '!_')


def _not_ours(claims: list[Event], location: str) -> list[Problem]:
    """The problems of the claims nothing of ours confirmed (:data:`NOT_OURS` DSN recipients, :data:`UNATTRIBUTED`
    complaints), logged: a DSN's with its recipient, a complaint's without (anybody can name anyone in a report)."""
    problems: list[Problem] = []
    for claim in claims:
        if claim.kind == 'dsn':
            problems.append(Problem(batch_kind(location), NOT_OURS, location))
            log.warning(
                '%s: no delivery from %s to %s is stored: not a recipient of ours (%s)',
                location,
                claim.sender,
                claim.recipient,
                NOT_OURS,
            )
        else:
            problems.append(Problem(batch_kind(location), UNATTRIBUTED, location))
            log.warning(
                '%s: the %s report about Message-ID %s names a recipient no delivery or id header of ours matches: '
                'not suppressed (%s)',
                location,
                claim.kind,
                claim.message_id or '(none)',
                UNATTRIBUTED,
            )
    return problems


def batch_kind(location: str) -> str:
    """The kind of source of a location (``maildir:...``, ``pipe:...``)."""
    return location.split(':', 1)[0] if location.startswith(('maildir:', 'pipe:')) else 'maildir'


SOURCE_PRAGMAS = (
    # In WAL mode (store/database.py) NORMAL syncs the log at checkpoints, not at every commit. A killed
    # process loses nothing committed (the WAL is in the OS's hands); a power loss may lose the last
    # commits, but never part of one: events and the checkpoint of a batch (or the Maildir name) go or
    # stay together, and the lost input is read again. Not for the pipe: Postfix forgets what it delivered.
    'PRAGMA synchronous = NORMAL',
    # 32 MiB of page cache (the default is 2 MiB): the events table's indexes take keys in random order.
    'PRAGMA cache_size = -32768',
)
"""Settings of a SQLite connection that stores re-readable sources (logs, Maildirs): see Writer.relax()."""


GROUP_BATCHES = 5
"""Batches of re-readable sources stored in one transaction at most (fewer commits while catching up)."""
GROUP_SECONDS = 1.0
"""How long the first batch of a group waits for others at most."""


class StoreUnavailable(Exception):
    """The store stayed unreachable for longer than the ingest may wait; nothing of the batch was stored."""


class Postponed(Exception):
    """The batch waits for deliveries not stored yet (:attr:`Batch.confirm_until`); nothing of it was stored."""


@dataclass
class Batch:
    """What one read produced; ``done`` marks the source's progress in the same transaction."""

    events: list[Event] = field(default_factory=list)
    messages: list[MessageFields] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    expiries: list[tuple[Event, str]] = field(default_factory=list)
    """Postfix expiries whose deferrals the parser did not see (read before a restart), with their log line."""
    unresolved: list[tuple[NoRecipient, str]] = field(default_factory=list)
    """Complaints without a recipient (anonymised reports), with their location: resolved through the store."""
    done: Callable[[Database, int], None] | None = None
    confirm_until: float | None = None
    """Until then (Unix time) a DSN with unconfirmed recipients is not stored but :attr:`postponed`: its source
    offers it again later (None: decided at once)."""
    arrival: float | None = None
    """When the message that holds a DSN reached us (Unix time, our clock): the confirmation window's anchor
    (None: when it is written)."""
    postponed: bool = False
    """Set by the writer when the batch was not stored for that reason."""


@dataclass
class Backoff:
    initial: float = 0.5
    maximum: float = 30.0
    wait: float | None = None
    """Give up after this many seconds without a store (None: never)."""


class Writer:
    """Stores batches for one host: classifies and completes events, then one transaction per batch."""

    def __init__(
        self,
        opener: Callable[[], Database],
        host: str,
        classifier: Classifier,
        backoff: Backoff | None = None,
        *,
        keys: tuple[bytes, ...] = (),
        after_store: Callable[[Database, Sequence[Event]], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._opener = opener
        self._keys = keys
        self.host = host
        self.classifier = classifier
        self.backoff = backoff or Backoff()
        self._after_store = after_store
        self._sleep = sleep
        self._db: Database | None = None
        self._classified: dict[tuple[str | None, ...], str] = {}
        self._pragmas: tuple[str, ...] = ()
        self._group = 1
        self._pending: list[tuple[Batch, list[Event]]] = []
        self._pending_since = 0.0
        self.stored_events = 0
        self.stored_problems = 0

    def close(self) -> None:
        """Close the connection; batches still waiting (see :meth:`flush`) are dropped: their sources are read again
        from the stored checkpoints."""
        self._pending = []
        self._disconnect()

    def _disconnect(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def database(self) -> Database:
        """The open connection, connected (and migrated) on first use."""
        if self._db is None:
            db = self._opener()
            try:
                self._apply_pragmas(db)
                migrate(db)
            except StoreError:
                db.close()
                raise
            self._db = db
        return self._db

    def relax(self) -> None:
        """Use :data:`SOURCE_PRAGMAS` on a SQLite store and group batches (:data:`GROUP_BATCHES`): only for sources
        that are read again after a lost commit. The caller then calls :meth:`flush` when it has nothing more."""
        self._pragmas = SOURCE_PRAGMAS
        self._group = GROUP_BATCHES
        if self._db is not None:
            self._apply_pragmas(self._db)

    def _apply_pragmas(self, db: Database) -> None:
        if db.dialect == 'sqlite':
            for pragma in self._pragmas:
                db.execute(pragma)

    def write(self, batch: Batch) -> None:
        """Store the batch; retries while the store is unreachable, raises StoreUnavailable after ``backoff.wait``
        (then nothing of this batch is stored or waiting). After :meth:`relax` the batch may wait for others: it is
        stored by a later ``write`` or :meth:`flush`."""
        events = self._classify_all(batch.events)
        if self._group <= 1:
            stored, problems = self.call(lambda db: self._write(db, batch, events))
            self.stored_events += stored
            self.stored_problems += problems
            return
        if not self._pending:
            self._pending_since = time.monotonic()
        self._pending.append((batch, events))
        if len(self._pending) >= self._group or time.monotonic() - self._pending_since >= GROUP_SECONDS:
            try:
                self.flush()
            except BaseException:
                # Its source reads this batch again; the earlier ones (their sources moved on) keep waiting.
                self._pending.pop()
                raise

    def flush(self) -> None:
        """Store the batches waiting after :meth:`relax`, in one transaction (retried as :meth:`write` does)."""
        pending = self._pending
        if not pending:
            return
        stored, problems = self.call(lambda db: self._write_all(db, pending))
        self._pending = []
        self.stored_events += stored
        self.stored_problems += problems

    def _write_all(self, db: Database, pending: list[tuple[Batch, list[Event]]]) -> tuple[int, int]:
        stored = problems = 0
        for batch, events in pending:
            more, more_problems = self._write(db, batch, events)
            stored += more
            problems += more_problems
        return stored, problems

    def call(self, work: Callable[[Database], T]) -> T:
        """Run ``work`` in one transaction, retried with back-off while the store fails."""
        started = time.monotonic()
        delay = self.backoff.initial
        while True:
            try:
                db = self.database()
                with db.transaction():
                    return work(db)
            except StoreError as error:
                self._disconnect()
                waited = time.monotonic() - started
                if self.backoff.wait is not None and waited + delay > self.backoff.wait:
                    raise StoreUnavailable(
                        f'the store is unreachable ({error}); gave up after {waited:.0f} s'
                    ) from None
                log.warning('store: %s; retrying in %.1f s', error, delay)
                self._sleep(delay)
                delay = min(delay * 2, self.backoff.maximum)

    def _write(self, db: Database, batch: Batch, events: list[Event]) -> tuple[int, int]:
        """Store one batch in ``db``'s open transaction: the events and problems stored (expiries and complaints
        resolved here included)."""
        now = int(time.time())
        batch.postponed = False
        events = list(events)  # extended and sorted here: a retry starts again from the batch's own events
        if batch.messages:
            upsert_messages(db, self.host, batch.messages)
        for expiry, line in batch.expiries:
            events.extend(self.classify(event) for event in expired_recipients(db, expiry, line))
        events = self._complete(db, events)
        problems = list(batch.problems)
        for unresolved, location in batch.unresolved:
            if isinstance(unresolved, (UnconfirmedComplaint, UnconfirmedRecipients)):
                kept, others = self._claims(db, unresolved, batch.arrival or now)
                if others and batch.confirm_until is not None and now < batch.confirm_until:
                    batch.postponed = True  # nothing written: a message batch holds nothing else
                    return 0, 0
                events += kept
                problems += _not_ours(others, location)
                continue
            found = self._resolve(db, unresolved)
            if found is None:
                problems.append(Problem(batch_kind(location), unresolved.reason, location))
                log.warning('%s: %s (%s)', location, unresolved, unresolved.reason)
            else:
                events.append(found)
        # One order for every writer: two hosts inserting the same keys then wait for each other, not deadlock.
        events.sort(key=_event_key)
        insert_events(db, events)
        if problems:
            add_problems(db, self.host, problems, now)
        if self._after_store is not None and events:
            self._after_store(db, events)
        if batch.done is not None:
            batch.done(db, now)
        return len(events), len(problems)

    def _complete(self, db: Database, events: list[Event]) -> list[Event]:
        """Fill sender and Message-ID of delivery events from the stored message records of their queue id."""
        missing: dict[str | None, set[str]] = {}
        for event in events:
            if event.kind == 'delivery' and event.queue_id and (event.sender is None or event.message_id is None):
                missing.setdefault(event.stream, set()).add(event.queue_id)
        if not missing:
            return events
        known = {stream: messages(db, self.host, stream, ids) for stream, ids in missing.items()}
        completed: list[Event] = []
        for event in events:
            found = known.get(event.stream, {}).get(event.queue_id or '') if event.kind == 'delivery' else None
            if found is not None and (event.sender is None or event.message_id is None):
                sender, message_id = found
                event = dataclasses.replace(
                    event,
                    sender=event.sender if event.sender is not None else sender,
                    message_id=event.message_id if event.message_id is not None else message_id,
                )
            completed.append(event)
        return completed

    def _resolve(self, db: Database, complaint: NoRecipient) -> Event | None:
        """The recipient of an anonymised complaint: the one delivery of its Message-ID (the X-Mailinfra-Id header,
        checked with our keys, picks among several), with the stream, segment and campaign of its deliveries when
        they agree (else None). None when the store cannot tell."""
        event = complaint.event
        if not event.message_id:
            return None
        rows = db.execute(
            "SELECT recipient, stream, segment, campaign FROM feedback_events WHERE kind = 'delivery' "
            "AND message_id = ? AND recipient <> '' ORDER BY recipient",
            (storable(event.message_id),),  # as stored: PostgreSQL refuses a NUL (the store would seem away)
        )
        sent: dict[str, set[tuple[str | None, str | None, str | None]]] = {}
        for recipient, stream, segment, campaign in rows:
            sent.setdefault(str(recipient), set()).add((stream, segment, campaign))
        candidates = list(sent)
        if complaint.id_header and self._keys:
            from ..feedback.tokens import read_id

            try:
                ident = read_id(complaint.id_header, self._keys)
            except ValueError:
                return None
            candidates = [address for address in candidates if ident.matches(address, self._keys)]
        if len(candidates) != 1:
            return None
        (recipient,) = candidates
        event = dataclasses.replace(event, recipient=recipient, key=complaint_key(event, recipient))
        return self.classify(_with_agreed(event, sent[recipient]))

    def _claims(
        self, db: Database, unresolved: UnconfirmedComplaint | UnconfirmedRecipients, arrival: float
    ) -> tuple[list[Event], list[Event]]:
        """The claimed recipients' events our data confirms (classified), and the others."""
        if isinstance(unresolved, UnconfirmedComplaint):
            return self._attributed(db, unresolved, arrival)
        confirmed = self._confirmed(db, unresolved.events, arrival)
        kept = [self.classify(claim) for claim in unresolved.events if claim.recipient in confirmed]
        return kept, [claim for claim in unresolved.events if claim.recipient not in confirmed]

    def _attributed(
        self, db: Database, complaint: UnconfirmedComplaint, arrival: float
    ) -> tuple[list[Event], list[Event]]:
        """The claims of ``complaint`` our data attributes (classified), and the others. When its id header verifies,
        the claims it was made for, and only those; else those the store shows a delivery to: of the complaint's
        Message-ID (any time; its stream, segment and campaign fill what the report lacks, as in :meth:`_resolve`),
        or, when the return path is our verified one, from that return path (:meth:`_confirmed`); when none is,
        :meth:`_forwarded`."""
        claims = complaint.events
        if complaint.id_header and self._keys:
            from ..feedback.tokens import read_id

            try:
                ident = read_id(complaint.id_header, self._keys)
            except ValueError:
                pass  # forged or damaged: the store decides
            else:
                matching = [
                    claim
                    for claim in claims
                    if any(ident.matches(form, self._keys) for form in (claim.recipient, _u_label(claim.recipient)))
                ]
                if matching:
                    return [self.classify(claim) for claim in matching], [c for c in claims if c not in matching]
                return self._forwarded(db, complaint)
        sent: dict[str, set[tuple[str | None, str | None, str | None]]] = {}
        if complaint.event.message_id:
            forms = {
                storable(form): claim.recipient
                for claim in claims
                for form in (claim.recipient, _u_label(claim.recipient))
            }
            marks = ', '.join('?' * len(forms))
            rows = db.execute(
                "SELECT recipient, stream, segment, campaign FROM feedback_events WHERE kind = 'delivery' "
                f'AND message_id = ? AND recipient IN ({marks})',
                (storable(complaint.event.message_id), *sorted(forms)),
            )
            for recipient, stream, segment, campaign in rows:
                sent.setdefault(forms[str(recipient)], set()).add((stream, segment, campaign))
        rest = [claim for claim in claims if claim.recipient not in sent]
        by_return_path = self._confirmed(db, rest, arrival) if complaint.verified and rest else set()
        attributed: list[Event] = []
        others: list[Event] = []
        for claim in claims:
            if claim.recipient in sent:
                claim = _with_agreed(claim, sent[claim.recipient])
            elif claim.recipient not in by_return_path:
                others.append(claim)
                continue
            attributed.append(self.classify(claim))
        if not attributed:
            return self._forwarded(db, complaint)
        return attributed, others

    def _forwarded(self, db: Database, complaint: UnconfirmedComplaint) -> tuple[list[Event], list[Event]]:
        """No claim is ours: the report may name where the message was forwarded to. Its Message-ID's one delivery
        (the id header picking among several, as for an anonymised report: :meth:`_resolve`) is the complainer, with
        no claimed address kept; else every claim is left over."""
        found = self._resolve(db, complaint)
        return ([found], []) if found is not None else ([], complaint.events)

    def _confirmed(self, db: Database, claims: list[Event], arrival: float) -> set[str]:
        """The recipients among ``claims`` (the blocks of one DSN, one sender: our return path) that the store shows a
        delivery to from that return path, sent within :data:`CONFIRM_WINDOW` before the DSN's ``arrival`` (our
        clock: the remote MTA's dates are not trusted) and :data:`CONFIRM_SKEW` after: among the deliveries of the
        returned Message-ID first, then by one scan of the deliveries in that time range (through the time index; no
        index covers sender or recipient), for all claims at once (:data:`SCAN_FORMS`). Only the local part of the
        return path is compared (it is what is signed: a relay may rewrite the domain). A delivery without a sender
        takes its message record's (``feedback_messages``, one query per stream). An IDN domain matches in either
        form: the DSN parser writes an A-label, a Postfix log the domain as it was sent."""
        # Every value as the store holds it (storable): PostgreSQL refuses a NUL, which would seem an outage.
        local = storable(_local_part(claims[0].sender or ''))
        if not local:
            return set()
        wanted = {
            storable(form): claim.recipient for claim in claims for form in (claim.recipient, _u_label(claim.recipient))
        }
        bounds = (arrival - CONFIRM_WINDOW, arrival + CONFIRM_SKEW)
        select = (
            "SELECT recipient, stream, queue_id, sender FROM feedback_events WHERE kind = 'delivery' "
            'AND time >= ? AND time <= ? AND '
        )
        found: set[str] = set()
        for message_id in sorted({storable(claim.message_id) for claim in claims if claim.message_id}):
            rows = db.execute(select + 'message_id = ?', (*bounds, message_id))
            found |= self._sent_to(db, rows, local, wanted)
        missing = sorted(form for form, recipient in wanted.items() if recipient not in found)
        like = _like_escape(local) + '@%'
        for start in range(0, len(missing), SCAN_FORMS):
            chunk = missing[start : start + SCAN_FORMS]
            condition = (
                f"recipient IN ({', '.join('?' * len(chunk))}) AND (sender IS NULL OR lower(sender) LIKE ? ESCAPE '!')"
            )
            found |= self._sent_to(db, db.execute(select + condition, (*bounds, *chunk, like)), local, wanted)
        return found

    def _sent_to(self, db: Database, rows: list[tuple[object, ...]], local: str, wanted: dict[str, str]) -> set[str]:
        """The recipients (``wanted``: address form -> claimed recipient) that delivery ``rows`` (recipient, stream,
        queue id, sender) show sent from a return path with the local part ``local``."""
        found: set[str] = set()
        records: dict[str, set[str]] = {}
        for recipient, stream, queue_id, delivered_from in rows:
            claimed = wanted.get(str(recipient))
            if claimed is None or claimed in found:
                continue
            if delivered_from is None:
                if queue_id:
                    records.setdefault(str(stream or ''), set()).add(str(queue_id))
            elif _local_part(str(delivered_from)) == local:
                found.add(claimed)
        if not records:
            return found
        # The records of the sender-less deliveries: by the leading key (host: this one and every host with a log).
        hosts = sorted(
            {self.host} | {str(row[0]) for row in db.execute('SELECT DISTINCT host FROM ingest_checkpoints')}
        )
        senders: dict[tuple[str, str], set[str]] = {}
        for stream, queue_ids in sorted(records.items()):
            ids = sorted(queue_ids)
            for start in range(0, len(ids), 400):
                chunk = ids[start : start + 400]
                known = db.execute(
                    f'SELECT queue_id, sender FROM feedback_messages WHERE host IN ({", ".join("?" * len(hosts))}) '
                    f'AND stream = ? AND queue_id IN ({", ".join("?" * len(chunk))}) AND sender IS NOT NULL',
                    (*hosts, stream, *chunk),
                )
                for queue_id, sender in known:
                    senders.setdefault((stream, str(queue_id)), set()).add(_local_part(str(sender)))
        for recipient, stream, queue_id, delivered_from in rows:
            claimed = wanted.get(str(recipient))
            key = (str(stream or ''), str(queue_id))
            if claimed is not None and delivered_from is None and queue_id and local in senders.get(key, ()):
                found.add(claimed)
        return found

    def _classify_all(self, events: list[Event]) -> list[Event]:
        """:meth:`classify` over a batch's events (a new list; most events are deliveries with nothing to classify)."""
        result = list(events)
        unclassified = UNCLASSIFIED
        for index, event in enumerate(events):
            if event.status not in unclassified and event.category is None:
                result[index] = self.classify(event)
        return result

    def classify(self, event: Event) -> Event:
        """The event with its bounce category (statuses with a reply only; a category already set stays)."""
        if event.category is not None or event.status in UNCLASSIFIED:
            return event
        if not (event.diagnostic or event.dsn or event.smtp_code):
            return event
        cache_key = (event.diagnostic, event.dsn, event.smtp_code, event.isp, event.stream)
        category = self._classified.get(cache_key)
        if category is None:
            category = self.classifier.classify(
                event.diagnostic or '', status=event.dsn, code=event.smtp_code, isp=event.isp, stream=event.stream
            ).category
            if len(self._classified) > 50_000:
                self._classified.clear()
            self._classified[cache_key] = category
        values = _event_values(event)  # not dataclasses.replace: a tenth of its cost
        return Event(*values[:_CATEGORY], category, *values[_CATEGORY + 1 :])  # type: ignore[call-arg]
