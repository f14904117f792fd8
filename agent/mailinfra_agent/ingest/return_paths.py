"""The bounce MX's check at RCPT TO: a VERP return path of ours that does not verify is refused there.

The primary Postfix instance of an inbound host asks this policy service (SMTPD_POLICY_README) through spawn(8),
one process per SMTP connection: ``mailinfra-agent ingest return-path-policy DOMAIN=PREFIXSEPARATOR ...`` reads
the requests on standard input and answers on standard output (spawn connects standard error to the socket too,
so nothing else may be written there).

A recipient in one of the DOMAINs whose local part starts (in any letter case) with a stream's VERP prefix and
separator must decode and verify with the contract's signing keys (:func:`mailinfra_agent.feedback.verp.decode`);
else the answer is ``550 5.1.1``: no message of ours left with that return path, so a DSN or report to it is
forged or mangled. Refused at RCPT, any bounce of it is the client MTA's to make, never ours (backscatter to a
forged sender). Every other recipient gets ``DUNNO``: postmaster, abuse, feedback-loop and ``mailto:``
unsubscribe addresses are the operator's choice, and ingest counts what is not a report (never bounced).
Without usable keys every answer is ``DUNNO`` too: the MX keeps taking mail, ingest counts a forged one as
``bad-verp``. The listener's ``default_action=DUNNO`` does the same when this command cannot run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import BinaryIO

from ..feedback.verp import VerpError, decode
from ..suppression.policy_service import LineReader, read_request

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
                reason = 'malformed' if error.reason == 'not-verp' else error.reason
                return f'550 5.1.1 not a return path of ours ({reason})'
            return 'DUNNO'
    return 'DUNNO'


def serve_stream(rfile: LineReader, wfile: BinaryIO, return_paths: ReturnPaths, keys: Sequence[bytes]) -> None:
    """Answer requests until the client closes the connection (or sends one too large)."""
    while (attributes := read_request(rfile)) is not None:
        wfile.write(f'action={answer(attributes, return_paths, keys)}\n\n'.encode())
        wfile.flush()
