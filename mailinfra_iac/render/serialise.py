"""Deterministic serialisation shared by the renderers.

``to_yaml`` is a small block-style emitter for plain data (dicts with string keys, lists, strings, numbers,
booleans, None). It is several times faster than PyYAML's representer on large inventories; strings that a
YAML 1.1 reader (Ansible uses PyYAML) could take for anything but a string are double-quoted.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

_PLAIN = re.compile(r'^[A-Za-z_/][A-Za-z0-9_./@+=-]*$|^\.[A-Za-z0-9_-]+\.[A-Za-z0-9_./-]+$')
_RESERVED = frozenset(['y', 'n', 'yes', 'no', 'on', 'off', 'true', 'false', 'null', 'nan', 'inf'])


# characters YAML cannot hold raw in a double-quoted scalar (non-printables, and NEL/LS/PS line breaks)
_NON_PRINTABLE = re.compile('[^\t\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]')


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f'\\u{code:04x}' if code <= 0xFFFF else f'\\U{code:08x}'


_quoted = json.encoder.encode_basestring
"""``json.dumps(value, ensure_ascii=False)`` of a string, without the encoder that call builds each time."""


def _string(value: str) -> str:
    """A string as a YAML scalar: plain where no YAML 1.1 reader could take it for something else."""
    if _PLAIN.fullmatch(value) and value.lower() not in _RESERVED:
        return value
    quoted = _quoted(value)
    if quoted.isascii() and '\x7f' not in quoted:  # JSON escaped every other ASCII character YAML cannot hold
        return quoted
    return _NON_PRINTABLE.sub(_escape, quoted)


class _Strings(dict[str, str]):
    """String -> its YAML scalar, filled on first use: the emitter's cache, kept for one render (``Shared``) or
    one document. A render writes the same names, addresses and keys many times; a cache that lives as long as
    the render has no size to outgrow (a process-wide LRU of 65,536 missed ~300,000 times per 10x render) and
    keeps nothing once the render is done."""

    def __missing__(self, value: str) -> str:
        written = self[value] = _string(value)
        return written


def _scalar(value: Any) -> str:
    if type(value) is str:
        return _string(value)
    if value is None:
        return 'null'
    if value is True:
        return 'true'
    if value is False:
        return 'false'
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ValueError(f'cannot write {value!r}')
        text = repr(value)
        if 'e' in text and '.' not in text:  # YAML 1.1 floats need a dot: 1e-05 -> 1.0e-05
            mantissa, _, exponent = text.partition('e')
            text = f'{mantissa}.0e{exponent}'
        return text
    if isinstance(value, str):
        return _string(value)
    raise TypeError(f'cannot write {type(value).__name__} values to YAML')


class Shared:
    """Data objects that several files of one render contain, the same object in each (e.g. the parts of the agent
    contract that many hosts share): each is written to YAML once per indentation and checked for orjson once.

    The objects must not change while it is in use; it keeps each one alive, so that its ``id`` names no other.
    """

    def __init__(self) -> None:
        self._yaml: dict[int, tuple[Any, dict[str, list[str]]]] = {}
        self._json_checked: set[int] = set()
        self._strings = _Strings()

    def clear(self) -> None:
        self._yaml.clear()
        self._json_checked.clear()
        self._strings.clear()

    def add(self, value: Any) -> None:
        """Share ``value`` (a dict or list) from now on."""
        if id(value) not in self._yaml:
            self._yaml[id(value)] = (value, {})


def _emit(value: Any, indent: str, lines: list[str], shared: Shared | None, strings: _Strings) -> None:
    """Append the block lines of a non-empty dict or list at ``indent``.

    The common cases (string values, nested plain dicts and lists) are tested first by exact type: the
    inventory renderer spends most of its time here (benchmarks/render). A shared object's lines are reused.
    """
    if shared is not None:
        found = shared._yaml.get(id(value))
        if found is not None:
            written = found[1].get(indent)
            if written is None:
                start = len(lines)
                _emit_block(value, indent, lines, shared, strings)
                found[1][indent] = lines[start:]
            else:
                lines.extend(written)
            return
    _emit_block(value, indent, lines, shared, strings)


def _emit_block(value: Any, indent: str, lines: list[str], shared: Shared | None, strings: _Strings) -> None:
    append = lines.append
    string = strings.__getitem__
    inner = indent + '  '
    if isinstance(value, dict):
        for key in sorted(value):
            if type(key) is not str and not isinstance(key, str):
                raise TypeError(f'mapping keys must be strings, got {key!r}')
            item = value[key]
            kind = type(item)
            if kind is str:
                append(f'{indent}{string(key)}: {string(item)}')
            elif (kind is dict or kind is list or isinstance(item, dict | list)) and item:
                append(f'{indent}{string(key)}:')
                _emit(item, inner, lines, shared, strings)
            elif kind is int:
                append(f'{indent}{string(key)}: {item}')
            else:
                append(f'{indent}{string(key)}: {_inline(item)}')
        return
    for item in value:
        kind = type(item)
        if kind is str:
            append(f'{indent}- {string(item)}')
        elif (kind is dict or kind is list or isinstance(item, dict | list)) and item:
            start = len(lines)
            _emit(item, inner, lines, shared, strings)
            lines[start] = f'{indent}- {lines[start][len(inner) :]}'  # the item's first line follows the dash
        elif kind is int:
            append(f'{indent}- {item}')
        else:
            append(f'{indent}- {_inline(item)}')


def _inline(value: Any) -> str:
    if isinstance(value, dict):
        return '{}'
    if isinstance(value, list):
        return '[]'
    return _scalar(value)


def to_yaml(data: Any, header: str = '', shared: Shared | None = None) -> bytes:
    """Block-style YAML with sorted keys, no aliases, and a comment header.

    With ``shared`` (the render's), shared objects are written once and the string cache lasts the render."""
    lines = [f'# {line}' if line else '#' for line in header.splitlines()]
    lines.append('---')
    if isinstance(data, dict | list) and data:
        _emit(data, '', lines, shared, shared._strings if shared is not None else _Strings())
    else:
        lines.append(_inline(data))
    lines.append('')  # the final newline, without copying the joined text once more
    return '\n'.join(lines).encode('utf-8')


_ORJSON_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE
_INT64 = range(-(2**63), 2**64)


def _orjson_writes_it_alike(data: Any, shared: Shared | None = None) -> bool:
    """Whether orjson writes ``data`` byte for byte as ``json.dumps(indent=2, sort_keys=True)`` would.

    They differ only on floats (``1e-05`` against ``0.00001``), integers beyond 64 bits and keys that
    are not strings (orjson refuses both), and subclasses of the plain types; data with any of those
    takes the standard library's path. A shared object found alike once is not walked again.
    """
    checked, known = (shared._json_checked, shared._yaml) if shared is not None else (set(), {})
    met: list[int] = []
    stack = [data]
    while stack:
        value = stack.pop()
        kind = type(value)
        if kind is dict or kind is list:
            if checked or known:
                ident = id(value)
                if ident in checked:
                    continue
                if ident in known:
                    met.append(ident)
            if kind is dict:
                for key in value:
                    if type(key) is not str:
                        return False
                stack.extend(value.values())
            else:
                stack.extend(value)
        elif kind is int:
            if value not in _INT64:
                return False
        elif kind is not str and value is not None and kind is not bool:
            return False
    checked.update(met)
    return True


def to_json(data: Any, shared: Shared | None = None) -> bytes:
    """JSON with sorted keys and two-space indents, ending in a newline.

    orjson writes the large files (the Terraform root is about 2 MB at the 1x benchmark scale) about 30 times
    faster than the standard library's pure-Python indenting encoder; ``tests/render/test_serialise.py``
    checks the two agree.
    """
    if _orjson_writes_it_alike(data, shared):
        return orjson.dumps(data, option=_ORJSON_OPTIONS)
    return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + '\n').encode('utf-8')
