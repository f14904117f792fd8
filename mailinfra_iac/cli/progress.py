"""Progress on a terminal: one line on stderr, redrawn in place, only when stderr is a TTY.

Nothing is written when stderr is a file or a pipe, or when the command prints JSON, so logs and
machine-read output never carry progress lines.
"""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType
from typing import TextIO

_INTERVAL = 0.2
"""Seconds between redraws."""


class Progress:
    """``label: done/total (percent) elapsed`` on one stderr line, or a ticking ``label… elapsed`` without a total.

    Use as a context manager; the line is erased on exit, so what is printed afterwards starts clean.
    """

    def __init__(self, label: str, total: int | None = None, *, enabled: bool = True, stream: TextIO | None = None):
        self.stream = sys.stderr if stream is None else stream
        isatty = getattr(self.stream, 'isatty', None)
        self.enabled = enabled and callable(isatty) and bool(isatty())
        self.label = label
        self.total = total
        self.done = 0
        self._started = time.monotonic()
        self._drawn = 0.0
        self._width = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def __enter__(self) -> Progress:
        if self.enabled:
            self._draw(force=True)
            self._ticker = threading.Thread(target=self._tick, name='progress', daemon=True)
            self._ticker.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def phase(self, label: str, total: int | None = None) -> None:
        """Start a new phase on the same line (``total`` None: elapsed time only)."""
        with self._lock:
            self.label, self.total, self.done = label, total, 0
        self._draw(force=True)

    def update(self, done: int, total: int | None = None) -> None:
        """Set how much is done (and the total, if it changed)."""
        with self._lock:
            self.done = done
            if total is not None:
                self.total = total
        self._draw()

    def advance(self, step: int = 1) -> None:
        self.update(self.done + step)

    def clear(self) -> None:
        """Erase the line (say, before printing to stdout); the next redraw shows it again."""
        with self._lock:
            if self.enabled and self._width:
                self.stream.write('\r' + ' ' * self._width + '\r')
                self.stream.flush()
                self._width = 0

    def echo(self, line: str) -> None:
        """Print ``line`` to stdout without mixing it into the progress line."""
        with self._lock:
            if self.enabled and self._width:
                self.stream.write('\r' + ' ' * self._width + '\r')
                self.stream.flush()
                self._width = 0
            print(line, flush=True)

    def close(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None
        self.clear()

    def text(self) -> str:
        elapsed = time.monotonic() - self._started
        if self.total:
            percent = 100 * self.done // self.total
            return f'{self.label}: {self.done:,}/{self.total:,} ({percent}%) {elapsed:.0f}s'
        return f'{self.label}... {elapsed:.0f}s'

    def _tick(self) -> None:
        while not self._stop.wait(_INTERVAL):
            self._draw(force=True)

    def _draw(self, *, force: bool = False) -> None:
        if not self.enabled or self._stop.is_set():
            return
        now = time.monotonic()
        if not force and now - self._drawn < _INTERVAL and self.done != self.total:
            return
        with self._lock:
            self._drawn = now
            line = self.text()
            padding = ' ' * max(0, self._width - len(line))
            self.stream.write('\r' + line + padding)
            self.stream.flush()
            self._width = len(line)
