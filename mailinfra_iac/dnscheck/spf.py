"""SPF as receivers see it: the record, the addresses it authorises and its processing limits.

``spf-present``: exactly one ``v=spf1`` TXT record at each sending (From) and return-path domain,
syntactically valid (RFC 7208 section 12 grammar, macros checked for form).

``spf-lookups``: the record is expanded by asking the servers, through every ``include:`` and
``redirect=``; each ``include``, ``a``, ``mx``, ``ptr``, ``exists`` and ``redirect`` counts one DNS
lookup, and a lookup that finds nothing (NXDOMAIN or no records) counts one void lookup. More than
10 lookups or more than 2 void lookups is a permerror (RFC 7208 section 4.6.4). The count is over
the whole tree, the cost of evaluating an address that matches nothing. The addresses of MX hosts
are looked up (at most 10 names) but, as the RFC says, do not count. Loops through include or
redirect, include targets without an SPF record and invalid included records are permerrors too.
An include outside the deployment's zones that cannot be asked (no ``--resolver``) is counted as
the spec declares it (``spf.includes[].lookups``) and the result is unchecked.

``spf-authorises-ips``: every sending address of the streams that use the domain is evaluated
against the expanded record (check_host() of section 4, for IPv4 senders) and must give ``pass``.
Terms that depend on the sender (macros) or on the client's reverse DNS (``ptr``) are not
evaluated; an address that reaches one before matching is unchecked.

``spf-matches-spec``: the served record is the one the spec renders, term by term in order (so a
``+all`` where the spec says ``~all`` fails even though every sending address still passes); only
spacing, an explicit ``+`` and the case of names may differ. Without a single valid record the three
checks after ``spf-present`` are reported as skipped.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import re
from dataclasses import dataclass, field
from typing import NamedTuple

from mailinfra_agent.dns.client import Answer, DnsClient

from ..spf import LOOKUP_TERMS, MAX_LOOKUPS, MAX_MX_NAMES, MAX_VOID_LOOKUPS
from .addresses import IpAddress, ip_address
from .expected import Expectations, SpfSubject
from .results import NOT_ASKED, CheckResult, Status, mx_exchange, shorten, skipped

_STOP_AFTER = 30
"""Stop following includes after this many lookups: the verdict (over 10) is known, the work stays bounded."""
_MAX_DEPTH = 16

_MECHANISMS = frozenset({'all', 'include', 'a', 'mx', 'ptr', 'ip4', 'ip6', 'exists'})
_RESULT = {'+': 'pass', '-': 'fail', '~': 'softfail', '?': 'neutral'}
_MODIFIER = re.compile(r'^([A-Za-z][A-Za-z0-9_.-]*)=(.*)$')
_MECHANISM = re.compile(r'^([+?~-]?)([A-Za-z][A-Za-z0-9_.-]*)(.*)$')
_MACRO = re.compile(r'%(?:\{[slodiphcrtvSLODIPHCRTV][0-9]*[rR]?[.+,/_=-]*\}|%|_|-)')
_LABEL = re.compile(r'^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$')
_CIDR = re.compile(r'^(?:/([0-9]{1,2}))?(?://([0-9]{1,3}))?$')
IpRange = tuple[int, int, int]
"""(IP version, first address, last address) as integers: matching is two comparisons."""


def ip_range(text: str, prefix: int | None = None) -> IpRange:
    """The addresses of ``text``/``prefix`` (host bits ignored, as receivers do)."""
    version, value = ip_address(text)
    bits = 32 if version == 4 else 128
    prefix = bits if prefix is None else prefix
    if not 0 <= prefix <= bits:
        raise ValueError(f'prefix length {prefix} out of range')
    size = 1 << (bits - prefix)
    first = value & ~(size - 1)
    return version, first, first + size - 1


def _in(address: IpAddress, network: IpRange) -> bool:
    return address[0] == network[0] and network[1] <= address[1] <= network[2]


class SpfSyntaxError(ValueError):
    """A record that does not follow the grammar (a permerror for receivers)."""


class Term(NamedTuple):
    """A mechanism (``all``, ``include`` ... with its qualifier) or a modifier (``redirect``, ``exp``, ...)."""

    kind: str
    text: str
    qualifier: str = '+'
    domain: str | None = None
    network: IpRange | None = None
    cidr4: int = 32
    cidr6: int = 128

    @property
    def modifier(self) -> bool:
        return self.kind not in _MECHANISMS

    @property
    def has_macro(self) -> bool:
        return self.domain is not None and '%' in self.domain


def is_spf(value: str) -> bool:
    """A TXT value that is an SPF record: ``v=spf1`` alone or followed by a space (RFC 7208 4.5)."""
    head = value[:7].lower()
    return head == 'v=spf1' or head == 'v=spf1 '


def _domain_spec(value: str, term: str) -> str:
    if not value:
        raise SpfSyntaxError(f'"{term}" needs a domain')
    if '%' in value:
        if '%' in _MACRO.sub('', value):
            raise SpfSyntaxError(f'invalid macro in "{term}"')
        return value
    name = value.rstrip('.')
    labels = name.split('.')
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels) or labels[-1].isdigit():
        raise SpfSyntaxError(f'invalid domain "{value}" in "{term}"')
    return name.lower()


def _mechanism(qualifier: str, name: str, rest: str, token: str) -> Term:
    kind = name.lower()
    if kind not in _MECHANISMS:
        raise SpfSyntaxError(f'unknown mechanism "{token}"')
    if kind == 'all':
        if rest:
            raise SpfSyntaxError(f'"all" takes no argument: "{token}"')
        return Term(kind, token, qualifier or '+')
    if kind in ('ip4', 'ip6'):
        if not rest.startswith(':'):
            raise SpfSyntaxError(f'"{token}" needs an address')
        address, slash, prefix = rest[1:].partition('/')
        try:
            network = ip_range(
                address, int(prefix) if prefix.isascii() and prefix.isdigit() else None if not slash else -1
            )
        except ValueError:
            raise SpfSyntaxError(f'invalid address in "{token}"') from None
        if network[0] != (4 if kind == 'ip4' else 6):
            raise SpfSyntaxError(f'"{token}": wrong address family')
        return Term(kind, token, qualifier or '+', network=network)
    if kind in ('include', 'exists'):
        if not rest.startswith(':'):
            raise SpfSyntaxError(f'"{token}" needs a domain')
        return Term(kind, token, qualifier or '+', domain=_domain_spec(rest[1:], token))
    domain = None
    if rest.startswith(':'):
        spec, _, cidr = rest[1:].partition('/')
        domain = _domain_spec(spec, token)
        rest = '/' + cidr if cidr else ''
    match = _CIDR.match(rest)
    if match is None or (kind == 'ptr' and rest):
        raise SpfSyntaxError(f'invalid "{token}"')
    cidr4 = int(match.group(1)) if match.group(1) else 32
    cidr6 = int(match.group(2)) if match.group(2) else 128
    if cidr4 > 32 or cidr6 > 128:
        raise SpfSyntaxError(f'prefix length out of range in "{token}"')
    return Term(kind, token, qualifier or '+', domain=domain, cidr4=cidr4, cidr6=cidr6)


@functools.lru_cache(maxsize=4096)
def parse(record: str) -> tuple[Term, ...]:
    """The terms of an SPF record, in order; raises :class:`SpfSyntaxError`."""
    tokens = record.split(' ')
    if tokens[0].lower() != 'v=spf1':
        raise SpfSyntaxError('the record does not start with "v=spf1"')
    terms: list[Term] = []
    seen: set[str] = set()
    for token in tokens[1:]:
        if not token:
            continue  # several spaces: tolerated by receivers
        if token[:4] == 'ip4:':  # the common case: our records list the sending addresses
            address, slash, prefix = token[4:].partition('/')
            try:
                network = ip_range(address, int(prefix) if slash and prefix.isascii() and prefix.isdigit() else None)
                if network[0] == 4 and (not slash or (prefix.isascii() and prefix.isdigit())):
                    terms.append(Term('ip4', token, '+', network=network))
                    continue
            except ValueError:
                pass  # the general path says what is wrong
        modifier = _MODIFIER.match(token)
        if modifier is not None and ':' not in modifier.group(1):
            name = modifier.group(1).lower()
            if name in ('redirect', 'exp'):
                if name in seen:
                    raise SpfSyntaxError(f'"{name}=" appears twice')
                seen.add(name)
                terms.append(Term(name, token, '', domain=_domain_spec(modifier.group(2), token)))
            else:
                terms.append(Term(name, token, ''))  # unknown modifiers are ignored (RFC 7208 6)
            continue
        mechanism = _MECHANISM.match(token)
        if mechanism is None:
            raise SpfSyntaxError(f'invalid term "{token}"')
        terms.append(_mechanism(mechanism.group(1), mechanism.group(2), mechanism.group(3), token))
    return tuple(terms)


@dataclass
class Node:
    """An SPF record as served, with what its terms resolved to."""

    domain: str
    terms: tuple[Term, ...] = ()
    error: str | None = None
    outcome: str = 'permerror'
    """What evaluation returns when ``error`` is set: permerror, temperror or none."""
    unchecked: bool = False
    void: bool = False
    children: dict[int, Node] = field(default_factory=dict)
    hosts: dict[int, list[IpRange]] = field(default_factory=dict)
    exists: dict[int, bool] = field(default_factory=dict)
    unknown: set[int] = field(default_factory=set)
    _lead: tuple[int, list[IpRange]] | None = None
    _lead_addresses: frozenset[IpAddress] | None = None

    def leading_addresses(self) -> frozenset[IpAddress]:
        """Addresses inside the leading ``+ip4``/``+ip6`` ranges, enumerated when those are small (ours are /32 to /29).

        An address in the set passes at once; one outside it still goes through :func:`evaluate`, which
        checks the ranges themselves (so a set left partial for a large range changes nothing).
        """
        if self._lead_addresses is None:
            found: set[IpAddress] = set()
            for version, first, last in self.leading_passes()[1]:
                if last - first < 256:
                    found.update(zip(itertools.repeat(version), range(first, last + 1)))
            self._lead_addresses = frozenset(found)
        return self._lead_addresses

    def leading_passes(self) -> tuple[int, list[IpRange]]:
        """The run of ``+ip4``/``+ip6`` terms the record starts with (how ours start) and their ranges.

        An address inside one of them passes at once, whatever follows; evaluation of any other
        address resumes after them. Same result as walking the terms one by one, faster.
        """
        if self._lead is None:
            count = 0
            for term in self.terms:
                if term.kind not in ('ip4', 'ip6') or term.qualifier != '+' or term.network is None:
                    break
                count += 1
            self._lead = (count, [term.network for term in self.terms[:count] if term.network is not None])
        return self._lead


@dataclass
class Tally:
    """What expanding one record found, over the whole tree."""

    lookups: int = 0
    voids: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    stopped: bool = False


class Expander:
    """Follows one record through the servers; every answer comes from the client's cache when asked before."""

    def __init__(self, client: DnsClient, subject: SpfSubject) -> None:
        self.client = client
        self.subject = subject
        self.tally = Tally()

    async def expand(self, domain: str, path: tuple[str, ...] = ()) -> Node:
        node = Node(domain)
        answer = await self.client.ask(domain, 'TXT')
        if answer.unchecked:
            node.unchecked = True
            return node
        if not answer.ok:
            node.error, node.outcome = f'temperror: {answer.error}', 'temperror'
            return node
        records = [value for value in answer.values if is_spf(value)]
        node.void = not answer.values
        if not records:
            node.error, node.outcome = f'no SPF record at {domain}', 'none'
            return node
        if len(records) > 1:
            node.error = f'{len(records)} SPF records at {domain}'
            return node
        try:
            node.terms = parse(records[0])
        except SpfSyntaxError as error:
            node.error = f'invalid SPF record at {domain}: {error}'
            return node
        await self.follow_terms(node, path)
        return node

    async def follow_terms(self, node: Node, path: tuple[str, ...] = ()) -> None:
        """Resolve what the terms of ``node`` (a single valid record at ``node.domain``) name."""
        domain = node.domain
        jobs = []
        for index, term in enumerate(node.terms):
            if term.kind not in LOOKUP_TERMS:
                continue
            self.tally.lookups += 1
            if self.tally.lookups > _STOP_AFTER:
                self.tally.stopped = True
                node.unknown.add(index)
            elif term.has_macro:
                node.unknown.add(index)
                self.tally.notes.append(f'{term.text} at {domain} uses macros: not followed')
            elif term.kind == 'ptr':
                node.unknown.add(index)
                self.tally.notes.append(f'"ptr" at {domain}: slow and discouraged (RFC 7208 5.5); not evaluated')
            elif term.kind in ('include', 'redirect'):
                jobs.append(self._follow(node, index, term, (*path, domain)))
            else:
                jobs.append(self._addresses(node, index, term))
        if len(jobs) == 1:
            await jobs[0]
        elif jobs:
            await asyncio.gather(*jobs)

    async def _follow(self, node: Node, index: int, term: Term, path: tuple[str, ...]) -> None:
        target = term.domain or ''
        if target in path:
            self.tally.problems.append(f'loop: {" -> ".join((*path, target))}')
            node.children[index] = Node(target, error='loop')
            return
        if len(path) > _MAX_DEPTH:
            self.tally.problems.append(f'includes nested deeper than {_MAX_DEPTH} at {target}')
            node.children[index] = Node(target, error='too deep')
            return
        child = await self.expand(target, path)
        node.children[index] = child
        if child.unchecked:
            declared = self.subject.declared.get(target)
            if declared is not None:
                self.tally.lookups += declared.lookups - 1
                self.tally.voids += [f'{target} (declared)'] * declared.void_lookups
                self.tally.unchecked.append(f'{term.text} counted as the spec declares ({declared.lookups})')
            else:
                self.tally.unchecked.append(f'{term.text} not asked and not declared in the spec (counted as 1)')
        elif child.error is not None and child.outcome != 'temperror':
            if child.void:
                self.tally.voids.append(target)
            problem = f'{term.kind}:{target}: {child.error}' if child.error != 'loop' else ''
            if problem and child.outcome == 'none':
                problem += ' (permerror)'
            if problem:
                self.tally.problems.append(problem)
        elif child.error is not None:
            self.tally.problems.append(f'{term.kind}:{target}: {child.error}')

    async def _addresses(self, node: Node, index: int, term: Term) -> None:
        target = term.domain or node.domain
        rdtype = 'MX' if term.kind == 'mx' else 'A'
        answer = await self.client.ask(target, rdtype)
        if not self._usable(answer, node, index, term):
            return
        if answer.void:
            self.tally.voids.append(f'{term.kind}:{target}')
        if term.kind == 'exists':
            node.exists[index] = bool(answer.values)
            return
        if term.kind == 'a':
            node.hosts[index] = [_network(value, term) for value in answer.values]
            return
        names = [host for value in answer.values if (host := mx_exchange(value))]
        if len(names) > MAX_MX_NAMES:
            self.tally.problems.append(f'{term.text} at {node.domain}: {len(names)} MX names, at most 10 allowed')
            node.unknown.add(index)
            return
        found = await self.client.ask_all([(name, 'A') for name in names])
        networks: list[IpRange] = []
        for addresses in found:
            if addresses.ok:
                networks += [_network(value, term) for value in addresses.values]
        node.hosts[index] = networks

    def _usable(self, answer: Answer, node: Node, index: int, term: Term) -> bool:
        if answer.unchecked:
            node.unknown.add(index)
            self.tally.unchecked.append(f'{term.text} at {node.domain} not asked (outside the zones)')
            return False
        if not answer.ok:
            node.unknown.add(index)
            self.tally.problems.append(f'{term.text} at {node.domain}: temperror: {answer.error}')
            return False
        return True


def _network(address: str, term: Term) -> IpRange:
    return ip_range(address, term.cidr6 if ':' in address else term.cidr4)


def _matches(node: Node, index: int, term: Term, address: IpAddress, lookups: list[int]) -> bool | str:
    """Whether one mechanism matches, or the result that ends evaluation (permerror, temperror, unknown)."""
    if term.kind == 'all':
        return True
    if term.kind in ('ip4', 'ip6'):
        return term.network is not None and _in(address, term.network)
    if term.kind in ('a', 'mx'):
        return any(_in(address, network) for network in node.hosts.get(index, []))
    if term.kind == 'exists':
        return node.exists.get(index, False)
    result = evaluate(node.children[index], address, lookups)  # include
    if result in ('permerror', 'temperror', 'unknown'):
        return result
    if result == 'none':
        return 'permerror'
    return result == 'pass'


def _resume_after_leading(node: Node, address: IpAddress) -> int:
    """-1 when a leading ``+ip4``/``+ip6`` term holds the address, else the index of the first other term."""
    start, ranges = node.leading_passes()
    version, value = address
    for network in ranges:
        if network[0] == version and network[1] <= value <= network[2]:
            return -1
    return start


def evaluate(node: Node, address: IpAddress, lookups: list[int]) -> str:
    """check_host() over an expanded tree: pass, fail, softfail, neutral, none, permerror, temperror or unknown.

    ``lookups`` is a one-element counter of the DNS-querying terms evaluated so far.
    """
    if node.unchecked:
        return 'unknown'
    if node.error is not None:
        return node.outcome
    start = _resume_after_leading(node, address)
    if start < 0:
        return 'pass'
    redirect = None
    for index, term in enumerate(node.terms[start:], start):
        if term.kind == 'redirect':
            redirect = index
        if term.modifier:
            continue
        if term.kind in LOOKUP_TERMS:
            lookups[0] += 1
            if lookups[0] > MAX_LOOKUPS:
                return 'permerror'
        if index in node.unknown:
            return 'unknown'
        matched = _matches(node, index, term, address, lookups)
        if isinstance(matched, str):
            return matched
        if matched:
            return _RESULT[term.qualifier]
    if redirect is None:
        return 'neutral'
    lookups[0] += 1
    if lookups[0] > MAX_LOOKUPS:
        return 'permerror'
    result = evaluate(node.children[redirect], address, lookups)
    return 'permerror' if result == 'none' else result


def _present(subject: SpfSubject, answer: Answer) -> tuple[Status, str, str | None]:
    """(status, reason, the record) of ``spf-present``."""
    if answer.unchecked:
        return 'unchecked', NOT_ASKED, None
    if not answer.ok:
        return 'fail', f'cannot ask: {answer.error}', None
    records = [value for value in answer.values if is_spf(value)]
    if not records:
        return 'fail', f'no v=spf1 TXT record ({answer.rcode}, {len(answer.values)} other TXT)', None
    if len(records) > 1:
        return 'fail', f'{len(records)} v=spf1 records: receivers return permerror with more than one', None
    try:
        parse(records[0])
    except SpfSyntaxError as error:
        return 'fail', f'invalid record "{records[0]}": {error}', None
    return 'pass', records[0], records[0]


def _lookups(tally: Tally) -> tuple[Status, str]:
    problems = list(dict.fromkeys(tally.problems))
    if tally.lookups > MAX_LOOKUPS:
        count = f'more than {_STOP_AFTER}' if tally.stopped else str(tally.lookups)
        problems.insert(0, f'{count} DNS lookups counted through include/redirect (at most {MAX_LOOKUPS})')
    if len(tally.voids) > MAX_VOID_LOOKUPS:
        problems.append(f'{len(tally.voids)} void lookups ({shorten(tally.voids)}; at most {MAX_VOID_LOOKUPS})')
    if problems:
        return 'fail', 'permerror: ' + '; '.join(problems)
    counts = (
        f'{tally.lookups} DNS lookup{"" if tally.lookups == 1 else "s"}, {len(tally.voids)} void '
        f'(limits {MAX_LOOKUPS} and {MAX_VOID_LOOKUPS})'
    )
    unsure = list(dict.fromkeys(tally.unchecked + tally.notes))
    if unsure:
        return 'unchecked', f'{counts}; not verified: {shorten(unsure, 2)}'
    return 'pass', counts


def _authorises(subject: SpfSubject, node: Node) -> tuple[Status, str]:
    verdicts: dict[str, list[str]] = {}
    passes = node.leading_addresses()
    if subject.address_values is not None and subject.address_values <= passes:
        if subject.addresses:  # the usual case: every address in the leading ip4 terms
            verdicts['pass'] = list(subject.addresses)
    else:
        for text in subject.addresses:
            address = ip_address(text)
            result = 'pass' if address in passes else evaluate(node, address, [0])
            verdicts.setdefault(result, []).append(text)
    wrong = [
        f'{text} gets {result}'
        for result, texts in verdicts.items()
        if result not in ('pass', 'unknown')
        for text in texts
    ]
    if wrong:
        return 'fail', f'{shorten(wrong)} (of {len(subject.addresses)} sending addresses)'
    if 'unknown' in verdicts:
        return 'unchecked', f'cannot tell for {shorten(verdicts["unknown"])}: it reaches terms that were not evaluated'
    if subject.unknown:
        return (
            'unchecked',
            f'{len(subject.addresses)} addresses pass; {len(subject.unknown)} not known yet (pass --terraform-output)',
        )
    if not subject.addresses:
        return 'warn', 'no stream sends from this domain'
    if len(subject.addresses) == 1:
        return 'pass', f'the sending address {subject.addresses[0]} gets pass'
    return 'pass', f'all {len(subject.addresses)} sending addresses get pass'


def normalised(record: str) -> tuple[str, ...]:
    """The terms of an SPF record in a canonical form: one space apart, ``+`` explicit, names in lower case.

    Macros keep their case (their letters mean different things in upper case); term order is kept
    (evaluation is first match).
    """
    terms = []
    for token in record.split(' ')[1:]:
        if not token:
            continue
        text = token if '%' in token else token.lower()
        if _MODIFIER.match(text) is None and text[0] not in _RESULT:
            text = '+' + text
        terms.append(text)
    return tuple(terms)


def _matches_spec(subject: SpfSubject, record: str) -> tuple[Status, str]:
    if subject.rendered is None:
        return 'unchecked', 'the name is in no managed zone: there is no rendered record to compare with'
    if record == subject.rendered or normalised(record) == normalised(subject.rendered):
        return 'pass', 'the rendered record'
    served, rendered = normalised(record), normalised(subject.rendered)
    extra = [term for term in served if term not in rendered]
    missing = [term for term in rendered if term not in served]
    detail = '; '.join(
        part
        for part in (
            f'serves {shorten(extra)} not in the spec' if extra else '',
            f'lacks {shorten(missing)}' if missing else '',
            'the same terms in another order' if not extra and not missing else '',
        )
        if part
    )
    return 'fail', f'differs from the rendered "{subject.rendered}": {detail}'


_DEPENDENT = ('spf-authorises-ips', 'spf-lookups', 'spf-matches-spec')


async def _subject(
    client: DnsClient, subject: SpfSubject, present: tuple[Status, str, str | None], server: str
) -> list[CheckResult]:
    status, reason, record = present
    results = [CheckResult('spf-present', subject.name, status, reason, server)]
    if record is None:
        because = 'spf-present is not checked' if status == 'unchecked' else 'no single valid SPF record'
        return results + [skipped(check, subject.name, server, because) for check in _DEPENDENT]
    expander = Expander(client, subject)
    # what expand(subject.name) would do, from the record spf-present already found and parsed
    node = Node(subject.name, parse(record))
    await expander.follow_terms(node)
    status, reason = _authorises(subject, node)
    results.append(CheckResult('spf-authorises-ips', subject.name, status, reason, server))
    status, reason = _lookups(expander.tally)
    results.append(CheckResult('spf-lookups', subject.name, status, reason, server))
    status, reason = _matches_spec(subject, record)
    results.append(CheckResult('spf-matches-spec', subject.name, status, reason, server))
    return results


def _named(answer: Answer) -> list[tuple[str, str]]:
    """The questions the SPF record of an answer leads to first (include, redirect, a, mx, exists)."""
    records = [value for value in answer.values if is_spf(value)] if answer.ok else []
    if len(records) != 1:
        return []
    try:
        parse(records[0])
    except SpfSyntaxError:
        return []
    return _named_by(answer.name, records[0])


def _named_by(name: str, record: str | None) -> list[tuple[str, str]]:
    """:func:`_named` of the single valid SPF record at ``name`` (as :func:`_present` found it)."""
    if record is None:
        return []
    lookups = [term for term in parse(record) if term.kind in LOOKUP_TERMS][:_STOP_AFTER]  # as far as expand() goes
    return [
        (term.domain or name, 'MX' if term.kind == 'mx' else 'A' if term.kind in ('a', 'exists') else 'TXT')
        for term in lookups
        if term.kind != 'ptr' and not term.has_macro
    ]


def _mx_hosts(answer: Answer) -> list[tuple[str, str]]:
    """The A questions an ``mx`` term leads to next (none beyond the 10 names expansion accepts)."""
    names = [host for value in answer.values if (host := mx_exchange(value))] if answer.ok else []
    return [(name, 'A') for name in names] if len(names) <= MAX_MX_NAMES else []


async def check(client: DnsClient, expected: Expectations) -> list[CheckResult]:
    # Breadth first: every record, then everything the records name, then the hosts of their mx
    # terms are on their way before the first record is expanded; the subjects are then judged one
    # after the other, mostly from the cache (no task per subject).
    client.prefetch([(subject.name, 'TXT') for subject in expected.spf])
    answers = [await client.ask(subject.name, 'TXT') for subject in expected.spf]
    presents = [_present(subject, answer) for subject, answer in zip(expected.spf, answers, strict=True)]
    named = list(
        dict.fromkeys(
            question
            for answer, (_, _, record) in zip(answers, presents, strict=True)
            for question in _named_by(answer.name, record)
        )
    )
    client.prefetch(named)
    exchanges = [await client.ask(name, 'MX') for name, rdtype in named if rdtype == 'MX']
    client.prefetch([question for answer in exchanges for question in _mx_hosts(answer)])
    results = []
    server = client.server
    for subject, present in zip(expected.spf, presents, strict=True):
        results += await _subject(client, subject, present, server)
    return results
