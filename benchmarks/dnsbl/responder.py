"""A tiny misbehaving DNS server on loopback, for the replay corpus: it answers every question the same way.

Modes:

* ``hijack``: every A question gets ``203.0.113.7`` (RFC 5737 TEST-NET-3), like a resolver that rewrites
  NXDOMAIN into the address of an advertising page; other types get an empty NOERROR answer;
* ``servfail``: every question gets SERVFAIL;
* ``silent``: no answer at all (the client times out).

It only ever answers the sender of a query on the loopback address it is bound to; nothing is sent anywhere
else. Runs in a daemon thread: ``with Responder('hijack') as server: server.nameserver``.
"""

from __future__ import annotations

import socket
import struct
import threading
from types import TracebackType
from typing import Literal

Mode = Literal['hijack', 'servfail', 'silent']
HIJACK_ADDRESS = '203.0.113.7'


def _question_end(data: bytes) -> int:
    pos = 12
    while pos < len(data) and data[pos]:
        if data[pos] >= 0xC0:
            raise ValueError('compressed name in a question')
        pos += 1 + data[pos]
    if pos + 5 > len(data):
        raise ValueError('truncated question')
    return pos + 5  # the root label, type and class


def answer(data: bytes, mode: Mode) -> bytes | None:
    """The response to one query datagram, or None (no answer: silent mode, or not a query we read)."""
    if mode == 'silent' or len(data) < 12 or data[2] & 0x80:
        return None
    try:
        end = _question_end(data)
    except ValueError:
        return None
    question = data[12:end]
    qtype = struct.unpack_from('!H', data, end - 4)[0]
    flags = 0x8000 | (data[2] << 8 & 0x0100) | 0x0080  # QR, the query's RD, RA
    if mode == 'servfail':
        return data[:2] + struct.pack('!HHHHH', flags | 2, 1, 0, 0, 0) + question
    records = b''
    if qtype == 1:
        records = b'\xc0\x0c' + struct.pack('!HHIH', 1, 1, 60, 4) + socket.inet_aton(HIJACK_ADDRESS)
    return data[:2] + struct.pack('!HHHHH', flags, 1, 1 if records else 0, 0, 0) + question + records


class Responder:
    def __init__(self, mode: Mode, address: str = '127.0.0.1') -> None:
        self.mode = mode
        self.address = address
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((address, 0))
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        self.queries = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f'responder-{mode}', daemon=True)

    @property
    def nameserver(self) -> str:
        return f'{self.address}:{self.port}'

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.queries += 1
            response = answer(data, self.mode)
            if response is not None:
                self._sock.sendto(response, peer)

    def __enter__(self) -> Responder:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()
