"""The ingest service: build the sources from the contract, read them until done (``--once``) or forever.

Also the pipe input: one message on standard input, as Postfix's pipe(8) transport delivers it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import hashlib
import logging
import os
import signal
import stat
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from ..contract import DEFAULT_ISP, Contract
from ..feedback.arf import NoRecipient
from ..feedback.classify import Classifier
from ..feedback.events import Event, EventError
from ..files import replace_file
from ..store import connect
from . import PIPE_KEEP_DIRECTORY
from .keys import signing_keys
from .sources import LogSource, MaildirSource, problem
from .store import CONFIRM_WAIT, Backoff, Batch, Postponed, StoreUnavailable, Writer

log = logging.getLogger(__name__)

POLL = 1.0
"""Seconds between looks at the sources when following and nothing was new."""
GC_GROWTH = 200_000
"""While ingest runs, the cyclic garbage collector runs once this many more objects it tracks are alive than after
its last run (see :func:`run`)."""


@dataclass(frozen=True)
class Inputs:
    """What to read: log files (path, format ``postfix`` or ``powermta-acct``) and Maildirs."""

    logs: tuple[tuple[str, str], ...]
    maildirs: tuple[str, ...] = ()


def contract_inputs(contract: Contract) -> Inputs:
    """The log files and Maildirs the contract names (``Contract.logs``, ``Contract.feedback_maildirs``)."""
    return Inputs(tuple((entry.path, entry.format) for entry in contract.logs), tuple(contract.feedback_maildirs))


def decoders(contract: Contract, keys: tuple[bytes, ...]) -> Any:
    """Decoders for our VERP return paths, unsubscribe tokens and X-Mailinfra-Id headers (none without keys)."""
    from ..feedback import tokens, verp
    from ..feedback.message import Decoders

    if not keys:
        return Decoders()
    return Decoders(
        verp=verp.decoder(keys),
        token=tokens.token_decoder(keys, contract.unsubscribe.token_max_age),
        ident=lambda value: tokens.read_id(value, keys),
    )


def classifier(contract: Contract) -> Classifier:
    return Classifier(contract.bounce_rules.rules, contract.bounce_rules.max_text)


def isp_domains(contract: Contract) -> dict[str, str]:
    """Recipient domain -> ISP profile name (the default profile matches by MX only, so it is left out)."""
    return {domain: isp.name for isp in contract.isps if isp.name != DEFAULT_ISP for domain in isp.recipient_domains}


def postfix_parser(contract: Contract) -> Any:
    """The Postfix log parser for every Postfix instance of the host (one parser reads any of their lines)."""
    from ..feedback.postfix_log import Instance, IspMatcher, PostfixLogParser, local_zone

    instances = []
    names = {
        (entry.syslog_name or entry.instance, entry.stream) for entry in contract.logs if entry.format == 'postfix'
    }
    names.add(('postfix', None))
    names.update((stream.instance, stream.name) for stream in contract.streams)
    for syslog_name, stream in sorted(names, key=lambda item: (item[0], item[1] or '')):
        own = [ip for ip in contract.ips if ip.stream == stream and ip.stream and ip.address]
        ips = tuple(ip.address for ip in own if ip.address)
        transport_ips = tuple((ip.id.removeprefix(f'{ip.pool}_'), ip.address) for ip in own if ip.address)
        instances.append(Instance(syslog_name=syslog_name, stream=stream, sending_ips=ips, transport_ips=transport_ips))
    # Postfix writes its yearless stamps in the host's local time.
    return PostfixLogParser(instances, isp_of=IspMatcher(isp_domains(contract)), tz=local_zone())


def powermta_parser(contract: Contract) -> Any:
    from ..feedback.postfix_log import IspMatcher
    from ..feedback.powermta_acct import PowermtaAcctParser

    streams = {ip.id: ip.stream for ip in contract.ips if ip.stream}
    return PowermtaAcctParser(isp_of=IspMatcher(isp_domains(contract)), vmta_streams=streams)


def message_parser(
    contract: Contract, keys: tuple[bytes, ...]
) -> tuple[Callable[[bytes, str, float, str | None], list[Event]], int]:
    """The DSN/ARF/unsubscribe message parser with our decoders, and the largest message it reads."""
    from ..feedback.message import MAX_MESSAGE_BYTES, parse_message

    bound = decoders(contract, keys)

    def parse(data: bytes, source: str, received: float, envelope_recipient: str | None = None) -> list[Event]:
        return parse_message(data, source, envelope_recipient, decoders=bound, received=received)

    return parse, MAX_MESSAGE_BYTES


def build_sources(
    contract: Contract, inputs: Inputs, batch_lines: int, keys: tuple[bytes, ...] = ()
) -> list[LogSource | MaildirSource]:
    sources: list[LogSource | MaildirSource] = []
    for path, kind in inputs.logs:
        if kind == 'powermta-acct':
            sources.append(LogSource(Path(path), 'powermta-acct', lambda: powermta_parser(contract), True, batch_lines))
        else:
            sources.append(LogSource(Path(path), 'postfix-log', lambda: postfix_parser(contract), False, batch_lines))
    if inputs.maildirs:
        parse, max_bytes = message_parser(contract, keys)
        logs = [source for source in sources if isinstance(source, LogSource)]
        for path in inputs.maildirs:
            maildir = MaildirSource(Path(path), lambda data, src, rec: parse(data, src, rec, None), max_bytes)
            maildir.logs_at_end = lambda: all(source.at_end for source in logs)
            sources.append(maildir)
    return sources


def make_writer(contract: Contract, backoff: Backoff, keys: tuple[bytes, ...] = ()) -> Writer:
    return Writer(lambda: connect(contract.store), contract.host.name, classifier(contract), backoff, keys=keys)


class Stop:
    """Set by SIGTERM/SIGINT: finish the batch being stored, then leave."""

    def __init__(self) -> None:
        self.requested = False

    def install(self) -> None:
        def handler(signum: int, frame: FrameType | None) -> None:
            del signum, frame
            self.requested = True

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)


def run(
    writer: Writer,
    sources: Sequence[LogSource | MaildirSource],
    *,
    follow: bool,
    poll: float = POLL,
    stop: Stop | None = None,
) -> None:
    """Read every source in turn, one batch each, until none has anything new (then return, or poll when following).

    Raises StoreUnavailable when the store stays away longer than the writer's back-off allows.

    The cyclic garbage collector is paused meanwhile: reading makes millions of acyclic objects that reference
    counting frees, and the collections their numbers trigger would walk the parser's state and the batches waiting
    for a group again and again (the 1,000,000-line feedback benchmark: 0.5 s of CPU, 1.6 s with groups). It runs
    after a round once :data:`GC_GROWTH` more tracked objects are alive than after its last run, so cycles are still
    collected.
    """
    stop = stop or Stop()
    writer.relax()  # logs and Maildirs are read again after a commit a power loss undid
    enabled = gc.isenabled()
    gc.disable()
    try:
        while not stop.requested:
            worked = False
            for source in sources:
                if stop.requested:
                    break
                worked = source.step(writer) or worked
            if gc.get_count()[0] > GC_GROWTH:
                gc.collect()
            if not worked:
                writer.flush()  # caught up: store what waits for a group now
                if not follow:
                    return
                time.sleep(poll)
        writer.flush()
    except BaseException as error:
        if not isinstance(error, StoreUnavailable):
            # What the other sources read before this one failed is stored (their files moved on): a source that
            # fails at every start must not keep the others from ever storing anything.
            try:
                writer.flush()
            except Exception as flush_error:  # the first error is the one raised
                log.warning('store: what waited for a group was not stored: %s', flush_error)
        raise
    finally:
        if enabled:
            gc.enable()
        for source in sources:
            if isinstance(source, LogSource):
                source.follower.close()


class KeepError(Exception):
    """A message the parser failed on could not be kept (the pipe then answers EX_TEMPFAIL)."""


def _sync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def keep_message(directory: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``directory/new/`` (a Maildir, 0700, of the caller; the file 0600) and return its path.

    The name is the message's SHA-256: Postfix delivering the same message again (after a 75) keeps one file.
    Raises KeepError when the directory is not ours or cannot be written.
    """
    root = Path(directory)
    created = False
    try:
        for path in (root, root / 'new', root / 'cur', root / 'tmp'):
            with contextlib.suppress(FileExistsError):
                path.mkdir(mode=0o700)
                created = True
            status = path.lstat()
            if not stat.S_ISDIR(status.st_mode) or status.st_uid != os.geteuid():
                raise KeepError(f'cannot keep the message in {root}: {path} is not a directory of user {os.geteuid()}')
            if status.st_mode & 0o077:
                path.chmod(0o700)
        name = f'pipe-{hashlib.sha256(data).hexdigest()}'
        staged, target = root / 'tmp' / name, root / 'new' / name
        replace_file(staged, data, mode=0o600)  # written and synced in tmp/, then moved: the Maildir way
        os.rename(staged, target)
        _sync_directory(root / 'new')
        if created:  # a new Maildir's own entries reach the disk too
            _sync_directory(root)
            _sync_directory(root.parent)
    except OSError as error:
        raise KeepError(f'cannot keep the message in {root}: {error}') from None
    return target


def ingest_message(
    writer: Writer,
    data: bytes,
    parse: Callable[[bytes, str, float, str | None], list[Event]],
    envelope_recipient: str | None,
    keep_directory: str | os.PathLike[str] = PIPE_KEEP_DIRECTORY,
) -> None:
    """Store the events of one piped message; a message no parser reads is counted (and not bounced).

    Should the parser itself fail (a defect of ours), the message is kept in ``keep_directory`` and counted as
    ``parser-error``: a retry would fail the same way until Postfix gives up, and its DSN (null sender) is lost.
    Raises StoreUnavailable when the store cannot take it, KeepError when the message cannot be kept (Postfix then
    retries the delivery); MemoryError is raised as well (not the message's fault). Raises :class:`Postponed` for a
    DSN or complaint whose recipients wait for their deliveries (a log behind): within :data:`~.store.CONFIRM_WAIT`
    after its arrival (the date of its top Received header, our Postfix's; none: decided at once), Postfix retries it.
    """
    batch = Batch()
    received = time.time()
    location = f'pipe:{envelope_recipient or "-"}'
    try:
        batch.events = parse(data, 'pipe', received, envelope_recipient)
    except NoRecipient as error:
        batch.unresolved.append((error, location))
        arrival = _arrival(data, received)
        batch.arrival = received if arrival is None else arrival
        if arrival is not None:
            # Postfix retries a deferred delivery for its queue lifetime (5 days by default): far longer.
            batch.confirm_until = arrival + CONFIRM_WAIT
    except EventError as error:
        batch.problems.append(problem('pipe', error.reason, location, str(error)))
    except MemoryError:
        raise
    except Exception as error:  # a defect of ours, not the message's: kept, counted, acknowledged
        log.error('%s: the parser failed', location, exc_info=True)
        kept = keep_message(keep_directory, data)
        reason = f'{type(error).__name__}: {error}; kept as {kept}'
        batch.problems.append(problem('pipe', 'parser-error', location, reason))
    writer.write(batch)
    if batch.postponed:
        raise Postponed(f'{location}: the delivery to a recipient the DSN or complaint names is not stored yet')


FUTURE_ARRIVAL = 300
"""A top Received date more than this many seconds after now is unusable (a wrong clock): the DSN is decided at
once, never held for a date that does not come."""


def _arrival(data: bytes, now: float) -> float | None:
    """The date of the message's top Received header (added by our Postfix on arrival); None when it has none or
    one more than :data:`FUTURE_ARRIVAL` after ``now``."""
    from email.parser import BytesHeaderParser
    from email.utils import parsedate_to_datetime

    try:
        received = BytesHeaderParser().parsebytes(data[: 256 * 1024]).get_all('Received') or []
        if not received:
            return None
        moment = parsedate_to_datetime(str(received[0]).rpartition(';')[2].strip())
        if moment.tzinfo is None:  # '-0000' or no zone: UTC (RFC 5322 §3.3), not this host's local time
            moment = moment.replace(tzinfo=dt.UTC)
        arrival = moment.timestamp()
    except (ValueError, TypeError, IndexError, OverflowError):
        return None
    return None if arrival > now + FUTURE_ARRIVAL else arrival


__all__ = [
    'PIPE_KEEP_DIRECTORY',
    'Inputs',
    'KeepError',
    'Postponed',
    'Stop',
    'StoreUnavailable',
    'build_sources',
    'classifier',
    'contract_inputs',
    'ingest_message',
    'keep_message',
    'make_writer',
    'message_parser',
    'run',
    'signing_keys',
]
