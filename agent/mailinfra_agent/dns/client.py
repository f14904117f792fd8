"""Asking name servers: two engines with one interface, and a per-run client that routes and caches.

* :class:`UdpEngine` (the default): one connected UDP socket per server, reused for every query,
  up to ``window`` queries in flight matched by id and echoed question, retries on timeout, and a
  TCP retry through dnspython when an answer is truncated. The queries of one event-loop turn leave
  together, on Linux in one ``UDP_SEGMENT`` system call (:meth:`UdpEngine._flush`).
* :class:`DnspythonEngine`: ``dns.asyncquery.udp_with_fallback`` for each query (a socket per
  query, dnspython's full message parser). About ten times slower on the 1,000-IP benchmark
  (benchmarks/dnscheck); kept as the reference the fast engine is tested against.

:class:`DnsClient` sends names inside the deployment's zones to the authoritative server being
checked (without recursion, and the answer must carry the AA flag) and, when a resolver is
given, everything else to the resolver (with recursion desired). Without a resolver, names outside
the zones are not asked at all: their answers say so, and the checks report a warning. Every
(name, type) is asked at most once per client; all answers, failures included, are cached.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import functools
import ipaddress
import random
import socket
import struct
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, NamedTuple, Protocol

from ..names import enclosing
from .wire import (
    FLAG_AA,
    FLAG_TC,
    OPT_PREFIX,
    RCODES,
    TYPE_CLASS,
    TYPES,
    Rr,
    WireError,
    answer_chain,
    encode_name_cached,
    padding,
    parse_response,
    query_head,
    read_own,
)

if TYPE_CHECKING:
    import dns.message

# dnspython is imported where it is used (TCP after a truncated answer, the reference engine): importing it
# costs about 50 ms, a tenth of a whole DNSBL run of 25,000 questions.

EngineName = Literal['fast', 'dnspython']
DEFAULT_TIMEOUT = 2.0
DEFAULT_RETRIES = 2
DEFAULT_WINDOW = 64
"""Queries in flight per server. Against Knot on loopback 16 to 256 are within the noise of each
other; around 1,000 overflows the server's socket buffer and costs retries."""
_MAX_CNAMES = 8
_getrandbits = random.getrandbits
_new_answer = tuple.__new__
"""``_new_answer(Answer, (all nine fields))``: an :class:`Answer` without the named tuple's Python-level ``__new__``."""


@dataclass(frozen=True)
class Server:
    """A name server address and port."""

    address: str
    port: int = 53

    def __str__(self) -> str:
        return f'[{self.address}]:{self.port}' if ':' in self.address else f'{self.address}:{self.port}'


def parse_server(text: str) -> Server:
    """``192.0.2.1``, ``192.0.2.1:5353``, ``2001:db8::1`` or ``[2001:db8::1]:5353``; addresses only."""
    value = text.strip()
    port = 53
    if value.startswith('['):
        address, _, rest = value[1:].partition(']')
        if rest:
            if not rest.startswith(':') or not (rest[1:].isascii() and rest[1:].isdigit()):
                raise ValueError(f'invalid name server "{text}", expected "[address]:port"')
            port = int(rest[1:])
    elif value.count(':') == 1:
        address, _, port_text = value.partition(':')
        if not (port_text.isascii() and port_text.isdigit()):
            raise ValueError(f'invalid name server "{text}", expected "address:port"')
        port = int(port_text)
    else:
        address = value
    try:
        address = str(ipaddress.ip_address(address))
    except ValueError:
        raise ValueError(f'invalid name server "{text}": expected an IP address (resolve names first)') from None
    if not 0 < port < 65536:
        raise ValueError(f'invalid name server "{text}": port {port} out of range')
    return Server(address, port)


class Answer(NamedTuple):
    """What one server said about one (name, type), CNAMEs inside the answer followed.

    A named tuple rather than a dataclass: one is made per query, and this is the cheapest
    immutable record Python has.
    """

    name: str
    rdtype: str
    values: tuple[str, ...] = ()
    rcode: str = 'NOERROR'
    error: str | None = None
    """Set when there is no usable answer: timeout, SERVFAIL, REFUSED, not authoritative..."""
    unchecked: bool = False
    """The name is outside the deployment's zones and no resolver was given: nobody was asked."""
    cname: str | None = None
    """The answer ended in a CNAME to this name without its records: ask there next."""
    chain: tuple[str, ...] = ()
    server: str = ''

    @property
    def ok(self) -> bool:
        return self.error is None and not self.unchecked

    @property
    def void(self) -> bool:
        """NXDOMAIN, or NOERROR without records (a "void lookup" in RFC 7208 terms)."""
        return self.ok and not self.values


def _answer_from(
    response_rcode: int,
    authoritative: bool,
    answers: tuple[Rr, ...],
    name: str,
    rdtype: str,
    server: str,
    require_aa: bool,
    own: tuple[str, ...] | None = None,
) -> Answer:
    if own is not None and response_rcode == 0 and (authoritative or not require_aa):
        return Answer(name, rdtype, own, 'NOERROR', None, False, None, (), server)  # the usual answer
    rcode = RCODES.get(response_rcode, str(response_rcode))
    if rcode not in ('NOERROR', 'NXDOMAIN'):
        return Answer(name, rdtype, rcode=rcode, error=f'{server} answered {rcode}', server=server)
    if require_aa and not authoritative:
        return Answer(
            name,
            rdtype,
            rcode=rcode,
            server=server,
            error=f'{server} is not authoritative for {name} (no AA flag): is the zone loaded there?',
        )
    values, chain = answer_chain(answers, name, TYPES[rdtype], _MAX_CNAMES)
    cname = chain[-1] if chain and not values else None
    return Answer(name, rdtype, values, rcode, cname=cname, chain=tuple(chain), server=server)


class Engine(Protocol):
    """Sends one query to one server and resolves a future with the :class:`Answer`."""

    server: Server
    sent: int
    """Datagrams sent, retries included."""
    first_sent: float
    last_answer: float
    """``time.perf_counter()`` of the first query sent and of the last answer received."""

    def submit(self, name: str, rdtype: str) -> asyncio.Future[Answer]: ...

    async def start(self) -> None: ...

    def close(self) -> None: ...


async def _tcp_answer(
    server: Server, name: str, rdtype: str, timeout: float, recursion: bool, require_aa: bool
) -> Answer:
    """Ask over TCP with dnspython (after a truncated UDP answer)."""
    import dns.asyncquery
    import dns.exception
    import dns.flags
    import dns.message

    query = dns.message.make_query(name, rdtype, use_edns=0, payload=1232)
    if not recursion:
        query.flags &= ~dns.flags.RD
    try:
        response = await dns.asyncquery.tcp(query, server.address, timeout=timeout, port=server.port)
    except dns.exception.Timeout:
        return Answer(name, rdtype, error=f'{server}: no TCP answer within {timeout:g}s', server=str(server))
    except (OSError, dns.exception.DNSException) as error:
        return Answer(name, rdtype, error=f'{server}: TCP query failed: {error}', server=str(server))
    return _from_dnspython(response, name, rdtype, str(server), require_aa=require_aa)


def _from_dnspython(response: dns.message.Message, name: str, rdtype: str, server: str, require_aa: bool) -> Answer:
    import dns.flags

    rrs = []
    for rrset in response.answer:
        owner = rrset.name.to_text(omit_final_dot=True).lower()
        code = int(rrset.rdtype)
        for rdata in rrset:
            if code == 16:
                value = b''.join(rdata.strings).decode('utf-8', 'replace')
            elif code in (2, 5, 12):
                value = rdata.target.to_text(omit_final_dot=True).lower()
            elif code == 15:
                value = f'{rdata.preference} {rdata.exchange.to_text(omit_final_dot=True).lower()}'
            elif code in (1, 28):
                value = rdata.address
            else:
                value = rdata.to_wire().hex()
            rrs.append(Rr(owner, code, value))
    return _answer_from(
        response.rcode(), bool(response.flags & dns.flags.AA), tuple(rrs), name, rdtype, server, require_aa
    )


class _Pending:
    """One query in flight: ``__slots__`` and positional construction keep it cheap (one per question)."""

    __slots__ = ('attempts', 'body', 'deadline', 'future', 'name', 'qtype', 'question', 'rdtype')

    def __init__(
        self, future: asyncio.Future[Answer], name: str, rdtype: str, qtype: int, question: bytes, body: bytes
    ) -> None:
        self.future = future
        self.name = name
        self.rdtype = rdtype
        self.qtype = qtype
        self.question = question
        self.body = body
        self.attempts = 0
        self.deadline = 0.0


_IDS = [ident.to_bytes(2, 'big') for ident in range(65536)]
"""Query ids as the two bytes that start a message."""
_NO_OPTIONS = b'\x00\x00'
"""The RDLENGTH that ends a query kept without it (:data:`OPT_PREFIX`): no EDNS options."""
_UDP_SEGMENT = 103
"""Linux ``UDP_SEGMENT`` (``linux/udp.h``; not in Python's socket module): send one buffer as equal datagrams."""
_SEGMENTS = 64
"""The largest window sent with ``UDP_SEGMENT`` (the kernel's limit, ``UDP_MAX_SEGMENTS``, is 64 or more)."""
_PADDINGS = [padding(size) for size in range(256 + 16)]
"""RDLENGTH and Padding option by padding size: a query's question is at most 259 bytes."""
_GSO_UNSUPPORTED = {errno.EINVAL, errno.EIO, errno.ENOPROTOOPT, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMSGSIZE}


class UdpEngine:
    """Pipelined queries over one connected, non-blocking UDP socket (see the module docstring).

    The socket is watched with ``loop.add_reader`` and drained on every wake-up (asyncio's datagram
    transport reads one datagram per event-loop turn, which costs about as much as the query).
    ``require_aa`` (default: without recursion) makes an answer without the AA flag an error;
    ``tcp_fallback=False`` makes a truncated answer an error instead of asking again over TCP.
    """

    def __init__(
        self,
        server: Server,
        *,
        recursion: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        window: int = DEFAULT_WINDOW,
        require_aa: bool | None = None,
        tcp_fallback: bool = True,
    ) -> None:
        if timeout <= 0 or retries < 0 or window < 1:
            raise ValueError('timeout must be positive, retries at least 0 and the window at least 1')
        self.server = server
        self.recursion = recursion
        self.require_aa = not recursion if require_aa is None else require_aa
        self.tcp_fallback = tcp_fallback
        self.timeout = timeout
        self.retries = retries
        self.window = min(window, 4096)
        self.sent = 0
        self.truncated = 0
        self.first_sent = 0.0
        self.last_answer = 0.0
        self._label = str(server)
        self._head = query_head(recursion=recursion)
        self._inflight: dict[int, _Pending] = {}
        self._queue: collections.deque[_Pending] = collections.deque()
        self._sock: socket.socket | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: str | None = None
        self._tcp: set[asyncio.Task[Answer]] = set()
        self._out: list[bytes] = []
        """Queries to send at the end of this event-loop turn (:meth:`_flush`), each without its OPT RDLENGTH."""
        self.segmented = sys.platform == 'linux' and self.window <= _SEGMENTS
        """Whether :meth:`_flush` sends a turn's queries in one ``UDP_SEGMENT`` system call: on Linux (4.18 and
        later; switched off for good at the first refusal) with a window of at most 64 (see :meth:`_flush`)."""
        self._names: dict[str, bytes] = {}
        """Names encoded so far (:func:`encode_name_cached`): most share a parent with one asked before."""

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ':' in self.server.address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            # room for a full window of large answers; the kernel caps it at net.core.rmem_max
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
            sock.connect((self.server.address, self.server.port))
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self._loop.add_reader(sock.fileno(), self._readable)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._sock is not None and self._loop is not None:
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        for task in self._tcp:
            task.cancel()
        self._fail_all('the engine was closed')

    # -- sending -------------------------------------------------------------------------------

    def submit(self, name: str, rdtype: str) -> asyncio.Future[Answer]:
        return self.submit_normal(name.lower().rstrip('.'), rdtype)

    def submit_normal(self, name: str, rdtype: str) -> asyncio.Future[Answer]:
        """:meth:`submit` of a name already in lower case without a trailing dot (what :class:`DnsClient` asks)."""
        loop = self._loop
        if loop is None:
            raise RuntimeError('start() the engine first')
        future: asyncio.Future[Answer] = loop.create_future()
        try:
            question = encode_name_cached(name, self._names) + TYPE_CLASS[rdtype]
        except (WireError, UnicodeError, KeyError) as error:
            future.set_result(Answer(name, rdtype, error=f'cannot ask: {error}', server=self._label))
            return future
        pending = _Pending(future, name, rdtype, TYPES[rdtype], question, self._head + question + OPT_PREFIX)
        if self._error is not None:
            future.set_result(self._failure(pending, self._error))
        elif len(self._inflight) < self.window:
            self._send(pending, loop.time())
        else:
            self._queue.append(pending)
        return future

    def _send(self, pending: _Pending, now: float) -> None:
        inflight = self._inflight
        ident = _getrandbits(16)  # unpredictable ids, and the echoed question must match too
        while ident in inflight:
            ident = _getrandbits(16)
        pending.attempts += 1
        pending.deadline = now + self.timeout
        inflight[ident] = pending
        if not self.sent:
            self.first_sent = time.perf_counter()
        self.sent += 1
        out = self._out
        if not out:
            self._loop.call_soon(self._flush)  # type: ignore[union-attr]
        out.append(_IDS[ident] + pending.body)
        if self._timer is None:
            self._timer = self._loop.call_later(self.timeout / 4, self._sweep)  # type: ignore[union-attr]

    def _flush(self) -> None:
        """Send the queries of this turn back to back, on Linux in one system call.

        With ``UDP_SEGMENT`` (UDP generic segmentation offload) the kernel cuts one buffer into equal
        datagrams: every query of the batch is padded to the longest with an EDNS Padding option (RFC 7830),
        which servers ignore; on the wire they are ordinary queries. On loopback the sender's system call
        also delivers each datagram into the server's socket, which makes ``send`` the largest single cost
        of a query; one call for the turn's queries takes about 10 % off the CPU time of a whole ``dns check``
        of the 1,000-IP benchmark (``benchmarks/dnscheck/README.md``). Only with a window of at most 64: on
        loopback segments take more room in the server's receive buffer than datagrams sent one by one, and
        with 128 in flight Knot's default buffer overflowed (lost queries, retried after the timeout) where
        it did not with single datagrams; with 64 and 96 it never did.
        """
        out = self._out
        sock = self._sock
        if not out or sock is None:
            return
        self._out = []
        if self.segmented and len(out) > 1:  # at most the window: 64
            longest = max(map(len, out))
            paddings = _PADDINGS
            try:
                sock.sendmsg(
                    [b''.join([query + paddings[longest - len(query)] for query in out])],
                    [(socket.SOL_UDP, _UDP_SEGMENT, struct.pack('=H', longest + 6))],  # 6 + padding bytes each
                )
                return
            except (BlockingIOError, InterruptedError):
                return  # the send buffer is full: treated as lost datagrams, the sweep sends them again
            except OSError as error:
                if error.errno not in _GSO_UNSUPPORTED:
                    self._error = f'socket error: {error}'
                    self._fail_all(self._error)
                    return
                self.segmented = False  # this kernel or route cannot: one datagram per call from now on
        send = sock.send
        for query in out:
            try:
                send(query + _NO_OPTIONS)
            except (BlockingIOError, InterruptedError):
                pass  # the send buffer is full: treated as a lost datagram, the sweep sends it again
            except OSError as error:
                self._error = f'socket error: {error}'
                self._fail_all(self._error)
                return

    def _next(self) -> None:
        queue = self._queue
        if not queue:
            return
        inflight = self._inflight
        window = self.window
        now = self._loop.time()  # type: ignore[union-attr]
        while queue and len(inflight) < window and self._error is None:
            self._send(queue.popleft(), now)

    def _failure(self, pending: _Pending, reason: str) -> Answer:
        return Answer(pending.name, pending.rdtype, error=f'{self._label}: {reason}', server=self._label)

    def _fail_all(self, reason: str) -> None:
        for pending in [*self._inflight.values(), *self._queue]:
            if not pending.future.done():
                pending.future.set_result(self._failure(pending, reason))
        self._inflight.clear()
        self._queue.clear()
        self._out.clear()

    def _sweep(self) -> None:
        assert self._loop is not None
        self._timer = None
        now = self._loop.time()
        expired = [(ident, pending) for ident, pending in self._inflight.items() if pending.deadline <= now]
        for ident, pending in expired:
            del self._inflight[ident]
            if pending.attempts <= self.retries:
                self._send(pending, now)
            elif not pending.future.done():
                attempts = pending.attempts
                pending.future.set_result(
                    self._failure(pending, f'no answer within {self.timeout:g}s ({attempts} attempts)')
                )
        self._next()
        self._flush()
        if self._inflight and self._timer is None:
            self._timer = self._loop.call_later(self.timeout / 4, self._sweep)

    # -- receiving -----------------------------------------------------------------------------

    def _readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        recv = sock.recv
        inflight = self._inflight
        label = self._label
        require_aa = self.require_aa
        for _ in range(4 * self.window):  # bounded: let the loop breathe between batches
            try:
                data = recv(65535)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as error:  # ICMP port unreachable and the like
                self._error = f'socket error: {error}'
                self._fail_all(self._error)
                return
            if len(data) < 12:
                continue
            ident = (data[0] << 8) | data[1]
            pending = inflight.get(ident)
            if pending is None:
                continue  # late answer to a retried query, or noise
            fast = read_own(data, pending.question, pending.name, pending.qtype)
            if fast is not None:
                flags, values = fast
                rcode = flags & 0x000F
                if not flags & FLAG_TC and rcode in (0, 3) and (flags & FLAG_AA or not require_aa):
                    # the usual answers: records of the question's name and type, or NXDOMAIN/no data
                    del inflight[ident]
                    future = pending.future
                    if not future.done():
                        rcode_name = 'NXDOMAIN' if rcode else 'NOERROR'
                        future.set_result(
                            _new_answer(
                                Answer, (pending.name, pending.rdtype, values, rcode_name, None, False, None, (), label)
                            )
                        )
                    continue
            self._received(data, pending)
        self.last_answer = time.perf_counter()
        self._next()
        self._flush()

    def _received(self, data: bytes, pending: _Pending) -> None:
        try:
            response = parse_response(data, pending.question, pending.name, pending.qtype)
        except WireError:
            return  # not the answer to this query; keep waiting for it
        del self._inflight[response.ident]
        if response.truncated:
            self.truncated += 1
            if not self.tcp_fallback:
                if not pending.future.done():
                    pending.future.set_result(self._failure(pending, 'answer truncated (TC flag), TCP fallback off'))
                return
            task = asyncio.ensure_future(
                _tcp_answer(self.server, pending.name, pending.rdtype, self.timeout, self.recursion, self.require_aa)
            )
            self._tcp.add(task)
            task.add_done_callback(self._tcp.discard)
            task.add_done_callback(functools.partial(_copy_result, future=pending.future))
        elif not pending.future.done():
            pending.future.set_result(
                _answer_from(
                    response.rcode,
                    response.authoritative,
                    response.answers,
                    pending.name,
                    pending.rdtype,
                    self._label,
                    self.require_aa,
                    response.own,
                )
            )


def _copy_result(done: asyncio.Future[Answer], *, future: asyncio.Future[Answer]) -> None:
    if not future.done():
        future.set_result(done.result())


class DnspythonEngine:
    """The reference engine: dnspython's async API, one query (and socket) at a time per slot."""

    def __init__(
        self,
        server: Server,
        *,
        recursion: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        window: int = DEFAULT_WINDOW,
    ) -> None:
        self.server = server
        self.recursion = recursion
        self.timeout = timeout
        self.retries = retries
        self.sent = 0
        self.first_sent = 0.0
        self.last_answer = 0.0
        self._label = str(server)
        self._slots = asyncio.Semaphore(window)
        self._tasks: set[asyncio.Task[Answer]] = set()

    async def start(self) -> None:
        return None

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()

    def submit(self, name: str, rdtype: str) -> asyncio.Future[Answer]:
        task = asyncio.ensure_future(self._ask(name, rdtype))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _ask(self, name: str, rdtype: str) -> Answer:
        import dns.asyncquery
        import dns.exception
        import dns.flags
        import dns.message

        try:
            query = dns.message.make_query(name, rdtype, use_edns=0, payload=1232)
        except (dns.exception.DNSException, ValueError) as error:
            return Answer(name, rdtype, error=str(error), server=self._label)
        if not self.recursion:
            query.flags &= ~dns.flags.RD
        async with self._slots:
            for attempt in range(1, self.retries + 2):
                if not self.sent:
                    self.first_sent = time.perf_counter()
                self.sent += 1
                try:
                    response, _ = await dns.asyncquery.udp_with_fallback(
                        query, self.server.address, timeout=self.timeout, port=self.server.port
                    )
                except dns.exception.Timeout:
                    if attempt <= self.retries:
                        continue
                    return Answer(
                        name,
                        rdtype,
                        error=f'{self._label}: no answer within {self.timeout:g}s ({attempt} attempts)',
                        server=self._label,
                    )
                except (OSError, dns.exception.DNSException) as error:
                    return Answer(name, rdtype, error=f'{self._label}: query failed: {error}', server=self._label)
                self.last_answer = time.perf_counter()
                return _from_dnspython(response, name, rdtype, self._label, not self.recursion)
        raise AssertionError('unreachable')  # pragma: no cover


def make_engine(
    kind: EngineName, server: Server, *, recursion: bool, timeout: float, retries: int, window: int
) -> Engine:
    if kind == 'fast':
        return UdpEngine(server, recursion=recursion, timeout=timeout, retries=retries, window=window)
    if kind == 'dnspython':
        return DnspythonEngine(server, recursion=recursion, timeout=timeout, retries=retries, window=window)
    raise ValueError(f'unknown engine "{kind}", expected "fast" or "dnspython"')


@dataclass
class Stats:
    """What one client asked: each (name, type) once, in the order first asked."""

    questions: list[tuple[str, str, str]] = field(default_factory=list)
    """(name, type, server)."""


class DnsClient:
    """Asks the authoritative server for names inside ``zones`` and the resolver (if any) for the rest."""

    def __init__(self, authoritative: Engine, zones: Iterable[str], resolver: Engine | None = None) -> None:
        self.authoritative = authoritative
        self.resolver = resolver
        self.zones = frozenset(zone.lower().rstrip('.') for zone in zones)
        self.stats = Stats()
        self._labels = {True: str(authoritative.server), False: str(resolver.server) if resolver else ''}
        # engines that take normalised names directly (UdpEngine) skip normalising them a second time
        self._submit = {
            True: getattr(authoritative, 'submit_normal', authoritative.submit),
            False: getattr(resolver, 'submit_normal', resolver.submit) if resolver else None,
        }
        self._cache: dict[tuple[str, str], asyncio.Future[Answer]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inside_parent: dict[str, bool] = {}
        """Whether a parent name lies in the zones: names asked share few parents (``_domainkey.<domain>``,
        ``<c>.<b>.<a>.in-addr.arpa``), so routing is one dictionary look-up instead of a suffix walk."""

    @property
    def server(self) -> str:
        return str(self.authoritative.server)

    def inside(self, name: str) -> bool:
        """Whether ``name`` lies in one of the deployment's zones."""
        return enclosing(name.lower().rstrip('.'), self.zones) is not None

    def prefetch(self, questions: Iterable[tuple[str, str]]) -> None:
        """Send these questions now (each once); :meth:`ask` then awaits the answers already on their way."""
        for name, rdtype in questions:
            self._future(name, rdtype)

    def _route(self, name: str) -> bool:
        """Whether ``name`` (normalised) goes to the authoritative server: :func:`enclosing`, its parent cached."""
        if name in self.zones:
            return True
        parent = name[name.find('.') + 1 :] if '.' in name else ''
        inside = self._inside_parent.get(parent)
        if inside is None:
            inside = self._inside_parent[parent] = bool(parent) and enclosing(parent, self.zones) is not None
        return inside

    def _future(self, name: str, rdtype: str) -> asyncio.Future[Answer]:
        future = self._cache.get((name, rdtype))  # names usually come normalised: skip lower() and rstrip()
        if future is not None:
            return future
        normal = name.lower().rstrip('.')
        key = (normal, rdtype)
        future = self._cache.get(key) if normal != name else None
        if future is None:
            if self._loop is None:
                self._loop = asyncio.get_running_loop()
            inside = self._route(key[0])
            submit = self._submit[inside]
            if submit is None:
                future = self._loop.create_future()
                future.set_result(Answer(key[0], rdtype, unchecked=True))
            else:
                future = submit(key[0], rdtype)
                self.stats.questions.append((key[0], rdtype, self._labels[inside]))
            self._cache[key] = future
        return future

    async def ask(self, name: str, rdtype: str) -> Answer:
        """The answer for ``name``/``rdtype``, following CNAMEs to other names (at most 8 in all)."""
        answer = await self._future(name, rdtype)
        if answer.cname is None:
            return answer  # the usual case: no CNAME, or one answered inside the same message
        chain = list(answer.chain)
        while answer.ok and answer.cname is not None:
            if len(chain) > _MAX_CNAMES or chain.count(answer.cname) > 1:
                return Answer(name, rdtype, error=f'CNAME loop or chain of more than {_MAX_CNAMES} at {name}')
            answer = await self._future(answer.cname, rdtype)
            chain += answer.chain
        if len(chain) > len(answer.chain):
            return answer._replace(name=name.lower().rstrip('.'), chain=tuple(chain))
        return answer

    async def ask_all(self, questions: Sequence[tuple[str, str]]) -> list[Answer]:
        """Answers to many questions, all sent before the first is awaited."""
        futures = [self._future(name, rdtype) for name, rdtype in questions]
        answers = []
        for future, (name, rdtype) in zip(futures, questions, strict=True):
            answer = await future
            # a CNAME to another name: :meth:`ask` follows it (from the same cache)
            answers.append(answer if answer.cname is None else await self.ask(name, rdtype))
        return answers


__all__ = [
    'DEFAULT_RETRIES',
    'DEFAULT_TIMEOUT',
    'DEFAULT_WINDOW',
    'Answer',
    'DnsClient',
    'DnspythonEngine',
    'Engine',
    'EngineName',
    'Server',
    'Stats',
    'UdpEngine',
    'make_engine',
    'parse_server',
]
