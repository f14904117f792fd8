#!/usr/bin/env python3
"""A structural checker for PowerMTA configuration files (``/etc/pmta/config``).

PowerMTA has no configuration check that our reference confirms, so the role validates the file with this
checker before it replaces the old one. It knows only the directives and blocks listed in
``docs/powermta.md`` (taken from the PowerMTA section of our MTA reference: User's Guide copies, the
directive reference [DIR], release notes and real configs). Anything else is reported, so an invented
directive cannot slip through. It checks structure and references, not what PowerMTA will do:

- every block is closed, and sits where it may (``<domain>`` at the top or in a VMTA or pool);
- every directive is known and allowed in its block, and its value has the documented form;
- every ``<virtual-mta>`` belongs to a pool, pool members exist, every pool is selected by a source's
  ``default-virtual-mta`` or can be selected with the ``X-Virtual-MTA`` header (``process-x-virtual-mta``);
- every ``<domain $NAME>`` names a ``domain-macro``, every ``smtp-pattern-list`` and ``queue-to`` target exists;
- every ``<smtp-user>`` names a ``<source {NAME}>`` that exists, and no two listeners share an address and port.

Lines between ``# mailinfra: unchecked-begin`` and ``# mailinfra: unchecked-end`` may hold directives this
checker does not know (a user's additions); their nesting is still checked.

The role runs it on the host as ``mailinfra-agent powermta-check /etc/pmta/config`` (exit 0: no problems,
1: problems, 2: usage or unreadable file). The module imports nothing outside the standard library, so it also
runs as a standalone script (``python3 checker.py CONFIG``); the Molecule stand-in for PowerMTA does that.
"""

from __future__ import annotations

import ipaddress
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

__all__ = [
    'BLOCKS',
    'DIRECTIVES',
    'Block',
    'ConfigProblem',
    'Directive',
    'check',
    'check_text',
    'main',
    'parse',
    'parse_duration',
    'parse_rate',
    'report',
]

UNCHECKED_BEGIN = '# mailinfra: unchecked-begin'
UNCHECKED_END = '# mailinfra: unchecked-end'

# --- values -------------------------------------------------------------------------------------------------------

_DURATION = re.compile(r'^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$')
_UNIT_SECONDS = {'d': 86400, 'day': 86400, 'h': 3600, 'hr': 3600, 'm': 60, 'min': 60, 's': 1, 'sec': 1}
_RATE = re.compile(r'^(\d+)/(\d*)(d|day|h|hr|m|min|s|sec)$')
_UNLIMITED_RATES = frozenset({'unlimited', '0'})
_LISTENER = re.compile(r'^(.+):(\d+)$')
_AUTH_SOURCE = re.compile(r'^\{[A-Za-z0-9][A-Za-z0-9_.-]*\}$')
_USER = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.@+-]*$')
_ADDRESS = re.compile(r'^[^@\s,]+@[A-Za-z0-9.-]+$')
_NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]*$')
_DOMAIN = re.compile(r'^(?:\*|\$[A-Za-z0-9_-]+|[A-Za-z0-9_*](?:[A-Za-z0-9_.*-]*[A-Za-z0-9_])?)$')
_RECORD_TYPES = frozenset({'d', 'b', 't', 'tq', 'r', 'f', 'rb', 'rs'})
_BOOLEANS = frozenset({'yes', 'no', 'true', 'false'})
_HTTP_LEVELS = frozenset({'admin', 'monitor', 'none'})


def parse_duration(text: str) -> int:
    """Seconds of a PowerMTA time value such as ``10m``, ``2h`` or ``4d12h``; ``ValueError`` if malformed."""
    match = _DURATION.match(text)
    if not text or match is None or not any(match.groups()):
        raise ValueError(f'"{text}" is not a duration such as 10m, 2h or 4d12h')
    return sum(int(part) * seconds for part, seconds in zip(match.groups(), (86400, 3600, 60, 1), strict=True) if part)


def parse_rate(text: str) -> tuple[int, int]:
    """``(count, seconds)`` of a rate ``N/[M]{d|day|h|hr|m|min|s|sec}`` (``600/h``, ``100/10min``).

    ``ValueError`` if malformed. The unlimited forms (``unlimited``, ``0``) are no count per interval: the directives
    that take a rate accept them, this function does not.
    """
    match = _RATE.match(text)
    if match is None:
        raise ValueError(f'"{text}" is not a rate such as 600/h, 100/10m or 1/sec')
    count, multiple, unit = match.groups()
    return int(count), int(multiple or 1) * _UNIT_SECONDS[unit]


def _one(check: Callable[[str], str | None]) -> Callable[[list[str]], str | None]:
    def checker(words: list[str]) -> str | None:
        if len(words) != 1:
            return f'expects one value, got {len(words)}'
        return check(words[0])

    return checker


def _integer(low: int, high: int) -> Callable[[str], str | None]:
    def checker(word: str) -> str | None:
        if not (word.isascii() and word.isdigit()) or not low <= int(word) <= high:
            return f'"{word}" is not a whole number from {low} to {high}'
        return None

    return checker


def _duration(word: str) -> str | None:
    try:
        parse_duration(word)
    except ValueError as error:
        return str(error)
    return None


def _duration_or_never(word: str) -> str | None:
    return None if word == 'never' else _duration(word)


def _durations(word: str) -> str | None:
    for part in word.split(','):
        problem = _duration(part)
        if problem:
            return problem
    return None


def _rate(word: str) -> str | None:
    if word in _UNLIMITED_RATES:
        return None
    try:
        parse_rate(word)
    except ValueError as error:
        return str(error)
    return None


def _rates(word: str) -> str | None:
    for part in word.split(','):
        problem = _rate(part)
        if problem:
            return problem
    return None


def _count_or_unlimited(word: str) -> str | None:
    return None if word == 'unlimited' else _integer(0, 10**12)(word)


def _addresses(word: str) -> str | None:
    """A comma-separated list of e-mail addresses, or ``""`` for none."""
    if word == '""':
        return None
    bad = [address for address in word.split(',') if not _ADDRESS.match(address)]
    return f'"{bad[0]}" is not an e-mail address (a comma-separated list, or "" for none)' if bad else None


def _word(word: str) -> str | None:
    return None


def _secret(words: list[str]) -> str | None:
    # never quote the value: it is a password
    return None if len(words) == 1 else 'expects one value without spaces'


def _listener(word: str) -> str | None:
    """``IP:PORT``; ``0/0`` for every local address (IPv4 only: no IPv6 form is confirmed)."""
    match = _LISTENER.match(word)
    if match is None:
        return f'"{word}" is not IP:PORT (such as 0/0:2525 or 192.0.2.10:25)'
    address, port = match.groups()
    if not 1 <= int(port) <= 65535:
        return f'port {port} is not from 1 to 65535'
    if address != '0/0':
        try:
            ipaddress.IPv4Address(address)
        except ValueError:
            return f'"{address}" is not an IPv4 address or 0/0'
    return None


def _source_name(word: str) -> str | None:
    return None if _AUTH_SOURCE.match(word) else f'"{word}" is not a source name such as {{name}}'


def _source_argument(word: str) -> str | None:
    """A client network (``<source 10.0.0.0/8>``) or the name of an authenticated source (``<source {NAME}>``)."""
    return _source_name(word) if word.startswith('{') else _network(word)


def _user(word: str) -> str | None:
    return None if _USER.match(word) else f'"{word}" is not a user name ([A-Za-z0-9_.@+-])'


def _boolean(word: str) -> str | None:
    return None if word in _BOOLEANS else f'"{word}" is not yes, no, true or false'


def _name(word: str) -> str | None:
    return None if _NAME.match(word) else f'"{word}" is not a name ([A-Za-z0-9_.-])'


def _host(word: str) -> str | None:
    return None if _DOMAIN.match(word) and not word.startswith('$') else f'"{word}" is not a host or domain name'


def _network(word: str) -> str | None:
    if word == '0/0':  # every address, as the reference's sample writes it
        return None
    try:
        ipaddress.ip_network(word, strict=False)
    except ValueError:
        return f'"{word}" is not an address or CIDR network'
    return None


def _domain_argument(word: str) -> str | None:
    return None if _DOMAIN.match(word) else f'"{word}" is not a domain, * or $macro'


def _any(words: list[str]) -> str | None:
    return None if words else 'expects a value'


def _domain_macro(words: list[str]) -> str | None:
    if len(words) != 2:
        return 'expects a name and a comma-separated list of domains'
    problem = _name(words[0])
    if problem:
        return problem
    for domain in words[1].split(','):
        if not domain or _host(domain):
            return f'"{domain}" in the domain list is not a domain name'
    return None


def _http_access(words: list[str]) -> str | None:
    if len(words) != 2:
        return 'expects a network and one of admin, monitor, none'
    return _network(words[0]) or (None if words[1] in _HTTP_LEVELS else f'"{words[1]}" is not admin, monitor or none')


def _domain_key(words: list[str]) -> str | None:
    parts = ''.join(words).split(',')
    if len(words) != 1 or len(parts) != 3 or not all(parts):
        return 'expects SELECTOR,DOMAIN,KEYFILE'
    if not parts[2].startswith('/'):
        return f'key file "{parts[2]}" is not an absolute path'
    return _host(parts[1])


def _smtp_source_host(words: list[str]) -> str | None:
    if len(words) != 2:
        return 'expects an IP address and a host name'
    try:
        ipaddress.ip_address(words[0])
    except ValueError:
        return f'"{words[0]}" is not an IP address'
    return _host(words[1])


def _source_ip_limit(check: Callable[[str], str | None]) -> Callable[[list[str]], str | None]:
    def checker(words: list[str]) -> str | None:
        if len(words) != 2:
            return 'expects a CIDR network and a value'
        return _network(words[0]) or check(words[1])

    return checker


def _records(word: str) -> str | None:
    unknown = [kind for kind in word.split(',') if kind not in _RECORD_TYPES]
    return f'unknown record type(s) {", ".join(unknown)}' if unknown else None


def _record_fields(words: list[str]) -> str | None:
    if len(words) != 2:
        return 'expects record types and a comma-separated list of fields'
    return _records(words[0]) or (None if all(words[1].split(',')) else 'empty field name')


def _absolute(word: str) -> str | None:
    return None if word.startswith('/') else f'"{word}" is not an absolute path'


_REPLY_ACTION = re.compile(r'^(?:mode=backoff|disable-source-ip|defer-queue|reenable-after=(\S+))$')


def _reply(words: list[str]) -> str | None:
    # ``reply /REGEX/ ACTION...``: the regular expression may hold spaces, so look at the joined text.
    text = ' '.join(words)
    match = re.match(r'^/((?:\\.|[^\\/])*)/\s+(.+)$', text)
    if match is None:
        return 'expects /REGEX/ followed by an action such as mode=backoff'
    try:
        re.compile(match.group(1))
    except re.error as error:
        return f'invalid regular expression /{match.group(1)}/: {error}'
    for action in match.group(2).split():
        known = _REPLY_ACTION.match(action)
        if not known:
            return f'unknown action "{action}" (known: mode=backoff, disable-source-ip, reenable-after=, defer-queue)'
        if known.group(1) and (problem := _duration(known.group(1))):
            return f'reenable-after: {problem}'
    return None


Validator = Callable[[list[str]], str | None]

# --- the directive table: from the PowerMTA section of our reference only --------------------------------------------

_DOMAIN_DIRECTIVES: dict[str, Validator] = {
    'max-smtp-out': _one(_integer(1, 100000)),
    'backoff-max-smtp-out': _one(_integer(1, 100000)),
    'source-ip-max-smtp-out': _source_ip_limit(_integer(1, 100000)),
    'max-msg-per-connection': _one(_integer(0, 10000000)),
    'max-msg-rate': _one(_rate),
    'max-connect-rate': _one(_rate),
    'backoff-max-connect-rate': _one(_rate),
    'max-rcpt-per-message': _one(_count_or_unlimited),
    'source-ip-max-msg-rate': _source_ip_limit(_rate),
    'source-ip-max-connect-rate': _source_ip_limit(_rate),
    'retry-after': _one(_durations),
    'retry-recipients-after': _one(_duration),
    'retry-after-dns-error': _one(_duration),
    'bounce-after': _one(_duration),
    'queue-priority': _one(_integer(0, 100)),
    'max-cold-virtual-mta-msg': _one(_rates),  # "N/day" list, default 0/d
    'queue-to': _one(_host),
    'smtp-hosts': _any,
    'dkim-sign': _one(_boolean),
    'use-starttls': _one(_boolean),
    'require-starttls': _one(_boolean),
    'bounce-upon-no-mx': _one(_boolean),
    'disable-mx-rollup': _one(_boolean),
    'disable-acct-records': _one(_records),
    'smtp-pattern-list': _one(_name),
    'backoff-max-msg-rate': _one(_rate),
    'backoff-retry-after': _one(_duration),
    'backoff-to-normal-after': _one(_duration_or_never),
    'backoff-to-normal-after-delivery': _one(_boolean),
    'backoff-notify': _one(_addresses),
    'backoff-max-msg-per-hour': _one(_word),  # listed without a description or value form
    'disabled-source-ip-notify': _one(_addresses),
    'backoff-reroute-to-virtual-mta': _one(_name),
    'reenable-source-ip-after': _one(_duration),
    'backoff-upon-all-sources-disabled': _one(_boolean),
}

DIRECTIVES: dict[str, dict[str, Validator]] = {
    '': {
        'domain-macro': _domain_macro,
        'http-mgmt-port': _one(_integer(1, 65535)),
        'http-access': _http_access,
        'domain-key': _domain_key,
        'smtp-listener': _one(_listener),
    },
    'source': {
        'default-virtual-mta': _one(_name),
        'process-x-virtual-mta': _one(_boolean),
        'always-allow-relaying': _one(_boolean),
        'smtp-service': _one(_boolean),
        'require-auth': _one(_boolean),
        'max-message-size': _one(_count_or_unlimited),
        'log-connections': _one(_boolean),
        'log-commands': _one(_boolean),
        'add-received-header': _one(_boolean),
        'process-x-job': _one(_boolean),
        'process-x-envid': _one(_boolean),
    },
    'smtp-user': {'password': _secret, 'source': _one(_source_name)},
    'virtual-mta': {'smtp-source-host': _smtp_source_host},
    'virtual-mta-pool': {'virtual-mta': _one(_name)},
    'domain': _DOMAIN_DIRECTIVES,
    'smtp-pattern-list': {'reply': _reply},
    'acct-file': {
        'records': _one(_records),
        'record-fields': _record_fields,
        'move-to': _one(_absolute),
        'move-interval': _one(_duration),
    },
    'spool': {},
}
"""Known directives per block ('' is the top level) with a check of their values."""

BLOCKS: dict[str, tuple[Callable[[str], str | None], frozenset[str]]] = {
    'source': (_source_argument, frozenset({''})),
    'smtp-user': (_user, frozenset({''})),
    'virtual-mta': (_name, frozenset({''})),
    'virtual-mta-pool': (_name, frozenset({''})),
    'domain': (_domain_argument, frozenset({'', 'virtual-mta', 'virtual-mta-pool'})),
    'smtp-pattern-list': (_name, frozenset({''})),
    'acct-file': (_absolute, frozenset({''})),
    'spool': (_absolute, frozenset({''})),
}
"""Known blocks: a check of the block's argument and the blocks it may sit in ('' is the top level)."""

# --- parsing ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigProblem:
    """One finding, at a 1-based line, with a stable rule id."""

    line: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f'line {self.line}: {self.message} [{self.rule}]'


@dataclass(frozen=True)
class Directive:
    name: str
    words: tuple[str, ...]
    line: int
    checked: bool = True

    @property
    def value(self) -> str:
        return ' '.join(self.words)


@dataclass
class Block:
    """A block (``<name argument>``) or the top level (name '')."""

    name: str
    argument: str
    line: int
    parent: Block | None = None
    directives: list[Directive] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)

    def walk(self) -> Iterator[Block]:
        yield self
        for block in self.blocks:
            yield from block.walk()

    def values(self, name: str) -> list[Directive]:
        return [directive for directive in self.directives if directive.name == name]


def _strip_comment(text: str) -> str:
    """Drop a ``#`` comment (at the start or after white space), but not a ``#`` inside ``/.../`` of a reply."""
    in_regex = False
    escaped = False
    stripped = text.lstrip()
    regex_allowed = stripped.startswith('reply ')
    for index, char in enumerate(text):
        if escaped:
            escaped = False
            continue
        if char == '\\' and in_regex:
            escaped = True
        elif char == '/' and regex_allowed:
            in_regex = not in_regex
        elif char == '#' and not in_regex and (index == 0 or text[index - 1].isspace()):
            return text[:index]
    return text


_OPEN = re.compile(r'^<([A-Za-z][A-Za-z0-9-]*)(?:\s+(.*?))?\s*>$')
_CLOSE = re.compile(r'^</([A-Za-z][A-Za-z0-9-]*)\s*>$')


def _close(current: Block, line: str, number: int, problems: list[ConfigProblem]) -> Block:
    """Handle ``</name>``; return the block that is current afterwards."""
    match = _CLOSE.match(line)
    if match is None:
        problems.append(ConfigProblem(number, 'syntax', f'malformed closing tag "{line}"'))
    elif current.parent is None:
        problems.append(ConfigProblem(number, 'nesting', f'</{match.group(1)}> closes no open block'))
    elif match.group(1) != current.name:
        problems.append(
            ConfigProblem(
                number, 'nesting', f'</{match.group(1)}> does not close <{current.name}> opened on line {current.line}'
            )
        )
    else:
        return current.parent
    return current


def _open(current: Block, line: str, number: int, problems: list[ConfigProblem]) -> Block:
    """Handle ``<name argument>``; return the block that is current afterwards."""
    match = _OPEN.match(line)
    if match is None:
        problems.append(ConfigProblem(number, 'syntax', f'malformed block tag "{line}"'))
        return current
    name, argument = match.group(1), (match.group(2) or '').strip()
    block = Block(name, argument, number, current)
    current.blocks.append(block)
    if name not in BLOCKS:
        problems.append(ConfigProblem(number, 'unknown-block', f'unknown block <{name}>'))
        return block
    check_argument, parents = BLOCKS[name]
    if current.name not in parents:
        where = f'<{current.name}>' if current.name else 'the top level'
        problems.append(ConfigProblem(number, 'nesting', f'<{name}> is not allowed in {where}'))
    if not argument:
        problems.append(ConfigProblem(number, 'value', f'<{name}> needs an argument'))
    elif problem := check_argument(argument):
        problems.append(ConfigProblem(number, 'value', f'<{name}>: {problem}'))
    return block


def parse(text: str) -> tuple[Block, list[ConfigProblem]]:
    """The block tree of a configuration, and the problems of its syntax and nesting."""
    root = Block('', '', 0)
    current = root
    problems: list[ConfigProblem] = []
    unchecked = False
    for number, raw in enumerate(text.splitlines(), 1):
        if raw.strip() in (UNCHECKED_BEGIN, UNCHECKED_END):
            unchecked = raw.strip() == UNCHECKED_BEGIN
            continue
        line = _strip_comment(raw).strip()
        if not line:
            continue
        if line.startswith('</'):
            current = _close(current, line, number, problems)
        elif line.startswith('<'):
            current = _open(current, line, number, problems)
        else:
            name, *words = line.split()
            current.directives.append(Directive(name, tuple(words), number, checked=not unchecked))
    while current.parent is not None:
        problems.append(ConfigProblem(current.line, 'nesting', f'<{current.name}> is never closed'))
        current = current.parent
    return root, problems


# --- rules ------------------------------------------------------------------------------------------------------------


def _where(block_name: str) -> str:
    return f'<{block_name}>' if block_name else 'the top level'


def _directives(root: Block) -> Iterator[ConfigProblem]:
    for block in root.walk():
        known = DIRECTIVES.get(block.name)
        if known is None:
            continue  # an unknown block is reported once, by the parser
        for directive in block.directives:
            validator = known.get(directive.name)
            if validator is not None:
                problem = validator(list(directive.words))
                if problem:
                    yield ConfigProblem(directive.line, 'value', f'{directive.name}: {problem}')
            elif directive.checked:
                elsewhere = sorted(_where(name) for name, table in DIRECTIVES.items() if directive.name in table)
                if elsewhere:
                    message = (
                        f'"{directive.name}" is not allowed in {_where(block.name)} (only in {", ".join(elsewhere)})'
                    )
                    yield ConfigProblem(directive.line, 'misplaced-directive', message)
                else:
                    message = f'unknown directive "{directive.name}" in {_where(block.name)}'
                    yield ConfigProblem(directive.line, 'unknown-directive', message)


_NAMED_BLOCKS = frozenset(
    {'domain', 'source', 'smtp-user', 'virtual-mta', 'virtual-mta-pool', 'smtp-pattern-list', 'acct-file'}
)


def _duplicates(root: Block) -> Iterator[ConfigProblem]:
    for block in root.walk():
        seen: dict[tuple[str, str], int] = {}
        for child in block.blocks:
            if child.name not in _NAMED_BLOCKS:
                continue
            key = (child.name, child.argument)
            if key in seen:
                message = f'<{child.name} {child.argument}> is already defined on line {seen[key]}'
                yield ConfigProblem(child.line, 'duplicate', message)
            else:
                seen[key] = child.line
    macros: dict[str, int] = {}
    for directive in root.values('domain-macro'):
        if not directive.words:
            continue
        name = directive.words[0]
        if name in macros:
            yield ConfigProblem(
                directive.line, 'duplicate', f'domain-macro {name} is already defined on line {macros[name]}'
            )
        else:
            macros[name] = directive.line
    listeners: dict[tuple[str, str], int] = {}
    for directive in root.values('smtp-listener'):
        match = _LISTENER.match(directive.value)
        if match is None:
            continue
        address, port = match.groups()
        # the same address and port twice, or 0/0 (every address) and another address on one port
        clashes = [line for (other, used), line in listeners.items() if used == port and address in (other, '0/0')]
        clashes += [line for (other, used), line in listeners.items() if used == port and other == '0/0']
        if clashes:
            message = f'smtp-listener {directive.value}: port {port} is already bound on line {min(clashes)}'
            yield ConfigProblem(directive.line, 'duplicate', message)
        else:
            listeners[(address, port)] = directive.line


def _top(root: Block, name: str) -> dict[str, Block]:
    return {block.argument: block for block in root.blocks if block.name == name}


def _pools(root: Block) -> Iterator[ConfigProblem]:
    """Every VMTA is in a pool and has a source address; pools list defined VMTAs only and are not empty."""
    vmtas = _top(root, 'virtual-mta')
    members: set[str] = set()
    for pool in _top(root, 'virtual-mta-pool').values():
        if not pool.values('virtual-mta'):
            yield ConfigProblem(pool.line, 'empty-pool', f'<virtual-mta-pool {pool.argument}> has no virtual-mta')
        for member in pool.values('virtual-mta'):
            members.add(member.value)
            if member.value not in vmtas:
                message = f'pool {pool.argument} lists virtual-mta {member.value}, which is not defined'
                yield ConfigProblem(member.line, 'unknown-reference', message)
    for name, vmta in vmtas.items():
        if name not in members:
            yield ConfigProblem(vmta.line, 'vmta-without-pool', f'<virtual-mta {name}> belongs to no virtual-mta-pool')
        if not vmta.values('smtp-source-host'):
            yield ConfigProblem(vmta.line, 'vmta-without-source', f'<virtual-mta {name}> has no smtp-source-host')


def _selection(root: Block) -> Iterator[ConfigProblem]:
    """Sources name existing pools; every pool is some source's default or selectable by X-Virtual-MTA."""
    vmtas, pools = _top(root, 'virtual-mta'), _top(root, 'virtual-mta-pool')
    selected: set[str] = set()
    header_selection = False
    for source in (block for block in root.blocks if block.name == 'source'):
        for default in source.values('default-virtual-mta'):
            if default.value in pools or default.value in vmtas:
                selected.add(default.value)
            else:
                message = f'default-virtual-mta {default.value} names no virtual-mta-pool or virtual-mta'
                yield ConfigProblem(default.line, 'unknown-reference', message)
        header_selection |= any(flag.value in ('yes', 'true') for flag in source.values('process-x-virtual-mta'))
    if header_selection:
        return
    for name, pool in pools.items():
        if name not in selected:
            message = (
                f'<virtual-mta-pool {name}> is selected by no source: no default-virtual-mta names it and no '
                'source sets process-x-virtual-mta yes'
            )
            yield ConfigProblem(pool.line, 'pool-not-selected', message)


def _users(root: Block) -> Iterator[ConfigProblem]:
    """Every SMTP user has a password and names an authenticated source that exists."""
    sources = set(_top(root, 'source'))
    for user in _top(root, 'smtp-user').values():
        if not user.values('password'):
            yield ConfigProblem(user.line, 'user-without-password', f'<smtp-user {user.argument}> has no password')
        named = user.values('source')
        if not named:
            yield ConfigProblem(user.line, 'user-without-source', f'<smtp-user {user.argument}> names no source')
        for source in named:
            if source.value not in sources and not _source_name(source.value):
                message = f'source {source.value}: there is no <source {source.value}> block'
                yield ConfigProblem(source.line, 'unknown-reference', message)


def _names(root: Block) -> Iterator[ConfigProblem]:
    """Macros, pattern lists, queue-to targets and reroute targets exist."""
    macros = {directive.words[0] for directive in root.values('domain-macro') if directive.words}
    pattern_lists = set(_top(root, 'smtp-pattern-list'))
    domains = {block.argument for block in root.walk() if block.name == 'domain'}
    targets = set(_top(root, 'virtual-mta')) | set(_top(root, 'virtual-mta-pool'))
    for block in root.walk():
        if block.name == 'domain' and block.argument.startswith('$') and block.argument[1:] not in macros:
            message = f'<domain {block.argument}> refers to no domain-macro {block.argument[1:]}'
            yield ConfigProblem(block.line, 'unknown-macro', message)
        for directive in block.directives:
            if directive.name == 'smtp-pattern-list' and directive.value not in pattern_lists:
                message = f'smtp-pattern-list {directive.value} is not defined'
            elif directive.name == 'queue-to' and directive.value not in domains:
                message = f'queue-to {directive.value}: there is no <domain {directive.value}> block'
            elif directive.name == 'backoff-reroute-to-virtual-mta' and directive.value not in targets:
                message = f'backoff-reroute-to-virtual-mta {directive.value} names no virtual-mta or pool'
            else:
                continue
            yield ConfigProblem(directive.line, 'unknown-reference', message)


def check_text(text: str) -> list[ConfigProblem]:
    """Every problem of a configuration text, ordered by line."""
    root, problems = parse(text)
    problems.extend(_directives(root))
    problems.extend(_duplicates(root))
    for rule in (_pools, _selection, _users, _names):
        problems.extend(rule(root))
    return sorted(problems, key=lambda problem: (problem.line, problem.rule, problem.message))


def check(path: str) -> list[ConfigProblem]:
    """Every problem of a configuration file."""
    with open(path, encoding='utf-8') as handle:
        return check_text(handle.read())


def report(path: str) -> int:
    """Check the file at ``path`` (``-``: standard input), print the outcome, and return the exit code."""
    try:
        problems = check_text(sys.stdin.read()) if path == '-' else check(path)
    except (OSError, UnicodeDecodeError) as error:
        print(f'{path}: cannot read: {error}', file=sys.stderr)
        return 2
    for problem in problems:
        print(f'{path}: {problem}', file=sys.stderr)
    if problems:
        print(f'{path}: {len(problems)} problem(s); the configuration was not accepted', file=sys.stderr)
        return 1
    print(f'{path}: structure OK (mailinfra-iac checker; PowerMTA itself did not read this file)')
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] in ('-h', '--help'):
        print('usage: checker.py CONFIG   (structural check of a PowerMTA configuration; "-" reads stdin)')
        return 2 if len(args) != 1 else 0
    return report(args[0])


if __name__ == '__main__':
    sys.exit(main())
