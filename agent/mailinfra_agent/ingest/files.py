"""Follow a log file by checkpoint: whole lines only, across renames, compression and copytruncate.

A checkpoint names a file by its identity — device, inode and a hash of its first line — and the byte
position after the last line stored. When the path no longer holds that file (``postfix logrotate``
renamed it, perhaps compressing it; logrotate's copytruncate copied and emptied it), the follower looks
for the old file beside it (``<name>.*``: same first line, same inode or a copy), reads it to the end from
the checkpoint, then starts the new file at 0. A line without its newline yet is left for the next read.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from ..store.events import Checkpoint

log = logging.getLogger(__name__)

MAX_LINE = 64 * 1024
"""Longer lines are skipped and reported (``oversized``): no log line of Postfix or PowerMTA comes near it."""
FIRST_LINE_BYTES = 4096
"""Bytes of the first line that identify a file."""


def first_line_hash(head: bytes) -> str:
    """Identity of a file from its first bytes: hash of the first line, '' while that line is incomplete."""
    end = head.find(b'\n')
    if end < 0:
        if len(head) < FIRST_LINE_BYTES:
            return ''
        end = FIRST_LINE_BYTES
    return hashlib.sha256(head[: min(end, FIRST_LINE_BYTES)]).hexdigest()[:32]


def _open(path: Path) -> BinaryIO:
    if path.name.endswith('.gz'):
        return gzip.open(path, 'rb')  # type: ignore[return-value]
    return open(path, 'rb')  # kept open by the follower


def _head(stream: BinaryIO) -> bytes:
    position = stream.tell()
    stream.seek(0)
    head = stream.read(FIRST_LINE_BYTES)
    stream.seek(position)
    return head


@dataclass(slots=True)
class Line:
    number: int
    text: bytes
    """Without the newline."""


@dataclass
class Batch:
    texts: list[bytes]
    """The lines read, without their newline, numbered from ``first``; an oversized line is ``b''`` here."""
    first: int
    """The number of ``texts[0]``."""
    oversized: list[int]
    """Numbers of lines longer than MAX_LINE that were skipped."""
    checkpoint: Checkpoint
    """Where the follower stands after these lines."""
    rotated: bool = False
    """The batch ended a rotated file: the next one starts the path's new file."""

    @property
    def lines(self) -> list[Line]:
        """The lines with their numbers, oversized ones left out."""
        skipped = set(self.oversized)
        numbers = range(self.first, self.first + len(self.texts))
        return [Line(number, text) for number, text in zip(numbers, self.texts, strict=True) if number not in skipped]


@dataclass
class _Open:
    path: Path
    stream: BinaryIO
    checkpoint: Checkpoint
    rotated: bool
    """This is the old file of a rotation: at its end, switch to the path's current file."""


@dataclass
class LogFollower:
    """Reads one log path from a checkpoint; ``read`` returns the next whole lines and where that leaves it."""

    path: Path
    checkpoint: Checkpoint | None = None
    _current: _Open | None = field(default=None, repr=False)
    _warned: Checkpoint | None = field(default=None, repr=False)

    def close(self) -> None:
        if self._current is not None:
            self._current.stream.close()
            self._current = None

    def read(self, max_lines: int) -> Batch | None:
        """The next lines (at most ``max_lines``), or None when there is nothing new."""
        for _ in range(3):  # an ended rotated file, then the new file
            current = self._current or self._resolve()
            if current is None:
                return None
            self._current = current
            batch = self._read_lines(current, max_lines)
            if batch.texts or batch.checkpoint != self.checkpoint:
                return batch
            # At the end: a rotated file is done, the path's file may have been replaced meanwhile.
            self.close()
            if current.rotated:
                fresh = self._open_path_at_start()
                if fresh is None:
                    return None
                self._current = fresh
                return Batch([], fresh.checkpoint.line + 1, [], fresh.checkpoint, rotated=True)
            if not self._replaced(current):
                return None
        return None

    def before(self) -> Iterator[Line]:
        """The lines of the checkpoint's file before the checkpoint (to rebuild a parser's state after a restart)."""
        current = self._current or self._resolve()
        if current is None:
            return
        self._current = current
        end = current.checkpoint.position
        with _open(current.path) as stream:
            position, number = 0, 0
            while position < end:
                raw = stream.readline(MAX_LINE + 1)
                if not raw:
                    return
                if not raw.endswith(b'\n') and len(raw) > MAX_LINE:
                    rest = _skip_line(stream)
                    if rest < 0:
                        return
                    position += len(raw) + rest
                    number += 1
                    continue
                position += len(raw)
                number += 1
                yield Line(number, raw.rstrip(b'\n'))

    def commit(self, batch: Batch) -> None:
        """The batch is stored: continue after it."""
        self.checkpoint = batch.checkpoint

    def rewind(self) -> None:
        """The batch was not stored: read it again from the checkpoint."""
        self.close()

    def _replaced(self, current: _Open) -> bool:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return False
        same = (stat.st_dev, stat.st_ino) == (current.checkpoint.device, current.checkpoint.inode)
        return not same or stat.st_size < current.checkpoint.position

    def _open_path_at_start(self) -> _Open | None:
        try:
            stream = _open(self.path)
        except FileNotFoundError:
            return None
        stat = os.fstat(stream.fileno())
        point = Checkpoint(stat.st_dev, stat.st_ino, first_line_hash(_head(stream)), 0, 0)
        return _Open(self.path, stream, point, rotated=False)

    def _resolve(self) -> _Open | None:
        """Open the file the checkpoint names (the path, or its rotated predecessor), positioned after it."""
        point = self.checkpoint
        if point is None:
            return self._open_path_at_start()
        try:
            stream: BinaryIO | None = _open(self.path)
        except FileNotFoundError:
            stream = None
        if stream is not None:
            stat = os.fstat(stream.fileno())
            same = (stat.st_dev, stat.st_ino) == (point.device, point.inode)
            head = first_line_hash(_head(stream))
            if same and stat.st_size >= point.position and point.first_line and head == point.first_line:
                stream.seek(point.position)
                return _Open(self.path, stream, point, rotated=False)
            if same and point.position == 0 and not point.first_line:
                return _Open(self.path, stream, Checkpoint(point.device, point.inode, head, 0, 0), rotated=False)
            stream.close()
        old = self._find_rotated(point)
        if old is not None:
            log.info('%s: finishing the rotated file %s from byte %d', self.path, old.path, point.position)
            return old
        if point.position > 0 and self._warned != point:
            self._warned = point  # once per checkpoint, not at every poll
            log.warning(
                '%s: the file read up to byte %d is gone (rotated away and not found beside it); '
                'continuing with the current file',
                self.path,
                point.position,
            )
        return self._open_path_at_start()

    def _find_rotated(self, point: Checkpoint) -> _Open | None:
        """The checkpoint's file beside the path: the same inode (renamed), or the same first line (copied/gzipped)."""
        if not point.first_line:
            return None
        try:
            prefixes = (self.path.name + '.', self.path.name + '-')
            siblings = [p for p in self.path.parent.iterdir() if p.name.startswith(prefixes)]
        except OSError:
            return None
        # Same inode first, then the most recently changed.
        siblings.sort(key=lambda p: (not _same_inode(p, point), -_mtime(p)))
        for candidate in siblings:
            try:
                stream = _open(candidate)
                head = first_line_hash(_head(stream))
            except (OSError, EOFError, gzip.BadGzipFile):
                continue
            if head != point.first_line:
                stream.close()
                continue
            try:
                _skip(stream, point.position)
            except (OSError, EOFError, gzip.BadGzipFile):
                stream.close()
                continue
            stat = os.fstat(stream.fileno()) if not candidate.name.endswith('.gz') else candidate.stat()
            moved = Checkpoint(stat.st_dev, stat.st_ino, point.first_line, point.position, point.line)
            return _Open(candidate, stream, moved, rotated=True)
        return None

    def _read_lines(self, current: _Open, max_lines: int) -> Batch:
        point = current.checkpoint
        position, number = point.position, point.line
        head = point.first_line
        lines: list[bytes] = []
        oversized: list[int] = []
        stream = current.stream
        stream.seek(position)
        if isinstance(stream, io.BufferedReader):
            position, number = _read_block(stream, position, number, max_lines, lines, oversized)
        readline, append = stream.readline, lines.append
        while len(lines) < max_lines:
            raw = readline(MAX_LINE + 1)
            if raw[-1:] != b'\n':
                if len(raw) <= MAX_LINE:
                    break  # incomplete last line: wait for the rest
                rest = _skip_line(stream)
                if rest < 0:
                    break  # the oversized line has no end yet
                number += 1
                position += len(raw) + rest
                oversized.append(number)
                append(b'')
                continue
            number += 1
            position += len(raw)
            append(raw[:-1])
        if not head and position > 0:
            head = first_line_hash(_head(stream))
        current.checkpoint = Checkpoint(point.device, point.inode, head, position, number)
        return Batch(lines, point.line + 1, oversized, current.checkpoint)


BLOCK = 1 << 20
"""Bytes read at once by :func:`_read_block`."""


def _read_block(
    stream: io.BufferedReader, position: int, number: int, max_lines: int, lines: list[bytes], oversized: list[int]
) -> tuple[int, int]:
    """Whole lines of a plain file read a block at a time (one ``read`` and one ``split`` instead of a ``readline``
    per line), as the ``readline`` loop reads them; stops before a line whose end is not in the block, leaving it
    (and anything past ``max_lines``) to that loop. Returns the position and number after the last line taken."""
    while len(lines) < max_lines:
        block = stream.read(BLOCK)
        if not block:
            break
        parts = block.split(b'\n')
        parts.pop()  # after the last newline: an incomplete line, or b''
        room = max_lines - len(lines)
        if len(parts) > room:
            del parts[room:]
        position += sum(map(len, parts)) + len(parts)
        if parts and max(map(len, parts)) > MAX_LINE:  # rare: a test per line only then
            for index, part in enumerate(parts):
                if len(part) > MAX_LINE:
                    oversized.append(number + 1 + index)
                    parts[index] = b''
        lines += parts
        number += len(parts)
        stream.seek(position)  # back to the start of what was not taken
        if not parts:
            break  # no whole line in the block: a long line, for the readline loop
    return position, number


def _skip_line(stream: BinaryIO) -> int:
    """Consume the rest of a line: its length with the newline, or -1 if it has no end yet."""
    total = 0
    while True:
        chunk = stream.readline(MAX_LINE)
        total += len(chunk)
        if chunk.endswith(b'\n'):
            return total
        if not chunk:
            return -1


def _skip(stream: BinaryIO, count: int) -> None:
    if isinstance(stream, io.BufferedReader | io.FileIO):
        stream.seek(count)
        return
    remaining = count
    while remaining > 0:
        chunk = stream.read(min(remaining, 1 << 20))
        if not chunk:
            raise EOFError('shorter than the checkpoint')
        remaining -= len(chunk)


def _same_inode(path: Path, point: Checkpoint) -> bool:
    try:
        stat = path.stat()
    except OSError:
        return False
    return (stat.st_dev, stat.st_ino) == (point.device, point.inode)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
