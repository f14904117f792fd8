"""Sending domains and their authentication: DKIM, SPF, DMARC."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator

from ..dkim.store import check_selector
from .base import DnsName, Duration, Email, HostName, Model


class Dkim(Model):
    """DKIM keys for one domain."""

    selectors: list[str] = Field(
        min_length=1,
        description='Published selectors, the signing one first; name them by period, e.g. "s2026q4".',
    )
    algorithm: Literal['rsa', 'rsa+ed25519'] = Field(
        'rsa', description='"rsa+ed25519" dual-signs with an Ed25519 key next to the RSA key (RFC 8463).'
    )
    rsa_bits: int = Field(2048, description='RSA key size in bits (at least 2048).')
    rotation: Duration = Field(180 * 86400, description='How often the key is rotated, e.g. "90d".')

    @field_validator('selectors')
    @classmethod
    def _selector_names(cls, value: list[str]) -> list[str]:
        for selector in value:
            check_selector(selector)  # the key store's own rule; its InvalidNameError is a ValueError
        return value


# Names and macro letters are case-insensitive (RFC 7208 sections 4.6.1 and 7.3); a macro's digit is nonzero.
_SPF_TERM = re.compile(r'[+?~-]?(?P<name>[a-z0-9]+)(?P<rest>.*)', re.DOTALL | re.IGNORECASE)
_SPF_DUAL_CIDR = re.compile(r'(?::(?P<spec>.+?))?(?:/(?P<v4>0|[1-9][0-9]*))?(?://(?P<v6>0|[1-9][0-9]*))?', re.DOTALL)
_SPF_EXPAND = r'%\{[slodiphv](?:[1-9][0-9]*)?r?[-.+,/_=]*\}'
_SPF_MACRO = re.compile(rf'{_SPF_EXPAND}|%[%_-]', re.IGNORECASE)
_SPF_TOKEN = re.compile(rf'{_SPF_MACRO.pattern}|[!-$&-~]', re.IGNORECASE)
_SPF_LABEL = re.compile(r'[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?')
# toplabel: alphanumerics with a letter, or with an inner "-" (RFC 7208 section 7.1)
_SPF_TOPLABEL = re.compile(r'[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*|[A-Za-z0-9]+-[A-Za-z0-9-]*[A-Za-z0-9]')


def _spf_domain_spec(spec: str) -> str | None:
    """Why ``spec`` is not an RFC 7208 domain-spec (a name, macros allowed), or None."""
    tokens = _SPF_TOKEN.findall(spec)
    if not tokens or ''.join(tokens) != spec:
        return f'"{spec}" is not a domain or macro string (RFC 7208 section 7.1)'
    # each macro stands for one letter here: what is left must read as a name (no quotes, no backslashes)
    labels = _SPF_MACRO.sub('m', spec).rstrip('.').split('.')
    ends_in_macro = len(tokens[-1]) > 1  # domain-end may be a macro-expand: its top label comes with the mail
    if not ends_in_macro and (len(labels) < 2 or not _SPF_TOPLABEL.fullmatch(labels[-1])):
        return f'"{spec}" does not end in a top-level label such as ".example"'
    if not all(_SPF_LABEL.fullmatch(label) for label in labels) or len(spec.rstrip('.')) > 253:
        return f'"{spec}" is not a DNS name (labels of 1 to 63 letters, digits, "-" or "_", at most 253 characters)'
    return None


def _spf_cidr(length: str | None, most: int) -> str | None:
    if length is not None and (len(length) > 3 or int(length) > most):
        return f'prefix length /{length[:4]} is over {most}'
    return None


def spf_mechanism_problem(term: str) -> str | None:
    """Why ``term`` is not one RFC 7208 mechanism other than "all" (section 5), or None."""
    if not term.isascii() or not all('!' <= character <= '~' for character in term):
        return 'a mechanism is printable ASCII without spaces (one term per list item)'
    match = _SPF_TERM.fullmatch(term)
    name, rest = (match.group('name').lower(), match.group('rest')) if match else ('', term)
    if name in {'ip4', 'ip6'}:
        network, slash, length = rest[1:].partition('/')
        if not rest.startswith(':') or (slash and not re.fullmatch(r'0|[1-9][0-9]*', length)):
            return f'{name} takes ":ADDRESS" with an optional "/PREFIX"'
        family = ipaddress.IPv4Address if name == 'ip4' else ipaddress.IPv6Address
        try:
            if '%' in network:  # Python takes a zone id ("fe80::1%eth0"); SPF has none
                raise ValueError(network)
            family(network)
        except ValueError:
            return f'"{network}" is not an IPv{name[-1]} address'
        return _spf_cidr(length or None, 32 if name == 'ip4' else 128)
    if name in {'a', 'mx'}:
        dual = _SPF_DUAL_CIDR.fullmatch(rest)
        if dual is None:
            return f'{name} takes an optional ":DOMAIN", then optional "/PREFIX" and "//PREFIX6"'
        spec = dual.group('spec')
        return (
            (_spf_domain_spec(spec) if spec else None)
            or _spf_cidr(dual.group('v4'), 32)
            or _spf_cidr(dual.group('v6'), 128)
        )
    if name == 'ptr' and not rest:
        return None
    if name in {'ptr', 'include', 'exists'}:
        if not rest.startswith(':') or len(rest) < 2:
            return f'{name} takes ":DOMAIN"'
        return _spf_domain_spec(rest[1:])
    return 'expected one of a, mx, ptr, exists:, ip4:, ip6: or include:'


def _spf_mechanism(value: str) -> str:
    problem = spf_mechanism_problem(value)
    if problem is not None:
        raise ValueError(f'invalid SPF mechanism "{value}": {problem}')
    return value


SpfMechanism = Annotated[str, AfterValidator(_spf_mechanism)]


class SpfInclude(Model):
    """A third-party SPF include and what it costs."""

    domain: DnsName = Field(description='Domain named in "include:".')
    lookups: int = Field(1, ge=1, le=10, description='DNS lookups the include costs, its nested ones counted.')
    void_lookups: int = Field(0, ge=0, le=10, description='Lookups inside it known to return no records.')


class Spf(Model):
    """SPF policy for a sending or return-path domain; the stream IPs are added automatically."""

    includes: list[SpfInclude] = Field(
        default_factory=list, description='Extra "include:" domains: a name, or {domain, lookups, void_lookups}.'
    )
    mechanisms: list[SpfMechanism] = Field(
        default_factory=list, description='Extra mechanisms such as "a", "mx" or "ip4:198.51.100.0/24".'
    )
    all: Literal['-all', '~all'] = Field('-all', description='Terminating qualifier.')

    @field_validator('includes', mode='before')
    @classmethod
    def _include_names(cls, value: object) -> object:
        if isinstance(value, list):
            return [{'domain': item} if isinstance(item, str) else item for item in value]
        return value


class Dmarc(Model):
    """DMARC policy (RFC 7489 tags)."""

    p: Literal['none', 'quarantine', 'reject'] = Field('none', description='Policy for the domain.')
    sp: Literal['none', 'quarantine', 'reject'] | None = Field(None, description='Policy for sub-domains.')
    rua: list[Email] = Field(default_factory=list, description='Aggregate-report addresses (mailto).')
    ruf: list[Email] = Field(default_factory=list, description='Failure-report addresses (mailto).')
    adkim: Literal['r', 's'] = Field('r', description='DKIM alignment: relaxed or strict.')
    aspf: Literal['r', 's'] = Field('r', description='SPF alignment: relaxed or strict.')
    fo: str = Field('1', description='Failure-reporting options: 0, 1, d, s joined by ":".')

    @field_validator('fo')
    @classmethod
    def _fo(cls, value: str) -> str:
        if not value or any(part not in {'0', '1', 'd', 's'} for part in str(value).split(':')):
            raise ValueError(f'invalid DMARC fo "{value}", expected 0, 1, d or s joined by ":"')
        return str(value)


class Tracking(Model):
    """Click/open tracking host name pointing at the tracking service."""

    hostname: DnsName = Field(description='Tracking host name inside the sending domain.')
    target: DnsName = Field(description='CNAME target of the tracking service.')


class SendingDomain(Model):
    """A From domain and everything published for it."""

    domain: HostName = Field(description='The From domain.')
    return_path: HostName | None = Field(
        None, description='Return-path (bounce) domain; default "bounces.<domain>". MX points at our inbound hosts.'
    )
    dkim: Dkim = Field(description='DKIM keys.')
    spf: Spf = Field(default_factory=Spf, description='SPF policy.')
    dmarc: Dmarc = Field(default_factory=Dmarc, description='DMARC policy.')
    tracking: Tracking | None = Field(None, description='Optional tracking CNAME.')

    @property
    def bounce_domain(self) -> str:
        return self.return_path or f'bounces.{self.domain}'
