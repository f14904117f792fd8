"""Typed validation of Postfix parameter values: refuse what would make a Postfix daemon exit.

``postfix check`` and postconf's warnings catch unknown parameters and a few numbers, but not a value a daemon
reads only when it starts: ``maximal_queue_lifetime = 5 days`` passes both and then every qmgr(8) exits with
"fatal: bad time value". This module checks each value by the type of its parameter.

Where the types come from:

- Postfix itself, ``postconf -d``: the default value tells the type (postconf(5), "time units", "bool", numbers).
  A default like ``5d`` or ``300s`` is a time with that default unit, ``yes``/``no`` a boolean, a whole number an
  integer, a ``$name`` default the type of ``name`` (the per-transport parameters of master.cf services default
  to the ``default_*`` ones), and a ``${{...} ? {yes} : {no}}`` expression the type of its alternatives.
- ``postconf -m``: the lookup table types this Postfix supports.
- The small tables below, for what a default cannot tell: enumerations, sizes, the numbers that are not integers,
  the parameters that name tables or milters. Each cites postconf(5) (Postfix 3.7).

The syntax each type must have is Postfix's own conversion code: conv_time() (a whole number and at most one unit
letter s, m, h, d or w; without a letter the parameter's default unit), mail_conf_int/long (a whole number that
fits a C int or long), mail_conf_bool (yes or no, any case).
"""

from __future__ import annotations

import os
import re
import socket
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    'ENUMS',
    'MILTER_PARAMETERS',
    'Connector',
    'Types',
    'kind_of',
    'milter_problems',
    'reach',
    'split_list',
    'table_problems',
    'value_problems',
]

INT_MAX = 2**31 - 1
LONG_MAX = 2**63 - 1
TIME_UNITS = {'s': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 604800}

SMTP_TLS_LEVELS = ('none', 'may', 'encrypt', 'dane', 'dane-only', 'fingerprint', 'verify', 'secure')
"""postconf(5) smtp_tls_security_level: the client's levels (also lmtp_tls_security_level)."""
SMTPD_TLS_LEVELS = ('none', 'may', 'encrypt')
"""postconf(5) smtpd_tls_security_level: the server's levels (also postscreen_tls_security_level)."""

ENUMS: dict[str, tuple[str, ...]] = {
    'smtp_tls_security_level': ('', *SMTP_TLS_LEVELS),
    'lmtp_tls_security_level': ('', *SMTP_TLS_LEVELS),
    'smtpd_tls_security_level': ('', *SMTPD_TLS_LEVELS),
    'postscreen_tls_security_level': ('', *SMTPD_TLS_LEVELS),
    # postconf(5) milter_default_action
    'milter_default_action': ('accept', 'reject', 'tempfail', 'quarantine'),
    # postconf(5) mynetworks_style
    'mynetworks_style': ('host', 'subnet', 'class'),
    # postconf(5) smtp_address_preference, lmtp_address_preference
    'smtp_address_preference': ('any', 'ipv4', 'ipv6'),
    'lmtp_address_preference': ('any', 'ipv4', 'ipv6'),
}
"""Parameters with a fixed set of values (any case, as Postfix compares them); ``''`` where the empty default is
allowed. Not here: what OpenSSL decides (the fingerprint digests, the cipher lists)."""

LIST_ENUMS: dict[str, tuple[str, ...]] = {
    # postconf(5) inet_protocols: "all", or a list of ipv4 and ipv6
    'inet_protocols': ('all', 'ipv4', 'ipv6'),
}
"""Parameters whose value is a list of words from a fixed set."""

NOT_INTEGERS = re.compile(
    r'compatibility_level|mail_release_date|mail_version|process_id|process_name'
    # postconf(5) default_destination_concurrency_{negative,positive}_feedback: "1/concurrency" or a fraction
    r'|.*_concurrency_(negative|positive)_feedback'
    # postconf(5) lmtp_tcp_port: a number or a service name
    r'|lmtp_tcp_port'
)
"""Parameters with a numeric default whose values are not plain integers."""

SIZES = re.compile(r'.*_size_limit|.*_buffer_size|lmdb_map_size|queue_minfree|virtual_mailbox_limit')
"""Sizes in bytes (postconf(5): message_size_limit, mailbox_size_limit, ...): whole numbers without a unit."""

TABLE_PARAMETERS = re.compile(r'.*_maps|.*_checks|.*_status_filter|.*_reply_filter|.*_restrictions|mynetworks')
"""Parameters that name lookup tables (postconf(5): every *_maps, header_checks, smtp_delivery_status_filter,
the check_*_access features of the restriction lists); a ``type:name`` there must be a supported type."""

ONLY_TABLES = re.compile(r'.*_maps|.*_checks|.*_status_filter|.*_reply_filter')
"""Parameters whose every item is a ``type:name`` table (not the restriction lists, not mynetworks)."""

CREATED_TABLES = re.compile(r'.*_database|.*_cache_map|address_verify_map|.*_cache')
"""Tables Postfix creates itself (caches, alias_database): they need not exist before the start."""

MILTER_PARAMETERS = ('smtpd_milters', 'non_smtpd_milters')
"""postconf(5) smtpd_milters, non_smtpd_milters: lists of milter addresses."""

MILTER_SETTINGS = ('command_timeout', 'connect_timeout', 'content_timeout', 'default_action', 'protocol')
"""The per-milter settings of the ``{ address, name=value ... }`` form (postconf(5) smtpd_milters, Postfix 3.0)."""

CONTAINER_TABLES = ('pipemap', 'unionmap')
"""Table types whose ``{...}`` argument is a list of tables."""
VALUE_TABLES = ('inline', 'static', 'randmap', 'fail', 'environ', 'internal', 'unix', 'nis', 'tcp', 'socketmap')
"""Table types whose argument is not a file (values, a service, a system database)."""
FILE_SUFFIXES = {'hash': '.db', 'btree': '.db', 'lmdb': '.lmdb', 'cdb': '.cdb', 'dbm': '.pag', 'sdbm': '.pag'}
"""Indexed tables: the file Postfix opens is the name with this suffix (postmap(1))."""

Connector = Callable[[str, str], 'str | None']
"""Tries a milter: (family, address) -> why it cannot be reached, or None."""

TABLE_TOKEN = re.compile(r'([a-z][a-z0-9_]*):(.+)', re.S)


@dataclass(frozen=True)
class Types:
    """What Postfix says about itself: the defaults (``postconf -d``) and the table types (``postconf -m``)."""

    defaults: Mapping[str, str]
    table_types: frozenset[str]


def kind_of(name: str, defaults: Mapping[str, str], _seen: frozenset[str] = frozenset()) -> str:
    """The type of parameter ``name``: enum, list-enum, milter, table, time:<unit>, size, integer, boolean, or text."""
    if name in ENUMS:
        return 'enum'
    if name in LIST_ENUMS:
        return 'list-enum'
    if name in MILTER_PARAMETERS:
        return 'milter'
    if TABLE_PARAMETERS.fullmatch(name):
        return 'table'
    default = defaults.get(name)
    if default is None or name in _seen or NOT_INTEGERS.fullmatch(name):
        return 'text'
    reference = re.fullmatch(r'\$\{?(\w+)\}?', default)
    if reference:
        return kind_of(reference.group(1), defaults, _seen | {name})
    if default.startswith('${{'):
        branches = re.search(r'\?\s*\{([^{}]*)\}\s*:\s*\{([^{}]*)\}\s*\}$', default)
        alternatives = set(branches.groups()) if branches else set()
        if alternatives and alternatives <= {'yes', 'no'}:
            return 'boolean'
        return 'text'
    time = re.fullmatch(r'\d+([smhdw])', default)
    if time:
        return f'time:{time.group(1)}'
    if default in ('yes', 'no'):
        return 'boolean'
    if re.fullmatch(r'-?\d+', default):
        return 'size' if SIZES.fullmatch(name) else 'integer'
    return 'text'


def split_list(value: str) -> list[str]:
    """A Postfix list (commas and white space), ``{...}`` groups kept whole."""
    items: list[str] = []
    current, depth = '', 0
    for char in value:
        if char == '{':
            depth += 1
        elif char == '}':
            depth = max(depth - 1, 0)
        if depth == 0 and (char == ',' or char.isspace()):
            if current:
                items.append(current)
            current = ''
            continue
        current += char
    if current:
        items.append(current)
    return items


def _time_problem(value: str, unit: str) -> str | None:
    match = re.fullmatch(r'(\d+)([smhdw]?)', value)
    if not match:
        return (
            f'not a Postfix time: a whole number with at most one unit letter (s, m, h, d or w; '
            f'without one, {unit}), like 5d or 300s'
        )
    if int(match.group(1)) * TIME_UNITS[match.group(2) or unit] > INT_MAX:
        return f'time too large: at most {INT_MAX} seconds'
    return None


def _number_problem(value: str, kind: str) -> str | None:
    if kind == 'size':
        if not re.fullmatch(r'\d+', value):
            return 'not a size: a whole number of bytes, without a unit (10240000, not 10MB)'
        return None if int(value) <= LONG_MAX else 'size too large'
    if not re.fullmatch(r'-?\d+', value):
        return 'not an integer: a whole number'
    return None if abs(int(value)) <= INT_MAX else f'integer too large: at most {INT_MAX}'


def value_problems(name: str, value: str, types: Types, *, connector: Connector | None = None) -> list[str]:
    """Why ``value`` of parameter ``name`` would make a daemon fail, or nothing if it would not (or is not typed)."""
    kind = kind_of(name, types.defaults)
    if kind == 'enum':
        choices = ENUMS[name]
        if value.strip().lower() not in choices:
            return [f'must be one of: {", ".join(choice or "(empty)" for choice in choices)}']
        return []
    if kind == 'list-enum':
        words = split_list(value.lower())
        unknown = [word for word in words if word not in LIST_ENUMS[name]]
        if unknown or not words:
            return [f'must be a list of: {", ".join(LIST_ENUMS[name])}']
        return []
    if kind == 'milter':
        return milter_problems(value, connector=connector)
    if kind == 'table':
        return table_problems(name, value, types.table_types)
    if kind.startswith('time:'):
        problem = _time_problem(value.strip(), kind[5:])
    elif kind in ('size', 'integer'):
        problem = _number_problem(value.strip(), kind)
    elif kind == 'boolean':
        problem = None if value.strip().lower() in ('yes', 'no') else 'not a boolean: yes or no'
    else:
        problem = None
    problems = [problem] if problem else []
    # Any parameter may name tables (relay_domains, mydestination, ...): the ones it names must exist.
    return problems + table_problems(name, value, types.table_types, unknown_types=False)


def _tables(value: str) -> Iterable[tuple[str, str]]:
    """Every ``(type, name)`` a value refers to, with proxy: and pipemap/unionmap resolved."""
    for item in split_list(value):
        match = TABLE_TOKEN.fullmatch(item)
        if not match:
            continue
        kind, rest = match.groups()
        if kind == 'proxy':
            yield from _tables(rest)
        elif kind in CONTAINER_TABLES:
            yield kind, rest
            if rest.startswith('{') and rest.endswith('}'):
                yield from _tables(rest[1:-1])
        else:
            yield kind, rest


def table_problems(name: str, value: str, table_types: frozenset[str], *, unknown_types: bool = True) -> list[str]:
    """Tables a value names that Postfix cannot open: an unsupported type, or a file that does not exist."""
    problems: list[str] = []
    if unknown_types and ONLY_TABLES.fullmatch(name):
        problems += [
            f'{item}: not a lookup table: type:name, like hash:/etc/postfix/{name}'
            for item in split_list(value)
            if not TABLE_TOKEN.fullmatch(item)
        ]
    for kind, table in _tables(value):
        if kind not in table_types:
            if unknown_types and _looks_like_table(name, value, kind, table):
                supported = ', '.join(sorted(table_types))
                problems.append(f'{kind}:{table}: unsupported lookup table type "{kind}" (postconf -m: {supported})')
            continue
        if kind in CONTAINER_TABLES or kind in VALUE_TABLES or not table.startswith('/'):
            continue
        if CREATED_TABLES.fullmatch(name):
            continue
        path = table + FILE_SUFFIXES.get(kind, '')
        # The role builds the aliases database (postalias) after it installed main.cf: its source must exist.
        if name == 'alias_maps' and os.path.isfile(table):
            continue
        if not os.path.isfile(path):
            problems.append(f'{kind}:{table}: the table does not exist ({path})')
    return problems


def _looks_like_table(name: str, value: str, kind: str, table: str) -> bool:
    """In a restriction list only the argument of check_*_access is a table (check_policy_service takes inet:)."""
    if not name.endswith('_restrictions') and name != 'mynetworks':
        return True
    items = split_list(value)
    if f'{kind}:{table}' not in items:
        return True
    index = items.index(f'{kind}:{table}')
    return index > 0 and re.fullmatch(r'check_\w+_access', items[index - 1]) is not None


def reach(family: str, address: str) -> str | None:
    """Whether a milter answers a connection within 2 seconds (only opens and closes it)."""
    try:
        if family == 'unix':
            try:
                mode = os.stat(address).st_mode
            except OSError as error:
                return f'no socket at {address} ({error.strerror})'
            if not stat.S_ISSOCK(mode):
                return f'{address} is not a socket'
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                client.settimeout(2)
                client.connect(address)
            return None
        host, _, port = address.rpartition(':')
        with socket.create_connection((host.strip('[]'), int(port)), timeout=2):
            return None
    except OSError as error:
        return f'cannot connect to {family}:{address} ({error.strerror or error})'


def milter_problems(value: str, *, connector: Connector | None = None) -> list[str]:
    """Each milter of a smtpd_milters-style list: its address syntax, its settings, and, given a ``connector``
    (``reach``), whether it answers."""
    problems: list[str] = []
    for item in split_list(value):
        address, settings = item, []
        if item.startswith('{'):
            if not item.endswith('}'):
                problems.append(f'{item}: unbalanced braces')
                continue
            parts = [part.strip() for part in item[1:-1].split(',') if part.strip()]
            if not parts:
                problems.append('{}: a milter group without an address')
                continue
            address, settings = parts[0], parts[1:]
        for setting in settings:
            key = setting.split('=', 1)[0].strip()
            if '=' not in setting or key not in MILTER_SETTINGS:
                problems.append(f'{item}: unknown milter setting "{setting}" (known: {", ".join(MILTER_SETTINGS)})')
        family, _, rest = address.partition(':')
        if family in ('unix', 'local') and rest:
            if connector and rest.startswith('/'):
                reason = connector('unix', rest)
                if reason:
                    problems.append(f'{address}: {reason}')
            continue
        inet = re.fullmatch(r'(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]*):(\d+)', rest)
        if family in ('inet', 'inet6') and inet and 0 < int(inet.group(2)) < 65536:
            if connector:
                reason = connector('inet', rest)
                if reason:
                    problems.append(f'{address}: {reason}')
            continue
        problems.append(f'{address}: not a milter address: unix:/path/to/socket or inet:host:port')
    return problems
