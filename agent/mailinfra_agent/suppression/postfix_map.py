"""Each Postfix stream instance's access map of suppressed recipients, kept current without a reload.

The injection listener checks it (master.cf, braces because the value has a space):
``-o { smtpd_recipient_restrictions = check_recipient_access hash:<map> }``. A suppressed recipient is
refused at RCPT TO with ``550 5.7.1`` (Postfix words it ``<address>: Recipient address rejected: suppressed by
mailinfra (<reason>)``). 5.7.1 ("delivery not authorized, message refused", RFC 3463),
not 5.1.1: the mailbox may well exist (an unsubscribe, a complaint); it is our policy that refuses the
recipient. 550 is RFC 5321's reply for a mailbox not taken "for policy reasons".

Map type ``hash:`` (Berkeley DB), built into Debian 12's postfix package like the roles' ``hash:/etc/aliases``;
``lmdb:`` would need the separate postfix-lmdb package, and ``texthash:`` is never re-read by a running process.
The source and its ``.db`` are written as temporary files in the map's directory, ``postmap``-ed, and renamed
over the old ones (database first), so a reader sees the old table or the new one, never a half-written one.
An idle smtpd(8) notices the replaced table before it accepts the next connection and restarts on its own;
no reload (tests/agent/test_suppression_postfix.py proves it on Debian's Postfix). Nothing is written
when the content is unchanged.

Only rows that keep the address can be in the map. A deployment that keeps suppressions only as keyed hashes
(``Retention.suppressions = 'hash'``) enforces them with the policy service instead (:mod:`.policy_service`),
which hashes the recipient and asks the store; ``MapResult.hash_only`` counts the rows a map leaves out.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from .suppressions import ALL_STREAMS, Entry, address_problem

__all__ = ['MAP_TYPE', 'MapResult', 'map_text', 'write_map']

MAP_TYPE = 'hash'
REPLY = '550 5.7.1 suppressed by mailinfra ({reason})'


class MapError(Exception):
    """The map cannot be written or built; the message says why."""


@dataclass(frozen=True)
class MapResult:
    path: str
    entries: int
    changed: bool
    hash_only: int
    """Suppressions of this stream that keep only the keyed hash and therefore are not in the map."""


DOTS = ('.', '\u3002', '\uff0e', '\uff61')
"""The full stop and what UTS 46 maps to it (ideographic, fullwidth, halfwidth ideographic)."""


def _spellings(address: str) -> list[str]:
    """The keys of ``address`` in the map: smtpd looks a recipient up as received (UTF-8 in an SMTPUTF8 session),
    only casefolded and without a trailing dot, while Postfix delivers every UTS 46 spelling of the domain to the
    same A-label. So an IDNA domain (``xn--bcher-kva.de``) gets its UTF-8 form in NFC and NFD, each with every
    separator one of :data:`DOTS`. Case needs no line: postmap and smtpd casefold (``faß`` and ``fass`` alike).
    Other spellings (fullwidth letters, mixed separators) only the policy service catches."""
    local, _, domain = address.rpartition('@')
    if not any(label.startswith('xn--') for label in domain.split('.')):
        return [address]
    try:
        unicode = '.'.join(
            label[4:].encode('ascii').decode('punycode') if label.startswith('xn--') else label
            for label in domain.split('.')
        )
        unicode.encode('utf-8')  # punycode decodes to lone surrogates too (xn--ib9b): no UTF-8 line for those
    except UnicodeError:
        return [address]
    keys = [address]
    for form in dict.fromkeys(unicodedata.normalize(name, unicode) for name in ('NFC', 'NFD')):
        keys += [f'{local}@{form.replace(".", dot)}' for dot in DOTS]
    return keys


def map_text(entries: Iterable[Entry], stream: str, now: float) -> tuple[str, int, int]:
    """The map source for ``stream`` (its own and ``'*'`` suppressions, active ones; the stream's own reason
    wins), one ``address reply`` line each (and the UTF-8 spellings of an IDNA domain), sorted; the number of
    recipients (not lines), and of hash-only rows left out."""
    chosen: dict[str, Entry] = {}
    hash_only = 0
    for entry in entries:
        if entry.scope not in (stream, ALL_STREAMS) or not entry.active(now):
            continue
        if entry.address is None or address_problem(entry.address) is not None:
            hash_only += 1
            continue
        current = chosen.get(entry.address)
        if current is None or (current.scope == ALL_STREAMS and entry.scope == stream):
            chosen[entry.address] = entry
    keys = {address: chosen[address].reason for address in chosen}
    for address, reason in list(keys.items()):
        for key in _spellings(address):
            keys.setdefault(key, reason)
    lines = [f'{key} {REPLY.format(reason=keys[key])}\n' for key in sorted(keys)]
    header = f'# mailinfra-agent suppression write-maps: suppressed recipients of stream {stream}; do not edit.\n'
    return header + ''.join(lines), len(chosen), hash_only


def write_map(
    path: str, entries: Iterable[Entry], stream: str, *, now: float, postmap_config: str | None = None
) -> MapResult:
    """Write ``path`` and ``path.db`` when the content changed; ``postmap_config`` is the ``-c`` directory."""
    text, count, hash_only = map_text(entries, stream, now)
    try:
        with open(path, encoding='utf-8') as current:
            unchanged = current.read() == text and os.path.isfile(f'{path}.db')
    except FileNotFoundError:
        unchanged = False
    except OSError as error:
        raise MapError(f'{path}: cannot read: {error.strerror or error}') from None
    if unchanged:
        return MapResult(path, count, False, hash_only)
    directory = os.path.dirname(os.path.abspath(path))
    try:
        handle, temporary = tempfile.mkstemp(prefix=f'.{os.path.basename(path)}.', dir=directory)
    except OSError as error:
        raise MapError(f'{path}: cannot create a temporary file in {directory}: {error.strerror or error}') from None
    try:
        with os.fdopen(handle, 'w', encoding='utf-8') as out:
            out.write(text)
        os.chmod(temporary, 0o644)
        command = ['postmap', *(['-c', postmap_config] if postmap_config else []), f'{MAP_TYPE}:{temporary}']
        try:
            built = subprocess.run(command, capture_output=True, text=True, check=False, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise MapError(f'{path}: postmap did not run: {error}') from None
        if built.returncode != 0:
            raise MapError(f'{path}: postmap failed: {" ".join(built.stderr.split())}')
        os.chmod(f'{temporary}.db', 0o644)
        os.replace(f'{temporary}.db', f'{path}.db')
        os.replace(temporary, path)
    finally:
        for leftover in (temporary, f'{temporary}.db'):
            if os.path.exists(leftover):
                os.unlink(leftover)
    return MapResult(path, count, True, hash_only)
