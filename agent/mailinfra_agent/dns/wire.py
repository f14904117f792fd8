"""DNS messages on the wire, only as much as the checks need: one question out, the answer section in.

dnspython builds and parses complete messages with objects for every name and rdata; on the
machines we measured that costs about 230 microseconds per query and answer, which caps a checker
at a few thousand queries per second. The checks only ever ask one question of a known type, so
the query is a few concatenated byte strings and the answer parser reads the header, compares the
echoed question and decodes the answer section for the types in :data:`TYPES`. Everything else
(truncation with the TCP retry, the reference engine) goes through dnspython; the test suite parses
the same answers with both and compares.
"""

from __future__ import annotations

import socket
import struct
from typing import NamedTuple

TYPES = {'A': 1, 'NS': 2, 'CNAME': 5, 'SOA': 6, 'PTR': 12, 'MX': 15, 'TXT': 16, 'AAAA': 28}
TYPE_NAMES = {code: name for name, code in TYPES.items()}
RCODES = {0: 'NOERROR', 1: 'FORMERR', 2: 'SERVFAIL', 3: 'NXDOMAIN', 4: 'NOTIMP', 5: 'REFUSED', 9: 'NOTAUTH'}

FLAG_QR = 0x8000
FLAG_AA = 0x0400
FLAG_TC = 0x0200
FLAG_RD = 0x0100
CLASS_IN = 1
EDNS_PAYLOAD = 1232
"""The UDP payload size we advertise (the DNS flag day 2020 value); answers larger come over TCP."""

_HEADER = struct.Struct('!HHHHHH')
_RR = struct.Struct('!HHIH')
_MAX_POINTERS = 64


class WireError(ValueError):
    """A malformed message (or a name that cannot be encoded)."""


_LENGTH = [bytes((length,)) for length in range(64)]
"""The length byte of a label, by length (labels are 1 to 63 bytes)."""


def encode_name(name: str) -> bytes:
    """``mail.example.com`` (a trailing dot is optional) in wire format, case kept."""
    text = name[:-1] if name.endswith('.') else name
    if not text:
        return b'\x00'
    labels = text.encode('ascii').split(b'.')
    try:
        wire = b''.join([_LENGTH[len(label)] + label for label in labels]) + b'\x00'
    except IndexError:  # a label over 63 bytes
        wire = b''
    if not wire or len(wire) > 255 or b'' in labels:
        raise WireError(f'invalid DNS name "{name}": empty label, label over 63 bytes or name over 255 bytes')
    return wire


def encode_name_cached(name: str, cache: dict[str, bytes]) -> bytes:
    """:func:`encode_name` of a normalised name (lower case, no trailing dot), its parent taken from ``cache``.

    The names one run asks share parents (``_domainkey.<domain>``, ``<c>.<b>.<a>.in-addr.arpa``, the domain
    before its ``_dmarc.``): when the parent was encoded before, only the first label is. Every name encoded
    goes into ``cache``. Same bytes and the same errors as :func:`encode_name`.
    """
    dot = name.find('.')
    if 0 < dot < 64:
        parent = cache.get(name[dot + 1 :])
        if parent is not None and dot + len(parent) < 255:
            try:
                first = name[:dot].encode('ascii')
            except UnicodeError:
                pass  # encode_name raises it
            else:
                wire = cache[name] = _LENGTH[dot] + first + parent
                return wire
    wire = cache[name] = encode_name(name)
    return wire


def encode_question(name: str, rdtype: str) -> bytes:
    """The question section: name, type, class IN."""
    return encode_name(name) + _TYPE_CLASS[rdtype]


_TYPE_CLASS = {name: struct.pack('!HH', code, CLASS_IN) for name, code in TYPES.items()}
_OPT = b'\x00' + struct.pack('!HHIH', 41, EDNS_PAYLOAD, 0, 0)


_HEAD = {flag: struct.pack('!HHHHH', FLAG_RD if flag else 0, 1, 0, 0, 1) for flag in (False, True)}


_OWN = {code: b'\xc0\x0c' + code.to_bytes(2, 'big') for code in TYPES.values()}
"""A record's owner (a pointer to the question's name, offset 12) and type, as the usual answer starts one."""

OPT_RECORD = _OPT
"""The EDNS OPT record every query ends with."""
OPT_PREFIX = _OPT[:-2]
"""The OPT record without its 2-byte RDLENGTH: end a query with :data:`OPT_RECORD`'s last two bytes (no options)
or with a :func:`padding` option."""
PADDING_OPTION = 12
"""EDNS Padding (RFC 7830): zero bytes a responder ignores."""


def padding(size: int) -> bytes:
    """RDLENGTH and an EDNS Padding option of ``size`` zero bytes: what follows :data:`OPT_PREFIX` (6 + size bytes)."""
    if not 0 <= size <= 0xFFFF - 4:
        raise ValueError(f'padding of {size} bytes out of range')
    return struct.pack('!HHH', size + 4, PADDING_OPTION, size) + bytes(size)


TYPE_CLASS = _TYPE_CLASS
"""Type name -> the 4 bytes (type, class IN) that end a question."""


def query_head(*, recursion: bool) -> bytes:
    """A query's header without its 2-byte id: flags and the section counts (one question, one OPT)."""
    return _HEAD[recursion]


def query_body(question: bytes, *, recursion: bool) -> bytes:
    """A query without its 2-byte id: flags, one question, an EDNS OPT record."""
    return _HEAD[recursion] + question + _OPT


class Rr(NamedTuple):
    """One resource record of the answer section, its rdata decoded for the types we ask."""

    owner: str
    """Lower case, no trailing dot."""
    rdtype: int
    value: str
    """A/AAAA: the address; TXT: the character-strings joined; PTR/CNAME/NS: the name (lower case,
    no trailing dot); MX: ``"<preference> <name>"``; other types: the rdata as hex."""


class Response(NamedTuple):
    ident: int
    flags: int
    rcode: int
    answers: tuple[Rr, ...]
    own: tuple[str, ...] | None = None
    """The values, when every answer record is of the question's name and type (the usual answer,
    no CNAME): what :func:`answer_chain` would return, without looking at ``answers``."""

    @property
    def authoritative(self) -> bool:
        return bool(self.flags & FLAG_AA)

    @property
    def truncated(self) -> bool:
        return bool(self.flags & FLAG_TC)


def read_name(data: bytes, pos: int) -> tuple[str, int]:
    """The (possibly compressed) name at ``pos``: (lower-case text without trailing dot, position after it)."""
    parts: list[bytes] = []
    end = -1
    jumps = 0
    size = len(data)
    while True:
        if pos >= size:
            raise WireError('name runs past the end of the message')
        length = data[pos]
        if length == 0:
            pos += 1
            break
        if length >= 0xC0:
            if pos + 1 >= size:
                raise WireError('truncated compression pointer')
            if end < 0:
                end = pos + 2
            jumps += 1
            if jumps > _MAX_POINTERS:
                raise WireError('compression pointer loop')
            pos = ((length & 0x3F) << 8) | data[pos + 1]
            continue
        if length > 63:
            raise WireError(f'invalid label length {length}')
        parts.append(data[pos + 1 : pos + 1 + length])
        pos += 1 + length
    # one decode for the whole name (per label it cost as much as the walk)
    return b'.'.join(parts).decode('ascii', 'replace').lower(), (end if end >= 0 else pos)


def _rdata(data: bytes, rdtype: int, start: int, end: int) -> str:
    if rdtype == 16:  # TXT
        parts = []
        pos = start
        while pos < end:
            size = data[pos]
            parts.append(data[pos + 1 : pos + 1 + size])
            pos += 1 + size
        if pos != end:
            raise WireError('TXT character-string runs past its record')
        return b''.join(parts).decode('utf-8', 'replace')
    if rdtype == 1:
        if end - start != 4:
            raise WireError('A record of the wrong length')
        return socket.inet_ntop(socket.AF_INET, data[start:end])
    if rdtype == 28:
        if end - start != 16:
            raise WireError('AAAA record of the wrong length')
        return socket.inet_ntop(socket.AF_INET6, data[start:end])
    if rdtype in (2, 5, 12):  # NS, CNAME, PTR
        return read_name(data, start)[0]
    if rdtype == 15:  # MX
        preference = (data[start] << 8) | data[start + 1]
        return f'{preference} {read_name(data, start + 2)[0]}'
    return data[start:end].hex()


def parse_response(data: bytes, question: bytes, qname: str = '', qtype: int = 0) -> Response:
    """Parse an answer to the query whose question section is ``question``.

    Raises :class:`WireError` for a malformed message, one that is not a response, or one whose
    question is not ours (compared without regard to case). ``qname`` (lower case, no trailing
    dot) and ``qtype``, when given, save decoding owner names that point back at the question and
    fill :attr:`Response.own`.
    """
    if len(data) < 12:
        raise WireError('message shorter than its header')
    ident, flags, qdcount, ancount, _, _ = _HEADER.unpack_from(data)
    if not flags & FLAG_QR:
        raise WireError('not a response')
    end = 12 + len(question)
    if qdcount != 1 or (data[12:end] != question and data[12:end].lower() != question.lower()):
        raise WireError('the response is for another question')
    answers = []
    own = bool(qname and qtype)
    pos = end
    size = len(data)
    try:
        for _ in range(ancount):
            if qname and data[pos] == 0xC0 and data[pos + 1] == 12:
                owner, pos = qname, pos + 2
            else:
                owner, pos = read_name(data, pos)
                own = own and owner == qname
            rdtype, _, _, rdlength = _RR.unpack_from(data, pos)
            pos += 10
            stop = pos + rdlength
            if stop > size:
                raise WireError('record data runs past the end of the message')
            if rdtype != qtype:
                own = False
            if rdtype == 16 and rdlength and data[pos] == rdlength - 1:  # TXT of one character-string
                value = data[pos + 1 : stop].decode('utf-8', 'replace')
            else:
                value = _rdata(data, rdtype, pos, stop)
            answers.append(Rr(owner, rdtype, value))
            pos = stop
    except (struct.error, IndexError, UnicodeError, OSError) as error:
        raise WireError(f'malformed answer section: {error}') from None
    return Response(ident, flags, flags & 0x000F, tuple(answers), tuple([rr.value for rr in answers]) if own else None)


def read_own(data: bytes, question: bytes, qname: str, qtype: int) -> tuple[int, tuple[str, ...]] | None:
    """The engine's fast path: ``(flags, values)`` of the usual answer, or None when it is not one.

    The usual answer: a response to ``question`` (same bytes as sent; the general parser also accepts a
    case-changed echo) whose answer records all point back at the question's name (``0xC00C``) and are of
    its type (no CNAME), or that has no answer records (NXDOMAIN, no data). None means "ask
    :func:`parse_response`", which accepts or rejects everything else with the full checks; the values are
    the ones it returns in :attr:`Response.own`. About twice as fast as the general parser, and it builds
    no per-record tuples.
    """
    size = len(data)
    # startswith compares in place (slices would copy)
    if size < 12 or not data[2] & 0x80 or data[4] or data[5] != 1 or not data.startswith(question, 12):
        return None
    count = (data[6] << 8) | data[7]
    flags = (data[2] << 8) | data[3]
    if not count:
        return flags, ()
    values = []
    pos = 12 + len(question)
    own = _OWN[qtype] if qtype in _OWN else b'\xc0\x0c' + qtype.to_bytes(2, 'big')
    try:
        for _ in range(count):
            if not data.startswith(own, pos):  # owner: a pointer to the question's name; its type
                return None
            rdlength = (data[pos + 10] << 8) | data[pos + 11]
            start = pos + 12
            pos = start + rdlength
            if pos > size:
                return None
            if qtype == 1 and rdlength == 4:
                values.append(socket.inet_ntop(socket.AF_INET, data[start:pos]))
            elif qtype == 16 and rdlength and data[start] == rdlength - 1:  # TXT of one character-string
                values.append(data[start + 1 : pos].decode('utf-8', 'replace'))
            else:
                values.append(_rdata(data, qtype, start, pos))
    except (IndexError, UnicodeError, OSError, WireError):
        return None
    return flags, tuple(values)


def answer_chain(answers: tuple[Rr, ...], qname: str, rdtype: int, limit: int = 8) -> tuple[tuple[str, ...], list[str]]:
    """Follow CNAMEs from ``qname`` inside one answer section.

    Returns (the values of ``rdtype`` at the end of the chain, the CNAME targets followed). If the
    chain leaves the section, the values are empty and the last target tells where to ask next.
    """
    name = qname.lower().rstrip('.')
    chain: list[str] = []
    if all(rr.owner == name and rr.rdtype == rdtype for rr in answers):  # the usual answer: no CNAME
        return tuple(rr.value for rr in answers), chain
    for _ in range(limit + 1):
        values = tuple(rr.value for rr in answers if rr.owner == name and rr.rdtype == rdtype)
        if values:
            return values, chain
        target = next((rr.value for rr in answers if rr.owner == name and rr.rdtype == 5), None)
        if target is None or rdtype == 5:
            return (), chain
        chain.append(target)
        name = target
    return (), chain
