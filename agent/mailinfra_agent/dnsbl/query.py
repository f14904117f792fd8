"""Subjects and query names: IPv4 reversed, IPv6 as nibbles (RFC 5782 section 2.4), domains reduced to the
registered domain with the offline public-suffix list (``publicsuffixlist``, the agent's ``psl`` extra), and the
names between a host name and its registered domain for the zones that list host names (``Zone.host_names``)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from ..names import ascii_domain

SubjectKind = Literal['ip', 'domain']
_LABEL = re.compile(r'^(?!-)[a-z0-9_-]{1,63}(?<!-)$')


class SubjectError(ValueError):
    """A subject that cannot be checked; the message says why."""


@dataclass(frozen=True, order=True)
class Subject:
    value: str
    """An IP address in its canonical text form, or a domain name (lower case, A-labels)."""
    kind: SubjectKind
    below: bool = False
    """A name below its registered domain: asked only of zones that list host names."""

    @property
    def ipv6(self) -> bool:
        return self.kind == 'ip' and ':' in self.value


@cache
def _psl() -> Any:
    try:
        from publicsuffixlist import PublicSuffixList
    except ImportError:
        raise SubjectError(
            'domain subjects need the public-suffix list: install mailinfra-agent with the "psl" extra'
        ) from None
    return PublicSuffixList()


def ip_subject(text: str) -> Subject:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        raise SubjectError(f'{text!r} is not an IP address') from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return Subject(str(address), 'ip')


def _names(text: str) -> tuple[str, str]:
    """(the name in ASCII, its registered domain); SubjectError when it is not a name or has no registered domain."""
    mapped = ascii_domain(text.strip().rstrip('.'))  # UTS 46, as resolvers and Postfix: faß.de is xn--fa-hia.de
    if mapped is None:
        raise SubjectError(f'{text!r} is not a valid domain name')
    name = mapped
    labels = name.split('.')
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels) or len(name) > 253:
        raise SubjectError(f'{text!r} is not a valid domain name')
    registered = _psl().privatesuffix(name)
    if registered is None:
        raise SubjectError(f'{text!r} is a public suffix, not a registered domain')
    return name, str(registered)


def registered_domain(text: str) -> str:
    """The registered domain (``mail.example.co.uk`` -> ``example.co.uk``); SubjectError when there is none."""
    return _names(text)[1]


def domain_subject(text: str) -> Subject:
    return Subject(registered_domain(text), 'domain')


def domain_subjects(text: str) -> list[Subject]:
    """The registered domain of ``text``, then each name from ``text`` down to it (``below``: ``a.b.example.com`` ->
    ``example.com``, ``a.b.example.com``, ``b.example.com``)."""
    name, registered = _names(text)
    labels = name.split('.')
    extra = len(labels) - registered.count('.') - 1
    return [Subject(registered, 'domain'), *(Subject('.'.join(labels[i:]), 'domain', True) for i in range(extra))]


def subjects_from(
    ips: Iterable[str] = (), domains: Iterable[str] = (), problems: list[str] | None = None
) -> list[Subject]:
    """Validated, deduplicated subjects in a stable order. Bad ones raise SubjectError, or are reported in
    ``problems`` (and skipped) when a list is given."""
    found: dict[tuple[str, str], Subject] = {}
    for maker, values in ((_ip_subjects, ips), (domain_subjects, domains)):
        for value in values:
            try:
                made = maker(value)
            except SubjectError as error:
                if problems is None:
                    raise
                problems.append(str(error))
                continue
            for subject in made:  # a name that is one value's registered domain is never "below"
                known = found.get((subject.kind, subject.value))
                if known is None or known.below:
                    found[subject.kind, subject.value] = subject
    return sorted(found.values(), key=lambda s: (s.kind != 'ip', s.value))


def _ip_subjects(text: str) -> list[Subject]:
    return [ip_subject(text)]


def query_prefix(subject: Subject) -> str:
    """The labels put before the zone: reversed octets, reversed nibbles, or the domain itself."""
    if subject.kind == 'domain':
        return subject.value
    address = ipaddress.ip_address(subject.value)
    if isinstance(address, ipaddress.IPv4Address):
        return '.'.join(reversed(subject.value.split('.')))
    return '.'.join(reversed(address.exploded.replace(':', '')))
