"""Read and write the contract: strict, complete error reports, deterministic output.

``load_contract`` checks the version first, then every value against the dataclasses in ``schema`` (types,
unknown and missing keys), then the references between sections, and reports every problem at once,
each with its JSON path (``$.streams[0].injection.port``). JSON the parser cannot use is one problem: not valid,
a key twice in one object (json would keep the last silently), an integer of more than 4300 digits, nesting deeper
than the interpreter's recursion limit.
"""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

from .schema import CONTRACT_VERSION, Contract

T = TypeVar('T')

SUPPORTED_VERSIONS = frozenset({1, 2, 3, 4, 5, CONTRACT_VERSION})
"""Versions this agent reads. A version changes with every change of the schema (docs/agent-contract.md);
versions 1 to 5 lack only keys that have defaults, so they still load."""

_PASSWORD_IN_DSN = re.compile(r'(?:^|[\s?&])password\s*=|://[^/@\s]*:[^/@\s]*@', re.IGNORECASE)

_SECRET_FILES = frozenset(
    {
        '$.store.password_file',
        '$.blocklists.dqs_key_file',
        '$.suppression.signing_key_file',
        '$.retention.hash_key_file',
        '$.unsubscribe.tls_key_file',
        '$.webhook.secret_file',
    }
)


class ContractError(Exception):
    """The contract cannot be used; ``problems`` lists every reason, each starting with its JSON path."""

    def __init__(self, source: str, problems: list[str], unreadable: bool = False) -> None:
        self.source = source
        self.problems = problems
        self.unreadable = unreadable
        """True when the file could not be read at all (rather than read and found wrong)."""
        super().__init__(f'{source}: ' + '; '.join(problems))


def load_contract(source: str | Path | Mapping[str, Any]) -> Contract:
    """Load a contract from a path, from JSON text, or from an already parsed mapping.

    A ``str`` that starts with ``{`` (after white space) is JSON text; any other ``str`` is a path.
    Raises ``ContractError`` with every problem found.
    """
    if isinstance(source, Mapping):
        name, data = '<contract>', source
    else:
        name, data = _read(source)
    version = data.get('version') if isinstance(data, Mapping) else None
    if isinstance(data, Mapping) and type(version) is int and version not in SUPPORTED_VERSIONS:
        raise ContractError(name, [_version_message(version)])
    problems: list[str] = []
    contract = _convert(Contract, data, '$', problems)
    if not problems:
        _check_references(contract, problems)
    if problems:
        raise ContractError(name, problems)
    return typing.cast(Contract, contract)


def dump_contract(contract: Contract, memo: dict[int, tuple[Any, Any]] | None = None) -> dict[str, Any]:
    """The contract as plain JSON data (lists, dicts with sorted keys): what ``load_contract`` reads back.

    ``memo`` (the caller's, kept across calls: ``id`` of a section or tuple -> (it, its plain data)) gives a section
    object met again (e.g. one that several hosts' contracts share) the same plain object, converted once.
    """
    value = _plain(contract, memo)
    assert isinstance(value, dict)
    return value


def dump_contract_json(contract: Contract) -> str:
    """The contract as JSON text, as the agent role writes it: Ansible's ``to_nice_json(indent=2)``."""
    return json.dumps(dump_contract(contract), indent=2, sort_keys=True, separators=(',', ': '))


def _read(source: str | Path) -> tuple[str, Any]:
    if isinstance(source, str) and source.lstrip().startswith('{'):
        name, text = '<contract>', source
    else:
        path = Path(source)
        name = str(path)
        try:
            text = path.read_text(encoding='utf-8')
        except OSError as error:
            raise ContractError(name, [f'cannot read the contract: {error.strerror or error}'], True) from None
        except UnicodeDecodeError:
            raise ContractError(name, ['cannot read the contract: not UTF-8 text']) from None
    try:
        data = json.loads(text, object_pairs_hook=_object)
    except json.JSONDecodeError as error:
        problem = f'not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})'
        raise ContractError(name, [problem]) from None
    except _DuplicateKey as error:
        raise ContractError(name, [f'not a usable JSON object: the key {error} appears twice in one object']) from None
    except ValueError as error:  # an integer of more than 4300 digits
        raise ContractError(name, [f'not usable JSON: {error}'.split(';')[0]]) from None
    except RecursionError:
        raise ContractError(name, ['not usable JSON: arrays or objects nested too deeply']) from None
    if not isinstance(data, dict):
        raise ContractError(name, [f'$: expected a JSON object, got {_json_type(data)}'])
    return name, data


class _DuplicateKey(Exception):
    pass


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object; a key twice is refused (json keeps the last one silently, so a hand edit would be lost)."""
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(json.dumps(key))
            seen.add(key)
    return result


def _version_message(version: int) -> str:
    understood = ', '.join(str(v) for v in sorted(SUPPORTED_VERSIONS))
    if version > CONTRACT_VERSION:
        return (
            f'contract version {version} is newer than this agent understands ({understood}); '
            'upgrade mailinfra-agent to the version of the controller that rendered it'
        )
    return (
        f'contract version {version} is older than this agent understands ({understood}); '
        'render the contract again with the controller that matches this agent'
    )


def _json_type(value: Any) -> str:
    if value is None:
        return 'null'
    if isinstance(value, bool):
        return 'a boolean'
    if isinstance(value, int):
        return 'an integer'
    if isinstance(value, float):
        return 'a number'
    if isinstance(value, str):
        return 'a string'
    if isinstance(value, list):
        return 'an array'
    if isinstance(value, dict):
        return 'an object'
    return type(value).__name__


@cache
def _hints(cls: Any) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if hint is int:
        return 'an integer'
    if hint is bool:
        return 'a boolean'
    if hint is str:
        return 'a string'
    if hint is type(None):
        return 'null'
    if origin is Literal:
        return 'one of ' + ', '.join(json.dumps(arg) for arg in typing.get_args(hint))
    if origin in (Union, types.UnionType):
        return ' or '.join(_describe(arg) for arg in typing.get_args(hint))
    if origin is tuple:
        return 'an array'
    if origin is dict or dataclasses.is_dataclass(hint):
        return 'an object'
    return str(hint)  # pragma: no cover - every schema type is handled above


_INVALID = object()


def _convert(hint: Any, value: Any, path: str, problems: list[str]) -> Any:
    """``value`` converted to ``hint``; on a mismatch, a problem is added and ``_INVALID`` returned."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _convert_dataclass(hint, value, path, problems)
    if origin in (Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is not type(None) and _matches_shallow(option, value):
                return _convert(option, value, path, problems)
    elif origin is Literal:
        if any(type(value) is type(arg) and value == arg for arg in typing.get_args(hint)):
            return value
    elif origin is tuple:
        if isinstance(value, list):
            item = typing.get_args(hint)[0]
            items = [_convert(item, element, f'{path}[{index}]', problems) for index, element in enumerate(value)]
            return tuple(items)
    elif origin is dict:
        if isinstance(value, dict):
            item = typing.get_args(hint)[1]
            return {key: _convert(item, element, f'{path}.{key}', problems) for key, element in value.items()}
    elif hint in (int, str, bool):
        if type(value) is hint:
            return value
    else:  # pragma: no cover - every schema type is handled above
        raise TypeError(f'unsupported contract type {hint!r}')
    problems.append(f'{path}: expected {_describe(hint)}, got {_json_describe(value)}')
    return _INVALID


def _json_describe(value: Any) -> str:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return f'{_json_type(value)} ({json.dumps(value)})'
    return _json_type(value)


def _matches_shallow(hint: Any, value: Any) -> bool:
    """Whether ``value`` has the JSON shape of ``hint`` (its contents are checked by ``_convert``)."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint) or origin is dict:
        return isinstance(value, dict)
    if origin is tuple:
        return isinstance(value, list)
    if origin is Literal:
        return any(type(value) is type(arg) and value == arg for arg in typing.get_args(hint))
    return type(value) is hint


def _convert_dataclass(cls: type[T], value: Any, path: str, problems: list[str]) -> T | object:
    if not isinstance(value, dict):
        problems.append(f'{path}: expected an object, got {_json_describe(value)}')
        return _INVALID
    hints = _hints(typing.cast(Any, cls))
    fields = {item.name: item for item in dataclasses.fields(cls)}  # type: ignore[arg-type]
    arguments: dict[str, Any] = {}
    before = len(problems)
    for key in sorted(set(value) - set(fields)):
        problems.append(f'{path}.{key}: unknown key (known: {", ".join(fields)})')
    for name, item in fields.items():
        if name not in value:
            if item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING:
                problems.append(f'{path}.{name}: missing (expected {_describe(hints[name])})')
            continue
        arguments[name] = _convert(hints[name], value[name], f'{path}.{name}', problems)
    if len(problems) > before:
        return _INVALID
    return cls(**arguments)


_SCALARS = frozenset({str, int, bool, float, type(None)})


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _sorted_fields(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(sorted(item.name for item in dataclasses.fields(cls)))
    return names


def _plain(value: Any, memo: dict[int, tuple[Any, Any]] | None) -> Any:
    """Plain JSON data of ``value``, new lists and dicts unless ``memo`` has the object's (it keeps each object it
    holds alive, so that its ``id`` names no other)."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if memo is not None and (found := memo.get(id(value))) is not None:
        return found[1]
    scalars = _SCALARS  # scalars are tested here, not in a call per value (most values are scalars)
    if kind is tuple or kind is list:
        plain: Any = [item if type(item) in scalars else _plain(item, memo) for item in value]
    elif kind is dict:
        plain = {key: item if type(item := value[key]) in scalars else _plain(item, memo) for key in sorted(value)}
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        plain = {
            name: item if type(item := getattr(value, name)) in scalars else _plain(item, memo)
            for name in _sorted_fields(kind)
        }
    else:
        return value
    # Callers share what the memo returns and must not change it. Lists and dicts may change between calls, and the
    # empty tuple is one object that would turn every empty field into one list: neither is kept.
    if memo is not None and kind is not list and kind is not dict and value != ():
        memo[id(value)] = (value, plain)
    return plain


def _check_references(contract: Contract, problems: list[str]) -> None:
    """What types alone cannot say: unique names, references between sections, the store, secret files."""
    streams = _unique('$.streams', [stream.name for stream in contract.streams], problems)
    isps = _unique('$.isps', [isp.name for isp in contract.isps], problems)
    for index, stream in enumerate(contract.streams):
        _unique(f'$.streams[{index}].isps', [isp.isp for isp in stream.isps], problems)
        for position, isp in enumerate(stream.isps):
            if isp.isp not in isps:
                problems.append(f'$.streams[{index}].isps[{position}].isp: unknown ISP "{isp.isp}"')
        if not 1 <= stream.injection.port <= 65535:
            problems.append(f'$.streams[{index}].injection.port: {stream.injection.port} is not a TCP port')
    if not 1 <= contract.unsubscribe.port <= 65535:  # bind() raised OverflowError
        problems.append(f'$.unsubscribe.port: {contract.unsubscribe.port} is not a TCP port')
    if not 1 <= contract.exporter.port <= 65535:
        problems.append(f'$.exporter.port: {contract.exporter.port} is not a TCP port')
    _unique('$.ips', [ip.id for ip in contract.ips], problems)
    for index, ip in enumerate(contract.ips):
        if ip.stream is not None and ip.stream not in streams:
            problems.append(f'$.ips[{index}].stream: unknown stream "{ip.stream}"')
    _check_shared_labels(contract, streams, problems)
    _check_store(contract, problems)


def _check_shared_labels(contract: Contract, streams: set[str], problems: list[str]) -> None:
    """A shared (PostgreSQL) store's deployment labels: unique, holding the host's own (SQLite ignores them)."""
    shared, path = contract.exporter.shared_labels, '$.exporter.shared_labels'
    if shared is None or contract.store.backend != 'postgresql':
        return
    shared_streams = _unique(f'{path}.streams', list(shared.streams), problems)
    _unique(f'{path}.isps', list(shared.isps), problems)
    _unique(f'{path}.ips', [ip.id for ip in shared.ips], problems)
    _unique(f'{path}.ips', [ip.address for ip in shared.ips if ip.address is not None], problems)
    for name in sorted(streams - shared_streams):
        problems.append(f'{path}.streams: lacks the host\'s stream "{name}"')
    addresses = {ip.id: ip.address for ip in shared.ips}
    for index, ip in enumerate(contract.ips):
        if ip.id not in addresses:
            problems.append(f'{path}.ips: lacks the host\'s IP "{ip.id}" ($.ips[{index}])')
        elif addresses[ip.id] != ip.address:
            problems.append(f'{path}.ips: IP "{ip.id}" has another address than $.ips[{index}]')


def _check_store(contract: Contract, problems: list[str]) -> None:
    store = contract.store
    if store.backend == 'sqlite':
        if store.path is None or store.dsn is not None or store.password_file is not None:
            problems.append('$.store: the sqlite backend takes "path" only')
    elif store.dsn is None or store.path is not None:
        problems.append('$.store: the postgresql backend takes "dsn" (and "password_file"), not "path"')
    elif _PASSWORD_IN_DSN.search(store.dsn):
        problems.append('$.store.dsn: holds a password; put it in the file named by "password_file"')
    files = {
        '$.store.path': store.path,
        '$.store.password_file': store.password_file,
        '$.blocklists.dqs_key_file': contract.blocklists.dqs_key_file,
        '$.suppression.signing_key_file': contract.suppression.signing_key_file,
        '$.retention.hash_key_file': contract.retention.hash_key_file,
        '$.unsubscribe.tls_certificate_file': contract.unsubscribe.tls_certificate_file,
        '$.unsubscribe.tls_key_file': contract.unsubscribe.tls_key_file,
        '$.webhook.secret_file': contract.webhook.secret_file,
    }
    for index, old in enumerate(contract.suppression.old_signing_key_files):
        files[f'$.suppression.old_signing_key_files[{index}]'] = old  # a key: not shown either (below)
    for index, maildir in enumerate(contract.feedback_maildirs):
        files[f'$.feedback_maildirs[{index}]'] = maildir
    for index, log in enumerate(contract.logs):
        files[f'$.logs[{index}].path'] = log.path
    for path, value in files.items():
        if value is not None and not value.startswith('/'):
            # a secret file's "path" that is no path may be the secret itself: not shown
            secret = path in _SECRET_FILES or path.startswith('$.suppression.old_signing_key_files[')
            shown = '(the value is not shown)' if secret else f'"{value}"'
            problems.append(f'{path}: {shown} is not an absolute path')


def _unique(path: str, names: list[str], problems: list[str]) -> set[str]:
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name in seen:
            problems.append(f'{path}[{index}]: "{name}" appears twice')
        seen.add(name)
    return seen
