"""TXT character-strings in zone files as written (``zone-text``), which no DNS answer can show.

A character-string is at most 255 bytes (RFC 1035 3.3, a one-byte length). BIND refuses a zone file
with a longer one; Knot loads it and serves it split, so the served answer looks right. Only the
text tells, so ``dns check --zone-file`` reads it: RFC 1035 5.1 master-file syntax (quotes, ``\\X``
and ``\\DDD`` escapes, parentheses, comments), every string of every TXT and SPF record measured in
bytes after unescaping.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import NamedTuple

from .results import CheckResult

MAX_STRING = 255
_TTL = re.compile(r'^[0-9]+[0-9smhdwSMHDW]*$')
_CLASSES = frozenset({'IN', 'CH', 'HS', 'CS', 'NONE', 'ANY'})


class Token(NamedTuple):
    value: bytes
    """Unescaped."""
    line: int


class LongString(NamedTuple):
    line: int
    owner: str
    rtype: str
    size: int


def _escape(data: bytes, index: int, into: bytearray) -> int:
    """Unescape ``\\DDD`` or ``\\X`` at ``index`` into ``into``; the index after it."""
    digits = data[index + 1 : index + 4]
    if len(digits) == 3 and digits.isdigit():
        into.append(int(digits) & 0xFF)
        return index + 4
    into += data[index + 1 : index + 2]
    return index + 2


def _quoted(data: bytes, index: int, into: bytearray) -> tuple[int, int]:
    """Read a quoted string whose opening quote is at ``index``: (index after it, newlines inside)."""
    index += 1
    newlines = 0
    while index < len(data):
        char = data[index : index + 1]
        if char == b'\\':
            index = _escape(data, index, into)
            continue
        if char == b'"':
            return index + 1, newlines
        newlines += char == b'\n'
        into += char
        index += 1
    return index, newlines


def _records(text: str) -> Iterator[tuple[bool, list[Token]]]:
    """Logical records: (owner left blank, tokens), parentheses joined, comments dropped."""
    data = text.encode()
    tokens: list[Token] = []
    current = bytearray()
    in_token = blank_owner = False
    depth, line, index = 0, 1, 0

    def end_token() -> None:
        nonlocal in_token
        if in_token:
            tokens.append(Token(bytes(current), line))
            current.clear()
            in_token = False

    while index < len(data):
        char = data[index : index + 1]
        if depth == 0 and not tokens and not in_token and (index == 0 or data[index - 1 : index] == b'\n'):
            blank_owner = char in (b' ', b'\t')
        if char == b'\\':
            index, in_token = _escape(data, index, current), True
            continue
        if char == b'"':
            end_token()
            index, newlines = _quoted(data, index, current)
            in_token = True
            end_token()
            line += newlines
            continue
        if char == b';':
            end = data.find(b'\n', index)
            index = len(data) if end < 0 else end
            continue
        if char in (b'(', b')'):
            end_token()
            depth = max(0, depth + (1 if char == b'(' else -1))
        elif char == b'\n':
            end_token()
            line += 1
            if depth == 0 and tokens:
                yield blank_owner, tokens
                tokens = []
        elif char in (b' ', b'\t', b'\r'):
            end_token()
        else:
            current += char
            in_token = True
        index += 1
    end_token()
    if tokens:
        yield blank_owner, tokens


def long_strings(text: str) -> tuple[int, list[LongString]]:
    """(TXT/SPF records seen, every character-string over 255 bytes) in a zone file's text."""
    owner = '@'
    seen = 0
    found: list[LongString] = []
    for blank_owner, tokens in _records(text):
        if tokens[0].value.startswith(b'$'):
            continue
        if not blank_owner:
            owner = tokens[0].value.decode('utf-8', 'replace')
            tokens = tokens[1:]
        fields = list(tokens)
        while fields and (_TTL.match(text := fields[0].value.decode('latin-1')) or text.upper() in _CLASSES):
            fields = fields[1:]
        if not fields:
            continue
        rtype = fields[0].value.decode('latin-1').upper()
        if rtype not in ('TXT', 'SPF'):
            continue
        seen += 1
        found += [
            LongString(token.line, owner, rtype, len(token.value))
            for token in fields[1:]
            if len(token.value) > MAX_STRING
        ]
    return seen, found


def check(zone_files: Mapping[str, str]) -> list[CheckResult]:
    """One ``zone-text`` result per zone file (name -> text)."""
    results = []
    for name, text in zone_files.items():
        seen, found = long_strings(text)
        if not found:
            reason = f'{seen} TXT record{"" if seen == 1 else "s"}, every character-string at most {MAX_STRING} bytes'
            results.append(CheckResult('zone-text', name, 'pass', reason))
            continue
        first = found[0]
        more = f' (and {len(found) - 1} more)' if len(found) > 1 else ''
        results.append(
            CheckResult(
                'zone-text',
                name,
                'fail',
                f'line {first.line}: {first.owner} {first.rtype} has a character-string of {first.size} bytes{more}; '
                f'RFC 1035 allows {MAX_STRING} and BIND refuses the zone: write it as several quoted strings',
            )
        )
    return results
