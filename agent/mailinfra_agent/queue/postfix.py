"""Postfix queues of every instance of the host, read from the queue directories at scrape time.

One collector for all the instances (the primary ``postfix`` and each stream's ``postfix-<stream>``, from the
contract). Per instance it reports the five queue counts, the age of the oldest message per queue, the deferred
messages per destination ISP (the contract's ``isps`` recognition domains, ``other`` for the rest), the top recipient
domains of everything queued (plus ``other``) and the deferral reasons of the deferred messages by enhanced status
code (from the defer logs; ``unknown`` without one, never the free text).

**Why the queue directories and not ``postqueue -j``.** Measured on the same 100,000-message deferred queue
(benchmarks/queue/README.md): ``postqueue -j`` took about 3.5 s on every call, because showq(8) opens and reads every
queue file each time and nothing can be cached across calls; its output has no status code (only the free text of
the delay reason), and it answers only while the instance runs (not during a stop or a failed reload). Reading the
directories costs more once (the first, cold scrape parses every file: a few seconds at 100,000 messages, about what
qshape takes), then a warm scrape skips what did not change, in tens of milliseconds:

- a queue file is parsed once per version, keyed by queue id + inode and checked against mtime, ctime and size (qmgr
  sets the mtime of a deferred file to its next retry time; a rename or an in-place edit changes the ctime);
- files in ``deferred`` and ``hold`` are never edited where they lie: qmgr moves a message to ``active`` before it
  edits it or its defer log (qmgr_message.c resets the defer log there), so a hash directory of those queues whose
  mtime is unchanged holds the same files with the same content, and is not even listed again. A directory is only
  trusted once its mtime is 2 s older than our listing of it (timestamps are coarse: a change in the same tick as the
  listing would otherwise be missed);
- a directory that changed is listed again: one stat per file, and only new or changed files are read; its figures
  are the previous ones minus the files gone or changed plus the files new or changed;
- ``maildrop``, ``incoming`` and ``active`` are listed and stat()ed on every scrape (files change in place there;
  these queues are short by design).

Only the envelope and the extracted segment of a file are read (postfix_records.py); the content is skipped.

**Privilege.** The queue directories are mode 0700, owner ``postfix``; the exporter runs as ``mailinfra``. It needs
``CAP_DAC_READ_SEARCH`` (systemd: ``AmbientCapabilities=CAP_DAC_READ_SEARCH`` with
``CapabilityBoundingSet=CAP_DAC_READ_SEARCH``): read and search permission checks are bypassed, nothing can be written.
Without it every instance is reported as not collectable (``up`` false, ``unreadable`` errors). ``postconf`` needs no
privilege.

**Damaged files.** Files Postfix found damaged and moved to ``corrupt/`` are counted per instance: nothing delivers
them or lists them again (``postqueue -j`` does not show them) until an operator looks at them (``postcat``).

**Bad input.** A file that vanishes between the listing and the read (``vanished``), a truncated or malformed file
(``malformed``), an unreadable file or directory (``unreadable``) or an instance whose ``queue_directory`` cannot be
found (``queue_directory``) is counted in ``StreamQueue.errors`` of that scrape (a malformed file again at every
scrape while it stays); the rest of the scrape goes on. Files still being written (owner execute bit not yet set,
as showq checks: Postfix's mail_open_ok) are not counted.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from mailinfra_agent.contract.schema import DEFAULT_ISP, Contract, Isp
from mailinfra_agent.queue.base import QUEUE_NAMES, StreamQueue
from mailinfra_agent.queue.postfix_records import (
    Envelope,
    MalformedQueueFile,
    domain_of,
    read_defer_statuses,
    read_envelope,
)

__all__ = [
    'OTHER',
    'PRIMARY_INSTANCE',
    'PRIMARY_STREAM',
    'InstanceScan',
    'PostfixInstance',
    'PostfixQueueCollector',
    'instances_from_contract',
    'queue_hash',
]

PRIMARY_INSTANCE = 'postfix'
PRIMARY_STREAM = 'primary'
"""The ``stream`` label of the primary instance (inbound mail, bounces; it carries no stream of the spec)."""
OTHER = 'other'
TOP_DOMAINS = 10
STABLE_QUEUES = frozenset({'deferred', 'hold'})
RACY_NS = 2_000_000_000
QUEUE_ID = re.compile(r'[A-Za-z0-9]{6,}')
HASH_DIR = re.compile(r'[0-9A-Za-z_]')  # '_': dir_forest's padding past the end of a short hash key


@dataclass(frozen=True)
class PostfixInstance:
    name: str
    """``postfix`` or ``postfix-<stream>`` (the contract's ``Stream.instance``)."""
    stream: str
    config_directory: str


def instances_from_contract(contract: Contract, config_root: str = '/etc') -> list[PostfixInstance]:
    """The Postfix instances of a host: the primary and one per stream (``/etc/<instance>``, as the postfix role
    installs them); none on a host that does not run Postfix."""
    if contract.host.mta != 'postfix':
        return []
    found = [PostfixInstance(PRIMARY_INSTANCE, PRIMARY_STREAM, os.path.join(config_root, PRIMARY_INSTANCE))]
    for stream in contract.streams:
        if stream.instance and stream.instance != PRIMARY_INSTANCE:
            found.append(PostfixInstance(stream.instance, stream.name, os.path.join(config_root, stream.instance)))
    return found


@dataclass
class _File:
    ino: int
    mtime_ns: int
    ctime_ns: int
    size: int
    envelope: Envelope | None  # None: malformed
    domains: tuple[str, ...] = ()  # distinct recipient domains
    isps: tuple[str, ...] = ()  # distinct ISPs of those domains
    statuses: tuple[str, ...] | None = None  # deferral status codes; None until read


@dataclass
class _Partial:
    """The figures of one directory's files; a directory that did not change reuses them."""

    messages: int = 0
    malformed: int = 0
    oldest: float | None = None
    domain_messages: Counter[str] = field(default_factory=Counter)
    deferred_by_isp: Counter[str] = field(default_factory=Counter)
    deferral_reasons: Counter[str] = field(default_factory=Counter)
    deferred_recipient_domains: Counter[str] = field(default_factory=Counter)
    deferred_sender_domains: Counter[str] = field(default_factory=Counter)


@dataclass
class _Dir:
    mtime_ns: int
    listed_ns: int
    files: dict[str, _File]  # queue id -> the version counted in ``partial``
    subdirs: list[str]
    partial: _Partial


@dataclass
class _State:
    queue_directory: str | None = None
    main_cf: tuple[int, int] | None = None  # (inode, mtime_ns) of main.cf when queue_directory was read
    defer_depth: int = 1  # hash_queue_depth when hash_queue_names holds ``defer``, else 0 (a flat defer/)
    files: dict[str, _File] = field(default_factory=dict)
    dirs: dict[str, _Dir] = field(default_factory=dict)


@dataclass
class InstanceScan:
    """Everything one scrape found in one instance, before the cut to bounded labels."""

    instance: PostfixInstance
    up: bool = True
    messages: dict[str, int] = field(default_factory=lambda: dict.fromkeys(QUEUE_NAMES, 0))
    oldest_arrival: dict[str, float] = field(default_factory=dict)
    domain_messages: Counter[str] = field(default_factory=Counter)
    """All queues: messages with at least one recipient still to deliver in the domain."""
    deferred_by_isp: Counter[str] = field(default_factory=Counter)
    deferral_reasons: Counter[str] = field(default_factory=Counter)
    deferred_recipient_domains: Counter[str] = field(default_factory=Counter)
    """Deferred queue, one per recipient: what ``qshape deferred`` counts."""
    deferred_sender_domains: Counter[str] = field(default_factory=Counter)
    """Deferred queue, one per message: what ``qshape -s deferred`` counts."""
    errors: Counter[str] = field(default_factory=Counter)
    corrupt: int | None = None
    """Files in ``corrupt/`` (None: not readable)."""

    def add(self, queue: str, partial: _Partial) -> None:
        self.messages[queue] += partial.messages
        if partial.malformed:
            self.errors['malformed'] += partial.malformed
        if partial.oldest is not None and partial.oldest < self.oldest_arrival.get(queue, partial.oldest + 1):
            self.oldest_arrival[queue] = partial.oldest
        self.domain_messages.update(partial.domain_messages)
        self.deferred_by_isp.update(partial.deferred_by_isp)
        self.deferral_reasons.update(partial.deferral_reasons)
        self.deferred_recipient_domains.update(partial.deferred_recipient_domains)
        self.deferred_sender_domains.update(partial.deferred_sender_domains)


class PostfixQueueCollector:
    """The queue collector for every Postfix instance of the host (see the module docstring)."""

    name = 'postfix'

    def __init__(
        self,
        instances: Sequence[PostfixInstance],
        isps: Iterable[Isp] = (),
        *,
        top_domains: int = TOP_DOMAINS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.instances = tuple(instances)
        self.top_domains = top_domains
        self._clock = clock
        self._isp_of_domain = {
            domain.lower().strip('.'): isp.name
            for isp in isps
            if isp.name != DEFAULT_ISP
            for domain in isp.recipient_domains
        }
        self._isp_cache: dict[str, str] = {}
        self._states: dict[str, _State] = {instance.name: _State() for instance in self.instances}

    @classmethod
    def from_contract(cls, contract: Contract, config_root: str = '/etc') -> PostfixQueueCollector:
        return cls(instances_from_contract(contract, config_root), contract.isps)

    def collect(self) -> list[StreamQueue]:
        return [self._stream_queue(self.scan(instance)) for instance in self.instances]

    # --- one instance ---------------------------------------------------------------------------------------------

    def scan(self, instance: PostfixInstance) -> InstanceScan:
        """Scan one instance's queues (incrementally, from the previous scan's cache)."""
        state = self._states.setdefault(instance.name, _State())
        result = InstanceScan(instance)
        queue_directory = self._queue_directory(instance, state)
        if queue_directory is None or not os.path.isdir(queue_directory):
            state.queue_directory = None  # ask postconf again next time
            result.up = False
            result.errors['queue_directory'] += 1
            return result
        seen: set[str] = set()
        readable = False
        for queue in QUEUE_NAMES:
            for partial in self._walk(state, queue_directory, queue, result, seen):
                readable = True
                result.add(queue, partial)
        if not readable:
            result.up = False  # not one queue directory could be read: no privilege, or not a queue directory
        else:
            result.corrupt = _corrupt_files(queue_directory, result)
        if len(seen) != len(state.files):
            for stale in set(state.files) - seen:
                del state.files[stale]
        return result

    def _queue_directory(self, instance: PostfixInstance, state: _State) -> str | None:
        """``queue_directory`` of the instance (``$name`` expanded, as Postfix does) and how ``defer/`` is hashed, from
        postconf; asked again when main.cf changes."""
        try:
            st = os.stat(os.path.join(instance.config_directory, 'main.cf'))
            main_cf = (st.st_ino, st.st_mtime_ns)
        except OSError:
            main_cf = None
        if state.queue_directory is not None and main_cf == state.main_cf:
            return state.queue_directory
        try:
            done = subprocess.run(
                ['postconf', '-c', instance.config_directory, '-hx', *_PARAMETERS],
                capture_output=True,
                text=True,
                check=False,
                timeout=10,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        lines = done.stdout.splitlines()
        value = lines[0].strip() if lines else ''
        if done.returncode != 0 or len(lines) != len(_PARAMETERS) or not value.startswith('/'):
            return None
        state.defer_depth = _defer_depth(lines[1], lines[2])
        if (state.queue_directory, state.main_cf) != (value, main_cf):
            state.dirs.clear()
        state.queue_directory, state.main_cf = value, main_cf
        return value

    def _walk(self, state: _State, root: str, queue: str, result: InstanceScan, seen: set[str]) -> Iterable[_Partial]:
        """The figures of each directory of one queue (the queue and its hash subdirectories)."""
        stable = queue in STABLE_QUEUES
        pending = [queue]
        while pending:
            relative = pending.pop()
            path = f'{root}/{relative}'
            try:
                dir_st = os.stat(path)
            except FileNotFoundError:
                continue  # a queue not created yet
            except OSError:
                result.errors['unreadable'] += 1
                continue
            now_ns = time.time_ns()
            cached = state.dirs.get(path)
            if (
                stable
                and cached is not None
                and cached.mtime_ns == dir_st.st_mtime_ns
                and cached.listed_ns - cached.mtime_ns > RACY_NS
            ):
                pending += [f'{relative}/{sub}' for sub in cached.subdirs]
                seen.update(cached.files)
                yield cached.partial
                continue
            try:
                with os.scandir(path) as entries:
                    items = list(entries)
            except FileNotFoundError:
                continue
            except OSError:
                result.errors['unreadable'] += 1
                continue
            listing = self._list(state, root, queue, relative, items, result, seen, cached)
            listing.mtime_ns, listing.listed_ns = dir_st.st_mtime_ns, now_ns
            pending += [f'{relative}/{sub}' for sub in listing.subdirs]
            state.dirs[path] = listing
            yield listing.partial

    def _list(  # noqa: C901 (one pass over a directory)
        self,
        state: _State,
        root: str,
        queue: str,
        relative: str,
        items: list[os.DirEntry[str]],
        result: InstanceScan,
        seen: set[str],
        previous: _Dir | None,
    ) -> _Dir:
        """A directory listed again: its figures are the previous ones, minus the files gone or changed, plus the
        files new or changed (an unchanged file costs one stat)."""
        old = previous.files if previous is not None else {}
        listing = _Dir(0, 0, {}, [], previous.partial if previous is not None else _Partial())
        partial = listing.partial
        removed = False
        for item in items:
            try:
                if item.is_dir(follow_symlinks=False):
                    if HASH_DIR.fullmatch(item.name):
                        listing.subdirs.append(item.name)
                    continue
                if not QUEUE_ID.fullmatch(item.name):
                    continue
                st = item.stat(follow_symlinks=False)
            except FileNotFoundError:
                result.errors['vanished'] += 1
                continue
            except OSError:
                result.errors['unreadable'] += 1
                continue
            if not (st.st_mode & 0o170000 == 0o100000 and st.st_mode & 0o700 == 0o700):
                continue  # still being written, or not a queue file (the group and other bits are flags: S_IXGRP
                # marks a message for forced expiry, postsuper -e; maildrop files are 0744)
            entry = self._entry(state, item.name, item.path, st, result)
            if entry is None:
                continue
            listing.files[item.name] = entry
            seen.add(item.name)
            before = old.get(item.name)
            if before is not entry:
                if before is not None:
                    removed |= self._count(partial, before, queue, -1)
                if entry.envelope is not None and queue == 'deferred' and entry.statuses is None:
                    entry.statuses = self._statuses(state, root, item.name, relative, result)
                self._count(partial, entry, queue, 1)
        for name in old.keys() - listing.files.keys():
            removed |= self._count(partial, old[name], queue, -1)
        if removed:
            for counter in (
                partial.domain_messages,
                partial.deferred_by_isp,
                partial.deferral_reasons,
                partial.deferred_recipient_domains,
                partial.deferred_sender_domains,
            ):
                for key in [key for key, count in counter.items() if count <= 0]:
                    del counter[key]
            arrivals = [entry.envelope.arrival for entry in listing.files.values() if entry.envelope is not None]
            partial.oldest = min(arrivals, default=None)
        return listing

    def _entry(self, state: _State, queue_id: str, path: str, st: os.stat_result, result: InstanceScan) -> _File | None:
        cached = state.files.get(queue_id)
        if (
            cached is not None
            and cached.ino == st.st_ino
            and cached.mtime_ns == st.st_mtime_ns
            and cached.ctime_ns == st.st_ctime_ns
            and cached.size == st.st_size
        ):
            return cached
        try:
            envelope: Envelope | None
            envelope, st = read_envelope(path)
        except FileNotFoundError:
            result.errors['vanished'] += 1
            return None
        except MalformedQueueFile:
            envelope = None
        except OSError:
            result.errors['unreadable'] += 1
            return None
        entry = _File(st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size, envelope)
        if envelope is not None:
            entry.domains = tuple(dict.fromkeys(envelope.recipient_domains))
            entry.isps = tuple(dict.fromkeys(self._isp(domain) for domain in entry.domains))
        state.files[queue_id] = entry
        return entry

    @staticmethod
    def _count(partial: _Partial, entry: _File, queue: str, sign: int) -> bool:
        """Add (sign 1) or take away (sign -1) one file's share of a directory's figures; True when taken away."""
        partial.messages += sign
        envelope = entry.envelope
        if envelope is None:
            partial.malformed += sign
            return sign < 0
        if sign > 0 and (partial.oldest is None or envelope.arrival < partial.oldest):
            partial.oldest = envelope.arrival
        counter = partial.domain_messages  # plain item updates: Counter.update() costs an ABC check per call
        for domain in entry.domains:
            counter[domain] += sign
        if queue == 'deferred':
            counter = partial.deferral_reasons
            for status in entry.statuses or ('unknown',):
                counter[status] += sign
            counter = partial.deferred_by_isp
            for isp in entry.isps:
                counter[isp] += sign
            counter = partial.deferred_recipient_domains
            for domain in envelope.recipient_domains:
                counter[domain] += sign
            partial.deferred_sender_domains[domain_of(envelope.sender)] += sign
        return sign < 0

    def _statuses(
        self, state: _State, root: str, queue_id: str, relative: str, result: InstanceScan
    ) -> tuple[str, ...]:
        """The status codes of a deferred message's defer log: where Postfix puts it (hash_queue_names,
        hash_queue_depth), else hashed like ``deferred/`` or flat (a file not yet moved after those changed)."""
        mirrored = f'{relative.partition("/")[2]}/' if '/' in relative else ''
        candidates = [f'{root}/defer/{queue_hash(queue_id, state.defer_depth)}{queue_id}']
        for other in (f'{root}/defer/{mirrored}{queue_id}', f'{root}/defer/{queue_id}'):
            if other not in candidates:
                candidates.append(other)
        for candidate in candidates:
            try:
                return read_defer_statuses(candidate)
            except FileNotFoundError:
                continue
            except OSError:
                result.errors['unreadable'] += 1
                return ()
        return ()

    def _isp(self, domain: str) -> str:
        found = self._isp_cache.get(domain)
        if found is None:
            found = OTHER
            labels = domain.split('.')
            for start in range(len(labels)):
                isp = self._isp_of_domain.get('.'.join(labels[start:]))
                if isp is not None:
                    found = isp
                    break
            if len(self._isp_cache) > 100_000:
                self._isp_cache.clear()
            self._isp_cache[domain] = found
        return found

    # --- bounded labels -------------------------------------------------------------------------------------------

    def _stream_queue(self, scan: InstanceScan) -> StreamQueue:
        now = self._clock()
        return StreamQueue(
            stream=scan.instance.stream,
            instance=scan.instance.name,
            messages=dict(scan.messages),
            oldest_age_seconds={
                queue: max(0.0, now - scan.oldest_arrival[queue]) if queue in scan.oldest_arrival else 0.0
                for queue in QUEUE_NAMES
            },
            deferred_by_isp=dict(sorted(scan.deferred_by_isp.items())),
            recipient_domains=top(scan.domain_messages, self.top_domains),
            deferral_reasons=dict(sorted(scan.deferral_reasons.items())),
            errors=dict(sorted(scan.errors.items())),
            up=scan.up,
            corrupt=scan.corrupt,
        )


def _corrupt_files(root: str, result: InstanceScan) -> int | None:
    """The files Postfix moved to ``corrupt/`` (flat, never hashed; none when it does not exist yet)."""
    try:
        with os.scandir(f'{root}/corrupt') as entries:
            return sum(1 for entry in entries if entry.is_file(follow_symlinks=False))
    except FileNotFoundError:
        return 0
    except OSError:
        result.errors['unreadable'] += 1
        return None


_PARAMETERS = ('queue_directory', 'hash_queue_names', 'hash_queue_depth')
_SAFE_ALPHABET = '0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz'  # safe_ultostr.c


def _defer_depth(names: str, depth: str) -> int:
    if 'defer' not in re.split(r'[\s,]+', names.strip().lower()):
        return 0
    try:
        return max(1, int(depth))
    except ValueError:
        return 1


def queue_hash(queue_id: str, depth: int) -> str:
    """The hash subdirectories of a queue file, as mail_queue_dir() names them (``'C/'``, ``'C/A/'``; ``''`` at
    depth 0): the first ``depth`` characters of the queue id (``_`` past its end); for a long queue id
    (``enable_long_queue_ids``), of its microseconds as five upper-case hex digits."""
    key = queue_id
    separator = queue_id.rfind('z')
    if separator >= 10:  # MQID_LG_TIME_PAD: six or more characters of seconds, four of microseconds, then 'z'
        usec = 0
        for char in queue_id[separator - 4 : separator]:
            digit = _SAFE_ALPHABET.find(char)
            if digit < 0:
                usec = 0
                break
            usec = usec * 52 + digit
        key = f'{usec:05X}'
    return ''.join(f'{key[n] if n < len(key) else "_"}/' for n in range(depth))


def top(counts: Mapping[str, int], limit: int) -> dict[str, int]:
    """The ``limit`` largest counts (ties by name) and the sum of the rest as ``other`` (when there is a rest)."""
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    kept = dict(ranked[:limit])
    rest = sum(count for _, count in ranked[limit:])
    if rest:
        kept[OTHER] = kept.get(OTHER, 0) + rest
    return kept
