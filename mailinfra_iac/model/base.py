"""Shared building blocks for the deployment model: the strict base class and value types."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

__all__ = [
    'DnsName',
    'Duration',
    'Email',
    'HostName',
    'Ipv4',
    'Model',
    'Network',
    'Slug',
    'address_scope',
    'format_duration',
    'parse_duration',
    'parse_email',
    'parse_host_name',
]


class Model(BaseModel):
    """Base for every spec object: unknown keys are errors, objects are immutable, numbers are finite."""

    # allow_inf_nan: "inf", "nan" and "1e400" (infinite) are floats to pydantic; no field means them
    model_config = ConfigDict(
        extra='forbid', frozen=True, validate_default=True, str_strip_whitespace=True, allow_inf_nan=False
    )


_HOST_LABEL = re.compile(r'(?!-)[a-z0-9-]{1,63}(?<!-)')
_DNS_LABEL = re.compile(r'(?!-)[a-z0-9_-]{1,63}(?<!-)')


def _name(value: str, label: re.Pattern[str], what: str, labels_are: str = '') -> str:
    name = str(value).strip().rstrip('.').lower()
    labels = name.split('.')
    if not name or len(name) > 253 or len(labels) < 2 or not all(label.fullmatch(part) for part in labels):
        raise ValueError(f'invalid {what} "{value}", expected a name such as "mta1.example.com"{labels_are}')
    return name


def _dns_name(value: str) -> str:
    return _name(value, _DNS_LABEL, 'DNS name')


def _host_name(value: str) -> str:
    # Letters, digits and inner hyphens: the domains of MAIL FROM, EHLO and addresses are RFC 5321 section 4.1.2
    # Domains (LDH, no "_"); BIND also refuses "_" in an A or MX owner in a primary zone (check-names).
    return _name(value, _HOST_LABEL, 'host name', ' (labels of letters, digits and inner hyphens, no "_")')


def parse_host_name(value: str) -> str:
    """``value`` lower-cased without a trailing dot if a host name (as ``HostName`` takes it), else ValueError."""
    return _host_name(value)


DnsName = Annotated[str, AfterValidator(_dns_name), Field(examples=['example.com'])]
"""A fully qualified DNS name (underscores allowed, as in "_spf.example.com"), lower-case, no trailing dot."""

HostName = Annotated[str, AfterValidator(_host_name), Field(examples=['mta1.example.com'])]
"""A host name (letters, digits, hyphens only): PTR, HELO and machine names, and the names that get A or MX records
or are mail domains (sending and return-path domains, the unsubscribe host)."""

_SLUG = re.compile(r'[a-z][a-z0-9_]{0,39}')


def _slug(value: str) -> str:
    if not _SLUG.fullmatch(value):
        raise ValueError(f'invalid name "{value}", expected lower-case letters, digits and "_", starting with a letter')
    return value


Slug = Annotated[str, AfterValidator(_slug)]
"""A short identifier used in file, group and transport names (``[a-z][a-z0-9_]*``)."""

_LOCAL_PART = re.compile(r'[A-Za-z0-9_%+=-]+(?:\.[A-Za-z0-9_%+=-]+)*')
# Letters, or an IDN top-level domain in A-label form (xn--p1ai), as HostName accepts.
_TOP_LABEL = re.compile(r'[a-z]{2,63}|xn--[a-z0-9-]+')


NOT_SHOWN = 'the value is not shown: where a path belongs, a path that is not absolute may be the secret itself'
"""Said instead of quoting the value of a secret file's path that is no absolute path."""

_URL_USERINFO = re.compile(r'[^:/?#]*:?//[^/?#]*@')


def url_has_userinfo(url: str) -> bool:
    """Whether a URL's authority has a user part (``user:password@``), by RFC 3986's delimiters alone: also for a
    URL ``urlsplit`` refuses (a bad port, a broken IPv6 address), which must not be shown either."""
    return _URL_USERINFO.match(url) is not None


def parse_email(value: str) -> str:
    """The address with its domain lower-cased; ValueError unless local@domain with a dot-atom local part
    (at most 64 characters, RFC 5321) and a host-name domain (labels of 1-63 letters, digits or inner
    hyphens, at most 253 characters, a top label of letters or an A-label such as "xn--p1ai")."""
    local, at, domain = value.rpartition('@')
    if not at or not _LOCAL_PART.fullmatch(local) or len(local) > 64:
        raise ValueError(
            f'invalid e-mail address "{value}", expected local@domain with a local part of letters, digits and '
            '"._%+=-" (no leading, trailing or double dot, at most 64 characters)'
        )
    name = domain.lower()
    labels = name.split('.')
    valid = len(labels) > 1 and all(map(_HOST_LABEL.fullmatch, labels)) and _TOP_LABEL.fullmatch(labels[-1])
    if len(name) > 253 or not valid:
        raise ValueError(
            f'invalid e-mail address "{value}", expected local@domain with a domain such as "example.com": labels '
            'of 1-63 letters, digits or inner hyphens, at most 253 characters, ending in a top label of letters '
            'or an A-label such as "xn--p1ai"'
        )
    return f'{local}@{name}'


Email = Annotated[str, AfterValidator(parse_email)]


def _ipv4(value: Any) -> str:
    try:
        address = ipaddress.IPv4Address(str(value))
    except ValueError:
        raise ValueError(f'invalid IPv4 address "{value}", expected dotted quad such as "192.0.2.10"') from None
    return str(address)


Ipv4 = Annotated[str, BeforeValidator(_ipv4)]

_TEST_NETWORKS = tuple(
    (ipaddress.IPv4Network(network), reason)
    for network, reason in (
        ('192.0.2.0/24', 'a documentation address (RFC 5737)'),
        ('198.51.100.0/24', 'a documentation address (RFC 5737)'),
        ('203.0.113.0/24', 'a documentation address (RFC 5737)'),
        ('198.18.0.0/15', 'a benchmarking address (RFC 2544)'),
    )
)
_LOCAL_NETWORKS = tuple(
    (ipaddress.IPv4Network(network), reason)
    for network, reason in (
        ('0.0.0.0/8', 'in "this network" (0.0.0.0/8), which is never a destination'),
        ('10.0.0.0/8', 'a private address (RFC 1918)'),
        ('172.16.0.0/12', 'a private address (RFC 1918)'),
        ('192.168.0.0/16', 'a private address (RFC 1918)'),
        ('127.0.0.0/8', 'a loopback address'),
        ('100.64.0.0/10', 'in the carrier-grade NAT space (RFC 6598)'),
        ('169.254.0.0/16', 'a link-local address'),
        ('192.0.0.0/24', 'an IETF protocol assignment (RFC 6890)'),
        ('224.0.0.0/4', 'a multicast address'),
        ('240.0.0.0/4', 'a reserved address (240.0.0.0/4)'),
    )
)


def address_scope(address: str) -> tuple[str, str] | None:
    """None for a globally routable IPv4 address, else (kind, reason): kind "test" for the documentation
    and benchmarking networks (never routed, reserved for examples and tests), "local" for the rest."""
    ip = ipaddress.IPv4Address(address)
    for kind, networks in (('test', _TEST_NETWORKS), ('local', _LOCAL_NETWORKS)):
        for network, reason in networks:
            if ip in network:
                return kind, reason
    if not ip.is_global:
        return 'local', 'not globally routable (IANA special-purpose registry)'
    return None


def _network(value: Any) -> str:
    try:
        return str(ipaddress.ip_network(str(value), strict=False))
    except ValueError:
        raise ValueError(f'invalid network "{value}", expected CIDR such as "10.0.0.0/8"') from None


Network = Annotated[str, BeforeValidator(_network)]

_DURATION = re.compile(r'(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?')
_UNITS = (('d', 86400), ('h', 3600), ('m', 60), ('s', 1))


def parse_duration(value: Any) -> int:
    """Return seconds for ``"4d12h"``, ``"10m"``, ``"30s"`` or a bare number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f'invalid duration "{value}", expected e.g. "10m", "2h" or "4d12h"')
    if isinstance(value, int):
        seconds = value
    else:
        text = str(value).strip().lower()
        match = _DURATION.fullmatch(text)
        if not text or not match or not any(match.groups()):
            raise ValueError(f'invalid duration "{value}", expected e.g. "10m", "2h" or "4d12h"')
        seconds = sum(int(part) * unit for part, (_, unit) in zip(match.groups(), _UNITS, strict=True) if part)
    if seconds <= 0:
        raise ValueError(f'invalid duration "{value}", expected a positive duration')
    return seconds


def format_duration(seconds: int) -> str:
    """Render seconds compactly (``16200`` -> ``"4h30m"``); the inverse of :func:`parse_duration`."""
    parts = []
    for unit, size in _UNITS:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f'{count}{unit}')
    return ''.join(parts) or '0s'


def duration_in_range(value: int, bounds: tuple[int, int]) -> int:
    """``value`` (seconds) if within ``bounds`` (inclusive), else ValueError naming both in the spec's units."""
    low, high = bounds
    if not low <= value <= high:
        raise ValueError(f'{format_duration(value)} is out of range: {format_duration(low)} to {format_duration(high)}')
    return value


Duration = Annotated[int, BeforeValidator(parse_duration), Field(json_schema_extra={'format': 'duration'})]
"""A duration in seconds; the spec writes it as ``"10m"``, ``"2h"``, ``"4d12h"``."""
