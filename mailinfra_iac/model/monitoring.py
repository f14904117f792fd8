"""Monitoring: DNSBLs, queues, rate thresholds, alerting and postmaster programmes."""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import Field, field_validator

from .base import DnsName, Duration, Model, duration_in_range, parse_email

RATE_WINDOW = (300, 30 * 86400)
"""Accepted rate ``window`` (seconds): at least five 1m scrapes, at most Prometheus' 30d retention (the role's)."""
DNSBL_INTERVAL = (60, 7 * 86400)
"""Accepted blocklist check interval (seconds); its staleness alert waits a few intervals, a Prometheus duration."""

_HOST_LABEL = re.compile(r'(?!-)[a-z0-9-]{1,63}(?<!-)')
_SMARTHOST = re.compile(r'(?:\[(?P<v6>[^\]]*)\]|(?P<host>[^:\[\]]+))(?::(?P<port>[0-9]{1,5}))?')
SMARTHOST_PORT = 25
"""Port of a smarthost given without one."""
_QUOTED_NAME = r'"(?:[^"\\\x00-\x1f\x7f]|\\[^\x00-\x1f\x7f])*"'
_PHRASE_NAME = r'[^<>,;:"\\()\[\]@\x00-\x1f\x7f]*[^<>,;:"\\()\[\]@\x00-\x20\x7f]'
_NAMED_SENDER = re.compile(rf'(?:(?:{_QUOTED_NAME}|{_PHRASE_NAME}) *)?<(?P<address>[^<>]*)>')  # the name is optional


def smarthost_problem(value: str) -> str | None:
    """Why ``value`` is not ``host``, ``host:port``, ``address:port`` or ``[IPv6]:port`` (Alertmanager's form)."""
    match = _SMARTHOST.fullmatch(value)
    if match is None:
        return (
            'expected a host name or address with an optional ":port", such as relay.example.net:587 '
            '(an IPv6 address in brackets: [2001:db8::25]:587)'
        )
    port = match['port']
    if port is not None and not 1 <= int(port) <= 65535:
        return f'port {port} is out of range: 1 to 65535'
    if match['v6'] is not None:
        try:
            ipaddress.IPv6Address(match['v6'])
        except ValueError:
            return f'"{match["v6"]}" in brackets is not an IPv6 address'
        return None
    host = match['host'].lower().rstrip('.')
    labels = host.split('.')
    if len(host) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        return f'"{match["host"]}" is not a host name'
    if labels[-1].isdigit():  # Go dials an all-numeric name like 999.1.1.1 as a host name, through DNS
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return f'"{match["host"]}" is neither an IPv4 address nor a host name (its last label is a number)'
    return None


def smarthost_address(value: str) -> str:
    """A valid smarthost as Alertmanager dials it: ``host:port``, port 25 when ``value`` has none."""
    match = _SMARTHOST.fullmatch(value)
    if match is None or match['port'] is not None:
        return value
    return f'{value}:{SMARTHOST_PORT}'


def sender_problem(value: str) -> str | None:
    """Why ``value`` is not exactly one address: bare, ``<address>`` or ``Display Name <address>`` (Go's
    mail.ParseAddress)."""
    named = _NAMED_SENDER.fullmatch(value)
    address = named['address'] if named else value
    try:
        parse_email(address)
    except ValueError as error:
        return str(error)
    return None


PostmasterProgramme = Literal['gmail_postmaster_tools', 'microsoft_snds', 'yahoo_cfl']
POSTMASTER_PROGRAMMES: tuple[PostmasterProgramme, ...] = ('gmail_postmaster_tools', 'microsoft_snds', 'yahoo_cfl')

Severity = Literal['warning', 'critical']


class QueueOverride(Model):
    """A stream's own queue thresholds; unset fields keep the deployment's."""

    depth_warning: int | None = Field(None, ge=1, description='Messages queued before a warning.')
    depth_critical: int | None = Field(None, ge=1, description='Messages queued before a critical alert.')
    age_warning: Duration | None = Field(None, description='Age of the oldest deferred message before a warning.')
    age_critical: Duration | None = Field(None, description='Age of the oldest deferred message before a critical.')


class QueueThresholds(Model):
    """When a queue is worth an alert."""

    depth_warning: int = Field(5000, ge=1, description='Messages queued in one stream before a warning.')
    depth_critical: int = Field(50000, ge=1, description='Messages queued in one stream before a critical alert.')
    age_warning: Duration = Field(3600, description='Age of the oldest deferred message before a warning.')
    age_critical: Duration = Field(4 * 3600, description='Age of the oldest deferred message before a critical.')
    streams: dict[str, QueueOverride] = Field(
        default_factory=dict, description='Per-stream overrides of the thresholds above, by stream name.'
    )


class RateThresholds(Model):
    """Rates (fractions of attempts, 0.001 = 0.1 %) above which a stream is alerted on.

    Defaults follow the references: Gmail and Yahoo require a user-reported spam rate below 0.3 % and
    recommend 0.1 %; a bounce rate above 2 % holds warm-up and is the usual ESP suspension line
    (bounces-and-feedback.md). Deferral rates have no published line; 10 %/25 % are ours.
    """

    bounce_warning: float = Field(0.02, gt=0, le=1, description='Hard-bounce rate before a warning.')
    bounce_critical: float = Field(0.05, gt=0, le=1, description='Hard-bounce rate before a critical alert.')
    complaint_warning: float = Field(0.001, gt=0, le=1, description='Complaint rate before a warning (0.1 %).')
    complaint_critical: float = Field(0.003, gt=0, le=1, description='Complaint rate before a critical (0.3 %).')
    deferral_warning: float = Field(0.10, gt=0, le=1, description='Deferral rate before a warning.')
    deferral_critical: float = Field(0.25, gt=0, le=1, description='Deferral rate before a critical alert.')
    window: Duration = Field(
        24 * 3600, description='Window the rates are computed over (Gmail and Yahoo judge daily rates), 5m to 30d.'
    )

    @field_validator('window')
    @classmethod
    def _window(cls, value: int) -> int:
        return duration_in_range(value, RATE_WINDOW)


class Rates(Model):
    """The one place rate thresholds live: every rule (bounces, complaints, deferrals, warm-up) reads them here."""

    default: RateThresholds = Field(default_factory=RateThresholds, description='Thresholds for every stream.')
    streams: dict[str, RateThresholds] = Field(
        default_factory=dict, description='Per-stream thresholds, by stream name (replace the default whole).'
    )


class CustomZone(Model):
    """A blocklist zone that is not in the catalogue, with its documented codes."""

    zone: DnsName = Field(description='Zone name, e.g. "dnsbl.example.net".')
    kind: Literal['ip', 'domain'] = Field(description='"ip" (reversed addresses) or "domain" (RHSBL/URIBL).')
    operator: str = Field(min_length=1, description='Who runs it.')
    decoder: Literal['codes', 'bitmask'] = Field('codes', description='Exact codes, or bits of the last octet.')
    listings: dict[str, str] = Field(
        min_length=1,
        description='Listing answers and their meaning: 127.0.0.0/8 addresses ("codes") or bit values ("bitmask").',
    )
    errors: dict[str, str] = Field(default_factory=dict, description='Answers that are errors or refusals.')
    severity: Severity = Field('warning', description='Alert severity of a listing.')
    test_point: str | None = Field(
        None, description='A name the zone always lists (e.g. "2.0.0.127"), queried to prove the zone works here.'
    )
    delisting_url: str | None = Field(None, description='Where a listed sender asks for removal.')
    ipv6: bool = Field(
        False,
        description='IP zones only: the zone lists IPv6 addresses too, so IPv6 sending IPs are asked, as 32 reversed '
        'nibbles (RFC 5782); without it they are not asked in this zone.',
    )
    host_names: bool = Field(
        False,
        description='Domain zones only: the zone lists host names below a registered domain too, so each name from '
        'a subject (mail.news.example.com) down to its registered domain (example.com) is asked; without it only '
        'the registered domain is.',
    )


class Dnsbl(Model):
    """Blocklist monitoring: which zones, through which resolver, for which subjects."""

    zones: list[str] | None = Field(
        None, description="Catalogue zones to query; default: the catalogue's free, live listing zones."
    )
    custom_zones: list[CustomZone] = Field(default_factory=list, description='Zones added with their own codes.')
    nameservers: list[str] = Field(
        default_factory=lambda: ['127.0.0.1'],
        description='Recursive resolvers to query (address or address:port); default: the local unbound the '
        'monitoring role installs. Public resolvers are refused by Spamhaus and others.',
    )
    interval: Duration = Field(900, description='How often every subject is checked (1m to 7d).')
    link_domains: list[DnsName] = Field(
        default_factory=list, description='Domains found in message bodies (links), checked against URIBL/SURBL.'
    )
    dqs_key_file: str | None = Field(
        None, description='Path (on the monitoring host) of a 0600 file holding the Spamhaus DQS key.'
    )

    @field_validator('interval')
    @classmethod
    def _interval(cls, value: int) -> int:
        return duration_in_range(value, DNSBL_INTERVAL)


class Alert(Model):
    """Where alerts go."""

    kind: Literal['email', 'webhook'] = Field(description='Delivery channel.')
    target: str = Field(
        min_length=1, description='E-mail address, or webhook URL without user name or password (token_file).'
    )
    token_file: str | None = Field(
        None, description='Webhook only: path (on the monitoring host) of a 0600 file with a bearer token.'
    )
    receives: Literal['alerts', 'heartbeat'] = Field(
        'alerts',
        description='"alerts", or "heartbeat": the always-firing dead-man\'s switch, for an outside service that '
        'raises the alarm when it stops arriving.',
    )


class Smarthost(Model):
    """The relay alert e-mail leaves through: never one of the MTAs being watched."""

    host: str = Field(min_length=1, description='Relay host name or address, with an optional ":port".')
    sender: str = Field(min_length=3, description='Envelope and header From of alert mail.')
    username: str | None = Field(None, description='SMTP AUTH user, if the relay needs one.')
    password_file: str | None = Field(None, description='Path (on the monitoring host) of a 0600 password file.')
    require_tls: bool = Field(True, description='Refuse to send alerts without STARTTLS.')

    @field_validator('sender')
    @classmethod
    def _sender(cls, value: str) -> str:
        # amtool takes any text here; Alertmanager then fails every alert mail on the From address.
        if sender_problem(value):
            raise ValueError(
                f'invalid sender "{value}", expected an e-mail address such as alerts@example.com '
                '(or "Alerts <alerts@example.com>"), exactly one'
            )
        return value

    @field_validator('host')
    @classmethod
    def _host(cls, value: str) -> str:
        problem = smarthost_problem(value)
        if problem:
            raise ValueError(f'invalid smarthost "{value}": {problem}')
        return value


class Monitoring(Model):
    """What is watched and who is told."""

    dnsbl_zones: list[str] | None = Field(
        None, description='Deprecated spelling of dnsbl.zones (still accepted): catalogue zones to query.'
    )
    dnsbl_interval: Duration | None = Field(None, description='Deprecated spelling of dnsbl.interval.')
    dnsbl: Dnsbl = Field(default_factory=Dnsbl, description='Blocklist monitoring.')
    queue: QueueThresholds = Field(default_factory=QueueThresholds, description='Queue alert thresholds.')
    rates: Rates = Field(default_factory=Rates, description='Bounce, complaint and deferral rate thresholds.')
    alerts: list[Alert] = Field(default_factory=list, description='Alert destinations.')
    smarthost: Smarthost | None = Field(
        None, description='Independent relay for alert e-mail (required when an e-mail alert is configured).'
    )
    postmaster_programmes: list[PostmasterProgramme] = Field(
        default_factory=lambda: list(POSTMASTER_PROGRAMMES),
        description='Provider programmes to register the IPs and domains with.',
    )

    @field_validator('dnsbl_interval')
    @classmethod
    def _dnsbl_interval(cls, value: int | None) -> int | None:
        return None if value is None else duration_in_range(value, DNSBL_INTERVAL)

    def dnsbl_zone_names(self) -> list[str] | None:
        """The selected catalogue zones, whichever spelling the spec used (None: the default set)."""
        return self.dnsbl.zones if self.dnsbl.zones is not None else self.dnsbl_zones

    def dnsbl_check_interval(self) -> int:
        """Seconds between blocklist checks, whichever spelling the spec used."""
        return self.dnsbl_interval if self.dnsbl_interval is not None else self.dnsbl.interval
