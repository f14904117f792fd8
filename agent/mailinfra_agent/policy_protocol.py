"""Reading Postfix policy delegation requests (SMTPD_POLICY_README): ``name=value`` lines up to a blank line.

The suppression policy server and the bounce MX's return-path policy speak it; kept apart from both so that the
latter, started per smtpd connection, imports neither the store nor the suppression list.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ['MAX_REQUEST', 'LineReader', 'read_request']

MAX_REQUEST = 64 * 1024
"""A request larger than this closes the connection (Postfix requests are a few hundred bytes)."""


class LineReader(Protocol):
    def readline(self, size: int = -1, /) -> bytes: ...


def read_request(rfile: LineReader) -> dict[str, str] | None:
    """One request's attributes; None at the end of the connection or for a request of :data:`MAX_REQUEST` or more."""
    attributes: dict[str, str] = {}
    size = 0
    while True:
        line = rfile.readline(MAX_REQUEST)
        size += len(line)
        if not line or size >= MAX_REQUEST:
            return None
        text = line.decode('utf-8', 'replace').rstrip('\r\n')
        if not text:
            return attributes
        name, _, value = text.partition('=')
        attributes[name] = value
