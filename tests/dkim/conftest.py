"""Fixtures for the DKIM tests: key stores in temporary directories, pre-generated keys, and a
tiny in-process authoritative DNS server (UDP and TCP on 127.0.0.1, random port)."""

from __future__ import annotations

import errno
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CNAME
import dns.rdtypes.ANY.TXT
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from mailinfra_iac.dkim import KeyStore, generate_private_key


@pytest.fixture(scope='session')
def rsa_key() -> rsa.RSAPrivateKey:
    key = generate_private_key('rsa')
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


@pytest.fixture(scope='session')
def other_rsa_key() -> rsa.RSAPrivateKey:
    key = generate_private_key('rsa')
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


@pytest.fixture(scope='session')
def ed_key() -> ed25519.Ed25519PrivateKey:
    key = generate_private_key('ed25519')
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    return key


@pytest.fixture
def keys_root(tmp_path: Path) -> Path:
    return tmp_path / 'keys'


@pytest.fixture
def store(keys_root: Path) -> KeyStore:
    return KeyStore(keys_root)


class DnsResponder:
    """Minimal authoritative server answering TXT (and CNAME) queries from a dict.

    Switches: ``authoritative`` (AA flag), ``rcode`` (force an error code), ``silent`` (drop UDP
    queries, to provoke timeouts), ``truncate_udp`` (answer UDP with TC set, forcing TCP).
    """

    def __init__(self) -> None:
        self.txt: dict[dns.name.Name, list[tuple[bytes, ...]]] = {}
        self.cname: dict[dns.name.Name, dns.name.Name] = {}
        self.authoritative = True
        self.rcode: dns.rcode.Rcode | None = None
        self.silent = False
        self.truncate_udp = False
        self.queries: list[tuple[str, str]] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.udp, self.tcp = self._bind()
        self.port: int = self.udp.getsockname()[1]

    @property
    def address(self) -> str:
        return f'127.0.0.1:{self.port}'

    def set_txt(self, fqdn: str, *values: str, chunk: int = 255) -> None:
        """Serve one TXT record per value, each split into ``chunk``-byte strings."""
        records = []
        for value in values:
            raw = value.encode('ascii')
            records.append(tuple(raw[i : i + chunk] for i in range(0, len(raw), chunk)) or (b'',))
        self.txt[dns.name.from_text(fqdn)] = records

    def set_cname(self, fqdn: str, target: str) -> None:
        self.cname[dns.name.from_text(fqdn)] = dns.name.from_text(target)

    @staticmethod
    def _bind() -> tuple[socket.socket, socket.socket]:
        for _ in range(50):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind(('127.0.0.1', 0))
            port = udp.getsockname()[1]
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                tcp.bind(('127.0.0.1', port))
            except OSError as error:
                udp.close()
                tcp.close()
                if error.errno == errno.EADDRINUSE:
                    continue
                raise
            tcp.listen(8)
            udp.settimeout(0.05)
            tcp.settimeout(0.05)
            return udp, tcp
        raise RuntimeError('no free port for the test DNS responder')

    def start(self) -> None:
        for target in (self._serve_udp, self._serve_tcp):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2)
        self.udp.close()
        self.tcp.close()

    def _serve_udp(self) -> None:
        while not self._stop.is_set():
            try:
                wire, peer = self.udp.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if self.silent:
                continue
            self.udp.sendto(self._answer(wire, 'udp'), peer)

    def _serve_tcp(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.tcp.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(1.0)
                try:
                    (length,) = struct.unpack('!H', _recv_exact(conn, 2))
                    reply = self._answer(_recv_exact(conn, length), 'tcp')
                    conn.sendall(struct.pack('!H', len(reply)) + reply)
                except (OSError, ConnectionError):
                    continue

    def _answer(self, wire: bytes, transport: str) -> bytes:
        query = dns.message.from_wire(wire)
        question = query.question[0]
        self.queries.append((transport, question.name.to_text()))
        response = dns.message.make_response(query)
        if self.authoritative:
            response.flags |= dns.flags.AA
        if self.rcode is not None:
            response.set_rcode(self.rcode)
            return response.to_wire()
        if transport == 'udp' and self.truncate_udp:
            response.flags |= dns.flags.TC
            return response.to_wire()
        name = question.name
        if name in self.cname:
            rrset = response.find_rrset(response.answer, name, dns.rdataclass.IN, dns.rdatatype.CNAME, create=True)
            rrset.add(dns.rdtypes.ANY.CNAME.CNAME(dns.rdataclass.IN, dns.rdatatype.CNAME, self.cname[name]), 300)
            name = self.cname[name]
        if name in self.txt:
            if question.rdtype == dns.rdatatype.TXT:
                rrset = response.find_rrset(response.answer, name, dns.rdataclass.IN, dns.rdatatype.TXT, create=True)
                for strings in self.txt[name]:
                    rrset.add(dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT, strings), 300)
        elif name not in self.cname:
            response.set_rcode(dns.rcode.NXDOMAIN)
        return response.to_wire()


def _recv_exact(conn: socket.socket, size: int) -> bytes:
    data = b''
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError('peer closed')
        data += chunk
    return data


@pytest.fixture
def dns_responder() -> Iterator[DnsResponder]:
    responder = DnsResponder()
    responder.start()
    try:
        yield responder
    finally:
        responder.stop()


@pytest.fixture
def dns_responder_2() -> Iterator[DnsResponder]:
    responder = DnsResponder()
    responder.start()
    try:
        yield responder
    finally:
        responder.stop()
