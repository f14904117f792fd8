"""The bounce MX's check at RCPT TO: a VERP return path of ours that does not verify is refused there.

The primary Postfix instance of an inbound host asks this policy service (SMTPD_POLICY_README) through spawn(8),
one process per policy connection of an smtpd process (kept up to 300 s idle, 1000 s in all):
``mailinfra-agent ingest return-path-policy DOMAIN=PREFIXSEPARATOR ...`` reads the requests on standard input and
answers on standard output (spawn connects standard error to the socket too, so nothing else may be written there).

A recipient in one of the DOMAINs whose local part starts (in any letter case) with a stream's VERP prefix and
separator must decode and verify with the contract's signing keys (:func:`mailinfra_agent.feedback.verp.decode`).
One of the wrong shape (malformed, truncated) gets ``550 5.1.1``: no message of ours left with that return path.
A bad signature gets ``450 4.7.1``: forged, or this MX has a wrong key (a rotation's old key dropped too early),
so the client MTA retries for days and a fixed key recovers the DSN. A payload version this agent does not know
(applications upgraded first) gets ``DUNNO``: ingest keeps it. Refused at RCPT, any bounce is the client MTA's to
make, never ours (backscatter to a forged sender). Every other recipient gets ``DUNNO``: postmaster, abuse,
feedback-loop and ``mailto:`` unsubscribe addresses are the operator's choice, and ingest counts what is not a
report (never bounced). Without usable keys every answer is ``DUNNO`` too: the MX keeps taking mail, ingest
counts a forged one as ``bad-verp``. The listener's ``default_action=DUNNO`` does the same when this command
cannot run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import BinaryIO

from ..feedback.verp import VerpError, decode
from ..policy_protocol import LineReader, read_request

__all__ = ['answer', 'parse_return_path', 'serve_stream']

_RETURN_PATH = re.compile(r'^([a-z0-9.-]+)=([a-z0-9]{1,8})([-+=])$')

ReturnPaths = Mapping[str, Sequence[tuple[str, str]]]
"""Return-path domain -> the (prefix, separator) of every stream whose VERP return paths use it."""


def parse_return_path(value: str) -> tuple[str, str, str]:
    """Domain, prefix and separator of a ``DOMAIN=PREFIXSEPARATOR`` argument (``rp.example.com=b-``); ValueError."""
    match = _RETURN_PATH.match(value.lower())
    if match is None:
        raise ValueError(f'"{value}": expected DOMAIN=PREFIXSEPARATOR, for example rp.example.com=b-')
    domain, prefix, separator = match.groups()
    return domain.rstrip('.'), prefix, separator


def answer(attributes: Mapping[str, str], return_paths: ReturnPaths, keys: Sequence[bytes]) -> str:
    """The action for one policy request."""
    if attributes.get('request') != 'smtpd_access_policy' or attributes.get('protocol_state') != 'RCPT':
        return 'DUNNO'
    recipient = attributes.get('recipient', '')
    local, at, domain = recipient.rpartition('@')
    if not at or not keys:
        return 'DUNNO'
    lowered = local.lower()
    for prefix, separator in return_paths.get(domain.lower().rstrip('.'), ()):
        if lowered.startswith(prefix + separator):
            try:
                decode(recipient, keys, prefix=prefix, separator=separator)
            except VerpError as error:
                return _refusal(error.reason)
            return 'DUNNO'
    return 'DUNNO'


def _refusal(reason: str) -> str:
    if reason == 'unsupported-version':  # a newer agent's payload (applications upgraded first): ingest keeps it
        return 'DUNNO'
    if reason == 'bad-signature':  # or a wrong key on this MX: the client retries, a fixed key recovers the DSN
        return '450 4.7.1 return path not verified (bad-signature)'
    reason = 'malformed' if reason == 'not-verp' else reason
    return f'550 5.1.1 not a return path of ours ({reason})'


def serve_stream(rfile: LineReader, wfile: BinaryIO, return_paths: ReturnPaths, keys: Sequence[bytes]) -> None:
    """Answer requests until the client closes the connection (or sends one too large)."""
    while (attributes := read_request(rfile)) is not None:
        wfile.write(f'action={answer(attributes, return_paths, keys)}\n\n'.encode())
        wfile.flush()
