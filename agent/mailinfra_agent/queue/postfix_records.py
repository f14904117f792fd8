"""Postfix queue files and defer logs, read the way Postfix's own ``qshape`` and ``postcat`` read them.

A queue file is a sequence of records: one type byte, the length as 7-bit groups (low group first, high bit set
while more follow), then the data (rec_type.h, record.c). A file written by cleanup(8) starts with the size record
``C`` ("content size, data offset, recipient count, ...") and the arrival time ``T``; a file postdrop(1) left in
maildrop has no size record: it starts with ``T`` (Postfix 3.x; qshape skips these) or, from older versions, with
``F`` or ``S`` and no ``T`` (its mtime is the arrival time then). Recipients still to be
delivered are ``R`` records (delivered ones were rewritten to ``D`` in place, cancelled ones are ``/``), in the
envelope and, for recipients taken from headers, in the extracted segment after the content. ``p`` records point
elsewhere in the file (``0`` is a placeholder). The content between ``M`` and ``X`` is skipped with the size record,
so only the envelope and the extracted segment are read, whatever the message size.

A defer log (``<queue_directory>/defer/<hash>/<queue id>``) holds one block of ``name=value`` lines per deferred
recipient (``recipient=``, ``status=4.7.28``, ``reason=<free text>``), blocks separated by an empty line. Only the
status is kept, never the free text.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

__all__ = ['Envelope', 'MalformedQueueFile', 'domain_of', 'read_defer_statuses', 'read_envelope']

_WINDOW = 2048
_MAX_RECORD = 1 << 21  # qshape's limit: three 7-bit length groups
_MAX_RECORDS = 1_000_000  # at least; more in a larger file (a record takes 2 bytes or more): a pointer loop ends
_MAX_DEFER_LOG = 1 << 22
_REVERSE_JUMPS = 10_000  # Postfix's REVERSE_JUMP_LIMIT (global/record.c): a tight pointer loop ends at once
STATUS = re.compile(r'[245]\.\d{1,3}\.\d{1,3}')


class MalformedQueueFile(ValueError):
    """Not a complete Postfix queue file (truncated, garbage, or rewritten while it was read)."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """What a scrape needs from one queue file."""

    arrival: float
    """Arrival time (epoch seconds): the ``T`` record, or the file's mtime for a maildrop file."""
    sender: str
    recipient_domains: tuple[str, ...]
    """The domain of each recipient still to be delivered, as qshape names it (one entry per recipient)."""


def domain_of(address: str) -> str:
    """qshape's domain of an address: lower case, after the last ``@``, ``..`` squeezed, outer dots stripped;
    the null address is ``MAILER-DAEMON``."""
    if not address:
        return 'MAILER-DAEMON'
    domain = address.rpartition('@')[2].lower()
    while '..' in domain:
        domain = domain.replace('..', '.')
    return domain.strip('.') if len(domain) > 1 else domain


def _domain(data: bytes) -> str:
    """domain_of() of a recipient record's bytes, without the string round trip in the common case."""
    domain = data.rpartition(b'@')[2].lower()
    if not data or b'..' in domain or domain[:1] == b'.' or domain[-1:] == b'.' or not domain.isascii():
        return domain_of(data.decode('utf-8', 'replace'))
    return domain.decode('ascii')


def _number(data: bytes) -> int:
    try:
        return int(data.split(None, 1)[0])
    except (ValueError, IndexError):
        raise MalformedQueueFile(f'not a number: {data[:40]!r}') from None


def _time(data: bytes) -> float:
    try:
        return float(_number(data))
    except OverflowError:  # more digits than a float holds
        raise MalformedQueueFile(f'not a time: {data[:40]!r}') from None


def read_envelope(path: str, *, dir_fd: int | None = None) -> tuple[Envelope, os.stat_result]:
    """The envelope of one queue file and the stat of the file read.

    Raises FileNotFoundError when the file is gone, PermissionError when it cannot be read, MalformedQueueFile
    when it is not a complete queue file."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        st = os.fstat(fd)
        return _parse(fd, st.st_size, st.st_mtime), st
    finally:
        os.close(fd)


_CONTENT = frozenset(b'NLw')
_SKIP = frozenset(b'AOFcDodn/WVIi<Pre>KfmN')  # never T, R, S, p, M, X, E, L


def _parse(fd: int, size: int, mtime: float) -> Envelope:  # noqa: C901 (one loop, inlined for speed)
    """The record loop, inlined for speed: ``buf`` is a window of the file that starts at offset ``base``."""
    base = 0
    buf = os.pread(fd, _WINDOW, 0)
    pos = 0
    content_end: int | None = None
    sender: str | None = None
    arrival: float | None = None
    domains: list[str] = []
    first = True
    in_content = False
    previous_target = reverse_jumps = 0
    for _ in range(max(_MAX_RECORDS, size // 2 + 2)):
        # One record at pos: type byte, length in 7-bit groups, data. Refill the window when it lacks the record.
        end = len(buf)
        if pos + 5 > end and base + end < size:
            base += pos
            buf = os.pread(fd, _WINDOW, base)
            pos, end = 0, len(buf)
        if pos + 2 > end:
            raise MalformedQueueFile(f'truncated at offset {base + pos}')
        kind = buf[pos]
        byte = buf[pos + 1]
        start = pos + 2
        length = byte & 0x7F
        shift = 7
        while byte & 0x80:
            if start >= end or shift > 14:
                raise MalformedQueueFile(f'bad record length at offset {base + pos}')
            byte = buf[start]
            length |= (byte & 0x7F) << shift
            shift += 7
            start += 1
        if length > _MAX_RECORD:
            raise MalformedQueueFile(f'record length too large at offset {base + pos}')
        stop = start + length
        if stop > end:
            if base + stop > size:
                raise MalformedQueueFile(f'truncated at offset {base + pos}')
            base += pos
            buf = os.pread(fd, max(_WINDOW, stop - pos), base)
            start, stop, pos = start - pos, stop - pos, 0
            if stop > len(buf):
                raise MalformedQueueFile(f'truncated at offset {base}')
        pos = stop
        if kind in _SKIP and not first:
            continue  # attributes, original recipients, names, content lines: not needed
        data = buf[start:stop]
        if first:
            first = False
            if kind == 0x43:  # C: content size, data offset, recipient count, ...
                fields = data.split()
                if len(fields) < 3:
                    raise MalformedQueueFile('size record with fewer than three fields')
                try:
                    content_end = int(fields[1]) + int(fields[0])  # data offset + content size: the X record
                except ValueError:
                    raise MalformedQueueFile('size record is not numeric') from None
                if content_end < 0:
                    raise MalformedQueueFile('size record is negative')
            elif kind == 0x54:  # T: a maildrop file from postdrop(1) of Postfix 3.x (no size record)
                arrival = _time(data)
            elif kind == 0x53 or kind == 0x46:  # S or F: an older maildrop file, no time record
                arrival = mtime
                if kind == 0x53:
                    sender = data.decode('utf-8', 'replace')
            else:
                raise MalformedQueueFile(f'first record is {chr(kind)!r}, not a queue file')
            continue
        if arrival is None:
            if kind != 0x54:  # T
                raise MalformedQueueFile('size record not followed by the arrival time')
            arrival = _time(data)
        elif kind == 0x70:  # p: pointer, 0 is a placeholder
            target = _number(data)
            if target > 0:
                if target >= size:
                    raise MalformedQueueFile(f'pointer {target} outside the file ({size} bytes)')
                if target <= previous_target:
                    reverse_jumps += 1
                    if reverse_jumps > _REVERSE_JUMPS:
                        raise MalformedQueueFile(f'too many reverse jump records (at offset {target})')
                previous_target = target
                base, pos, buf = target, 0, os.pread(fd, _WINDOW, target)
        elif in_content:
            if kind == 0x58:  # X: the extracted segment follows
                in_content = False
            elif kind not in _CONTENT:
                raise MalformedQueueFile('content not followed by the extracted segment')
        elif kind == 0x52:  # R
            domains.append(_domain(data))
        elif kind == 0x53:  # S
            sender = data.decode('utf-8', 'replace')
        elif kind == 0x4D:  # M
            if sender is None:
                raise MalformedQueueFile('content before the sender')
            in_content = True
            if content_end is not None:  # skip the content with the size record
                if content_end >= size:
                    raise MalformedQueueFile('content size beyond the end of the file')
                if base <= content_end < base + len(buf):
                    pos = content_end - base
                else:
                    base, pos, buf = content_end, 0, os.pread(fd, _WINDOW, content_end)
        elif kind == 0x45:  # E
            if sender is None:
                raise MalformedQueueFile('no sender record')
            return Envelope(arrival, sender, tuple(domains))
    raise MalformedQueueFile('no end record')


_STATUS_LINE = re.compile(rb'^status=([^\n]*)', re.M)
_RECIPIENT_LINE = re.compile(rb'^recipient=([^\n]*)', re.M)


def read_defer_statuses(path: str) -> tuple[str, ...]:
    """The distinct enhanced status codes of one defer log, in order of first appearance; ``unknown`` for a
    recipient block without a valid ``status=``. Raises OSError (FileNotFoundError when the log is gone)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        data = os.read(fd, 65536)
        while len(data) < _MAX_DEFER_LOG and (more := os.read(fd, 1 << 20)):
            data += more  # a longer (runaway) log is grouped on what was read
    finally:
        os.close(fd)
    statuses = _STATUS_LINE.findall(data)
    recipients = _RECIPIENT_LINE.findall(data)
    if len(recipients) == len(statuses) == len(set(recipients)):
        # The common log: one block per recipient, each with its status (qmgr resets the log per attempt).
        return tuple(dict.fromkeys(_status(code) for code in statuses))
    latest: dict[str, str] = {}
    for number, block in enumerate(data.decode('utf-8', 'replace').split('\n\n')):
        recipient = f'#{number}'
        status = 'unknown'
        seen = False
        for line in block.splitlines():
            name, _, value = line.partition('=')
            if name == 'recipient':
                recipient, seen = value, True
            elif name == 'status':
                status = value if STATUS.fullmatch(value) else 'unknown'
                seen = True
        if seen:
            latest[recipient] = status  # the last block of a recipient is its latest deferral
    return tuple(dict.fromkeys(latest.values()))


def _status(code: bytes) -> str:
    text = code.decode('ascii', 'replace')
    return text if STATUS.fullmatch(text) else 'unknown'
