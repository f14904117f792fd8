"""An SMTP gate in front of an MTA that cannot ask for suppressions itself (PowerMTA): it refuses suppressed
recipients at RCPT TO and relays everything else, command by command, to the MTA's loopback listener.

Each stream has its own public port (``StreamGate.port``), as with Postfix's stream instances, and the gate connects
upstream from the stream's own loopback address (``StreamGate.source``, 127.0.0.N), which the MTA maps to the stream's
pool (PowerMTA: ``<source 127.0.0.N>`` with ``default-virtual-mta STREAM``). So the port chooses the stream, and a
recipient is checked against the suppressions of the stream that will send to it.

What the gate answers itself: the greeting, EHLO (the MTA's reply, with only the extensions the gate relays:
``8BITMIME``, ``SIZE``, ``ENHANCEDSTATUSCODES``, ``SMTPUTF8``, ``DSN``), VRFY, HELP, QUIT, refused recipients and bad
input. STARTTLS, AUTH, BDAT and other commands are not offered (``502 5.5.1``). HELO, MAIL, RCPT, DATA (streamed line by
line, dot-stuffing untouched), RSET and NOOP go to the MTA and its replies come back unchanged.

Replies of the gate, the same as the Postfix listeners':

- suppressed: ``550 5.7.1 <address>: Recipient address rejected: suppressed by mailinfra (<reason>)``;
- suppression list unreadable: ``450 4.3.0 <address>: Recipient address rejected: suppression list unavailable, try
  again later`` (nothing suppressed slips through while the store is down);
- MTA unreachable: ``421 4.3.0`` and the connection closes.

Bad input (unknown commands, lines over ``MAX_COMMAND`` bytes, an unparsable RCPT TO) is answered with a 5xx,
logged without its content and counted (``Counters.bad_input``); after ``MAX_ERRORS`` in one session the gate closes it
with ``421``. The gate goes on serving the other sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import re
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..store import Database, StoreError
from .suppressions import Entry, SuppressionList, address_problem, canonical_address

__all__ = ['MAX_COMMAND', 'MAX_ERRORS', 'Counters', 'Gate', 'StreamGate', 'refusal']

MAX_COMMAND = 4096
"""Longest command line accepted (RFC 5321 allows 512 octets plus extensions' parameters)."""
MAX_LINE = MAX_COMMAND
"""Buffer limit of the client streams, so a command line is never buffered past ``MAX_COMMAND``; a longer message
line is relayed in pieces."""
MAX_REPLY = 1024 * 1024
"""Buffer limit of the upstream stream."""
MAX_SESSIONS = 200
"""Concurrent sessions of the gate (all ports) before new ones get ``421 4.7.0``."""
MAX_SESSIONS_PER_CLIENT = 20
"""Concurrent sessions from one client address before new ones get ``421 4.7.0``."""
MAX_SESSION_SECONDS = 3600.0
"""Longest session; then ``421 4.4.2`` and the connection closes."""
MAX_ERRORS = 10
"""Bad commands in one session before the gate closes it."""
CLIENT_TIMEOUT = 300.0
UPSTREAM_TIMEOUT = 600.0
EXTENSIONS = frozenset({'8BITMIME', 'SIZE', 'ENHANCEDSTATUSCODES', 'SMTPUTF8', 'DSN'})
"""EHLO extensions of the MTA that the gate passes on; the others are not offered (the gate does not relay them)."""
RELAYED = frozenset({'HELO', 'MAIL', 'RSET', 'NOOP'})
NOT_OFFERED = frozenset({'STARTTLS', 'AUTH', 'BDAT', 'ETRN', 'EXPN', 'TURN', 'ATRN', 'XCLIENT', 'XFORWARD'})
_RCPT = re.compile(r'^RCPT\s+TO:\s*(?:<([^<>]*)>|([^\s<>]+))(\s.*)?$', re.IGNORECASE | re.DOTALL)
UNAVAILABLE = 'suppression list unavailable, try again later'


@dataclass(frozen=True)
class StreamGate:
    """A stream's public injection port and the loopback address the gate relays its sessions from."""

    name: str
    port: int
    source: str
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    """Client networks allowed to inject on the port; any other client gets ``554 5.7.1`` (none: nobody)."""

    def allows(self, peer: str) -> bool:
        try:
            address = ipaddress.ip_address(peer.split('%', 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)


@dataclass
class Counters:
    """What the gate did since it started (read by tests and logged when it stops)."""

    sessions: int = 0
    relayed_recipients: int = 0
    suppressed: int = 0
    deferred: int = 0
    bad_input: int = 0
    upstream_errors: int = 0
    refused_clients: int = 0
    over_limit: int = 0
    bare_cr: int = 0


def refusal(address: str, entry: Entry | None) -> bytes:
    """The reply to a refused recipient: Postfix's text for the same access result."""
    if entry is None:
        return f'450 4.3.0 <{address}>: Recipient address rejected: {UNAVAILABLE}\r\n'.encode()
    return f'550 5.7.1 <{address}>: Recipient address rejected: suppressed by mailinfra ({entry.reason})\r\n'.encode()


class _TooLong(Exception):
    pass


class _UpstreamError(Exception):
    pass


async def _read_line(reader: asyncio.StreamReader, limit: int) -> bytes:
    """One line with its end; ``b''`` at the end of the stream; ``_TooLong`` (line discarded) past ``limit``."""
    try:
        line = await reader.readuntil(b'\n')
    except asyncio.IncompleteReadError as error:
        return error.partial
    except asyncio.LimitOverrunError as error:
        await reader.readexactly(error.consumed)
        await _discard_line(reader)
        raise _TooLong from None
    if len(line) > limit:
        raise _TooLong
    return line


async def _discard_line(reader: asyncio.StreamReader) -> None:
    while True:
        try:
            await reader.readuntil(b'\n')
            return
        except asyncio.IncompleteReadError:
            return
        except asyncio.LimitOverrunError as error:
            await reader.readexactly(error.consumed)


class _Lookups:
    """The store lookups of one session, in one thread of their own holding one store connection."""

    def __init__(self, connect: Callable[[], Database], key: bytes) -> None:
        self._connect = connect
        self._key = key
        self._db: Database | None = None
        self._used = False  # whether the executor's thread was started
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix='gate-lookup')

    def _lookup(self, address: str, stream: str) -> Entry | None:
        try:
            if self._db is None:
                self._db = self._connect()
            return SuppressionList(self._db, self._key).lookup(address, stream)
        except StoreError:
            self._close()
            raise

    def _close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            with contextlib.suppress(StoreError):
                db.close()

    async def lookup(self, address: str, stream: str) -> Entry | None:
        self._used = True
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._lookup, address, stream)

    def close(self) -> None:
        if self._used:  # no thread was started for a session without lookups
            self._executor.submit(self._close)
        self._executor.shutdown(wait=False)


class Gate:
    """The gate of a host's streams; ``start()`` binds every port, ``serve_forever()`` serves until cancelled."""

    def __init__(
        self,
        streams: list[StreamGate],
        upstream: tuple[str, int],
        connect: Callable[[], Database],
        key: bytes,
        *,
        hostname: str,
        listen_address: str = '0.0.0.0',  # the public injection ports, like PowerMTA's 0/0
        max_sessions: int = MAX_SESSIONS,
        max_sessions_per_client: int = MAX_SESSIONS_PER_CLIENT,
        max_session_seconds: float = MAX_SESSION_SECONDS,
    ) -> None:
        self.streams = streams
        self.upstream = upstream
        self.connect = connect
        self.key = key
        self.hostname = hostname
        self.listen_address = listen_address
        self.max_sessions = max_sessions
        self.max_sessions_per_client = max_sessions_per_client
        self.max_session_seconds = max_session_seconds
        self.counters = Counters()
        self.servers: list[asyncio.Server] = []
        self.active: dict[str, int] = {}
        """Open sessions per client address."""

    def log(self, message: str) -> None:
        print(f'suppression gate: {message}', file=sys.stderr, flush=True)

    async def start(self) -> None:
        for stream in self.streams:
            server = await asyncio.start_server(
                functools.partial(self._session, stream),
                self.listen_address,
                stream.port,
                limit=MAX_LINE,
                reuse_address=True,
            )
            self.servers.append(server)

    async def serve_forever(self) -> None:
        if not self.servers:
            await self.start()
        try:
            await asyncio.gather(*(server.serve_forever() for server in self.servers))
        finally:
            self.close()

    def close(self) -> None:
        for server in self.servers:
            server.close()

    def bad_input(self, stream: StreamGate, peer: str, why: str) -> None:
        self.counters.bad_input += 1
        self.log(f'{stream.name}: bad input from {peer}: {why} ({self.counters.bad_input} so far)')

    async def _session(self, stream: StreamGate, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.counters.sessions += 1
        peername = writer.get_extra_info('peername')
        peer = str(peername[0]) if isinstance(peername, tuple) else '?'
        refused = self._admission(stream, peer)
        if refused is not None:
            with contextlib.suppress(OSError):
                writer.write(refused)
                await writer.drain()
            writer.close()
            return
        self.active[peer] = self.active.get(peer, 0) + 1
        try:
            await self._serve(stream, peer, reader, writer)
        finally:
            self.active[peer] -= 1
            if not self.active[peer]:
                del self.active[peer]

    def _admission(self, stream: StreamGate, peer: str) -> bytes | None:
        """The refusal of a new session, or None: a client outside the stream's networks, or over a limit."""
        if not stream.allows(peer):
            self.counters.refused_clients += 1
            self.log(f'{stream.name}: refused client {peer}: not in the injection networks')
            return b'554 5.7.1 not allowed to inject here\r\n'
        if sum(self.active.values()) >= self.max_sessions or self.active.get(peer, 0) >= self.max_sessions_per_client:
            self.counters.over_limit += 1
            self.log(f'{stream.name}: refused client {peer}: too many sessions')
            return b'421 4.7.0 too many sessions, try again later\r\n'
        return None

    async def _serve(
        self, stream: StreamGate, peer: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        lookups = _Lookups(self.connect, self.key)
        upstream_writer: asyncio.StreamWriter | None = None
        try:
            try:
                up_reader, up_writer = await asyncio.wait_for(
                    asyncio.open_connection(*self.upstream, local_addr=(stream.source, 0), limit=MAX_REPLY),
                    UPSTREAM_TIMEOUT,
                )
                upstream_writer = up_writer
                banner, _ = await _reply(up_reader)
                if not banner.startswith(b'2'):
                    raise _UpstreamError(f'greeting {banner[:3].decode("ascii", "replace")}')
            except (OSError, TimeoutError, _UpstreamError) as error:
                self.counters.upstream_errors += 1
                self.log(f'{stream.name}: MTA at {self.upstream[0]}:{self.upstream[1]} unavailable: {error}')
                writer.write(UNREACHABLE)
                await writer.drain()
                return
            writer.write(f'220 {self.hostname} ESMTP mailinfra\r\n'.encode())
            await writer.drain()
            session = _Session(self, stream, peer, lookups, reader, writer, up_reader, up_writer)
            try:
                await asyncio.wait_for(session.run(), self.max_session_seconds)
            except TimeoutError:
                self.log(f'{stream.name}: session from {peer} over {self.max_session_seconds:g} s, closed')
                with contextlib.suppress(OSError):
                    writer.write(b'421 4.4.2 session too long, closing\r\n')
                    await writer.drain()
                return
        except (OSError, TimeoutError, _UpstreamError) as error:
            self.counters.upstream_errors += 1
            self.log(f'{stream.name}: session from {peer} ended: {error or type(error).__name__}')
            try:
                writer.write(UNREACHABLE)
                await writer.drain()
            except OSError:
                pass
        finally:
            lookups.close()
            for each in (upstream_writer, writer):
                if each is not None:
                    each.close()


UNREACHABLE = b'421 4.3.0 mail system unavailable, try again later\r\n'


async def _reply(reader: asyncio.StreamReader) -> tuple[bytes, list[bytes]]:
    """An upstream reply: (all its lines as received, the text of each line)."""
    raw, texts = b'', []
    while True:
        try:
            line = await asyncio.wait_for(_read_line(reader, MAX_COMMAND), UPSTREAM_TIMEOUT)
        except _TooLong:
            raise _UpstreamError('reply line too long') from None
        if not line.endswith(b'\n') or len(line) < 4 or not line[:3].isdigit() or line[3:4] not in b'- \r':
            raise _UpstreamError('malformed reply' if line else 'connection closed')
        raw += line
        texts.append(line[4:].rstrip(b'\r\n'))
        if line[3:4] != b'-':
            return raw, texts


@dataclass
class _Session:
    """One client session and its upstream connection."""

    gate: Gate
    stream: StreamGate
    peer: str
    lookups: _Lookups
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    up_reader: asyncio.StreamReader
    up_writer: asyncio.StreamWriter
    upstream_dropped: bool = field(default=False)
    """The upstream connection was dropped (a refused message): the session ends at the next command."""

    def bad_input(self, why: str) -> None:
        self.gate.bad_input(self.stream, self.peer, why)

    async def send(self, reply: bytes) -> None:
        self.writer.write(reply)
        await self.writer.drain()

    async def relay(self, line: bytes) -> bytes:
        self.up_writer.write(line)
        await self.up_writer.drain()
        raw, _ = await _reply(self.up_reader)
        return raw

    async def run(self) -> None:
        errors = 0
        while True:
            try:
                line = await asyncio.wait_for(_read_line(self.reader, MAX_COMMAND), CLIENT_TIMEOUT)
            except _TooLong:
                answer = b'500 5.5.2 line too long\r\n'
                self.bad_input(f'command line over {MAX_COMMAND} bytes')
            except TimeoutError:
                await self.send(b'421 4.4.2 timeout, closing\r\n')
                return
            else:
                if not line:
                    return
                if self.upstream_dropped:
                    await self.send(b'421 4.7.0 closing after a refused message\r\n')
                    return
                reply = await self.command(line)
                if reply is None:
                    return
                answer = reply
            if answer[:1] == b'5' and not answer.startswith(b'550 5.7.1'):
                errors += 1
            await self.send(answer)
            if errors >= MAX_ERRORS:
                await self.send(b'421 4.7.0 too many errors, closing\r\n')
                return

    async def command(self, line: bytes) -> bytes | None:
        """The reply to one command line; None once the session is over (QUIT)."""
        if not line.endswith(b'\n'):
            self.bad_input('line without end')
            return b'500 5.5.2 line without end\r\n'
        body = line.removesuffix(b'\n').removesuffix(b'\r')
        if b'\r' in body or b'\0' in body:
            # A bare CR could end the line for the MTA but not for the gate: one checked line, two commands.
            self.bad_input('bare CR or NUL in a command')
            return b'500 5.5.2 bare CR or NUL in a command\r\n'
        line = body + b'\r\n'  # the MTA sees the same line ends as the gate
        text = body.decode('utf-8', 'replace')
        verb = text.split(' ', 1)[0].upper()
        if verb in RELAYED:
            return await self.relay(line)
        if verb == 'EHLO':
            return await self.ehlo(line)
        if verb == 'RCPT':
            return await self.rcpt(text, line)
        if verb == 'DATA':
            return await self.data(line)
        if verb == 'QUIT':
            with contextlib.suppress(OSError, _UpstreamError):
                await self.relay(b'QUIT\r\n')
            await self.send(b'221 2.0.0 bye\r\n')
            return None
        if verb == 'VRFY':
            return b'252 2.5.2 cannot verify, send mail and we will try\r\n'
        if verb == 'HELP':
            return b'214 2.0.0 commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT\r\n'
        if verb in NOT_OFFERED:
            self.bad_input(f'{verb} is not offered')
            return b'502 5.5.1 command not implemented\r\n'
        self.bad_input('unknown command')
        return b'500 5.5.2 command not recognised\r\n'

    async def ehlo(self, line: bytes) -> bytes:
        self.up_writer.write(line)
        await self.up_writer.drain()
        raw, texts = await _reply(self.up_reader)
        if not raw.startswith(b'250'):
            return raw
        kept = [self.gate.hostname] + [
            text.decode('ascii', 'replace')
            for text in texts[1:]
            if text.split(b' ', 1)[0].decode('ascii', 'replace').upper() in EXTENSIONS
        ]
        return ''.join(f'250{" " if i == len(kept) - 1 else "-"}{item}\r\n' for i, item in enumerate(kept)).encode()

    async def rcpt(self, text: str, line: bytes) -> bytes:
        match = _RCPT.match(text)
        if match is None:
            self.bad_input('RCPT TO without an address')
            return b'501 5.1.3 bad recipient address syntax\r\n'
        address = match.group(1) if match.group(1) is not None else match.group(2)
        # A source route (<@relay:user@domain>) is ignored by receivers (RFC 5321 C): check the mailbox.
        mailbox = address.split(':', 1)[1] if address.startswith('@') and ':' in address else address
        recipient = canonical_address(mailbox)
        counters = self.gate.counters
        if address_problem(recipient) is not None:
            # Fail closed: what cannot be looked up is not relayed (it could be a suppressed mailbox in disguise).
            self.bad_input('RCPT TO address that cannot be checked')
            return f'550 5.1.3 <{address}>: Recipient address rejected: cannot be checked for suppression\r\n'.encode()
        try:
            entry = await asyncio.wait_for(self.lookups.lookup(recipient, self.stream.name), UPSTREAM_TIMEOUT)
        except (StoreError, TimeoutError) as error:
            counters.deferred += 1
            self.gate.log(f'{self.stream.name}: store: {error or "timeout"}')
            return refusal(address, None)
        if entry is not None:
            counters.suppressed += 1
            return refusal(address, entry)
        raw = await self.relay(line)
        if raw[:1] == b'2':
            counters.relayed_recipients += 1
        return raw

    async def data(self, line: bytes) -> bytes:
        raw = await self.relay(line)
        if not raw.startswith(b'354'):
            return raw
        await self.send(raw)
        at_line_start, after_cr, refused = True, False, False
        while True:
            try:
                chunk = await asyncio.wait_for(self.reader.readuntil(b'\n'), CLIENT_TIMEOUT)
            except asyncio.LimitOverrunError as error:
                chunk = await self.reader.readexactly(error.consumed)
            except asyncio.IncompleteReadError as error:
                raise OSError('client closed the connection during DATA') from error
            if not refused and _bare_cr(chunk, after_cr):
                # A bare CR could end a line (or the data) for the MTA but not for the gate: the message is refused
                # and nothing more of it, not even the final dot, reaches the MTA.
                refused = True
                self.bad_input('bare CR in a message')
                self.gate.counters.bare_cr += 1
            if chunk.endswith(b'\n') and not chunk.endswith(b'\r\n') and not (chunk == b'\n' and after_cr):
                # A bare LF ends a line for the gate: it ends one for the MTA too (CRLF), so both see the same end
                # of data and no command can hide in the message.
                chunk = chunk[:-1] + b'\r\n'
            after_cr = chunk.endswith(b'\r')
            if at_line_start and chunk in (b'.\r\n', b'.\n'):
                break
            if not refused:
                self.up_writer.write(chunk)
                await self.up_writer.drain()
            at_line_start = chunk.endswith(b'\n')
        if refused:
            # The MTA is inside DATA with part of the message: dropping the connection is the only clean abort.
            self.up_writer.close()
            self.upstream_dropped = True
            return b'550 5.6.11 bare CR in the message, refused\r\n'
        self.up_writer.write(b'.\r\n')
        await self.up_writer.drain()
        final, _ = await _reply(self.up_reader)
        return final


def _bare_cr(chunk: bytes, after_cr: bool) -> bool:
    """Whether ``chunk`` holds a CR not followed by LF (a CR at its very end waits for the next chunk)."""
    if after_cr and not chunk.startswith(b'\n'):
        return True
    return b'\r' in chunk.removesuffix(b'\r').replace(b'\r\n', b'')
