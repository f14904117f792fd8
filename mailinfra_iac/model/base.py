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
    'format_duration',
    'parse_duration',
]


class Model(BaseModel):
    """Base for every spec object: unknown keys are errors, objects are immutable."""

    model_config = ConfigDict(extra='forbid', frozen=True, validate_default=True, str_strip_whitespace=True)


_HOST_LABEL = re.compile(r'^(?!-)[a-z0-9-]{1,63}(?<!-)$')
_DNS_LABEL = re.compile(r'^(?!-)[a-z0-9_-]{1,63}(?<!-)$')


def _name(value: str, label: re.Pattern[str], what: str) -> str:
    name = str(value).strip().rstrip('.').lower()
    labels = name.split('.')
    if not name or len(name) > 253 or len(labels) < 2 or not all(label.match(part) for part in labels):
        raise ValueError(f'invalid {what} "{value}", expected a name such as "mta1.example.com"')
    return name


def _dns_name(value: str) -> str:
    return _name(value, _DNS_LABEL, 'DNS name')


def _host_name(value: str) -> str:
    return _name(value, _HOST_LABEL, 'host name')


DnsName = Annotated[str, AfterValidator(_dns_name), Field(examples=['example.com'])]
"""A fully qualified DNS name (underscores allowed, as in "_spf.example.com"), lower-case, no trailing dot."""

HostName = Annotated[str, AfterValidator(_host_name), Field(examples=['mta1.example.com'])]
"""A host name (letters, digits, hyphens only): PTR, HELO and machine names."""

_SLUG = re.compile(r'^[a-z][a-z0-9_]{0,39}$')


def _slug(value: str) -> str:
    if not _SLUG.match(value):
        raise ValueError(f'invalid name "{value}", expected lower-case letters, digits and "_", starting with a letter')
    return value


Slug = Annotated[str, AfterValidator(_slug)]
"""A short identifier used in file, group and transport names (``[a-z][a-z0-9_]*``)."""

_EMAIL = re.compile(r'^[A-Za-z0-9._%+=-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$')


def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError(f'invalid e-mail address "{value}", expected local@domain')
    local, _, domain = value.rpartition('@')
    return f'{local}@{domain.lower()}'


Email = Annotated[str, AfterValidator(_email)]


def _ipv4(value: Any) -> str:
    try:
        address = ipaddress.IPv4Address(str(value))
    except ValueError:
        raise ValueError(f'invalid IPv4 address "{value}", expected dotted quad such as "192.0.2.10"') from None
    return str(address)


Ipv4 = Annotated[str, BeforeValidator(_ipv4)]


def _network(value: Any) -> str:
    try:
        return str(ipaddress.ip_network(str(value), strict=False))
    except ValueError:
        raise ValueError(f'invalid network "{value}", expected CIDR such as "10.0.0.0/8"') from None


Network = Annotated[str, BeforeValidator(_network)]

_DURATION = re.compile(r'^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$')
_UNITS = (('d', 86400), ('h', 3600), ('m', 60), ('s', 1))


def parse_duration(value: Any) -> int:
    """Return seconds for ``"4d12h"``, ``"10m"``, ``"30s"`` or a bare number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f'invalid duration "{value}", expected e.g. "10m", "2h" or "4d12h"')
    if isinstance(value, int):
        seconds = value
    else:
        text = str(value).strip().lower()
        match = _DURATION.match(text)
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


Duration = Annotated[int, BeforeValidator(parse_duration), Field(json_schema_extra={'format': 'duration'})]
"""A duration in seconds; the spec writes it as ``"10m"``, ``"2h"``, ``"4d12h"``."""
