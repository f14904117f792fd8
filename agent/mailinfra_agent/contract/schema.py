"""The contract's types: what the controller compiles for one host and the host's services read.

Frozen dataclasses, standard library only. The controller builds these objects and serialises them with
``dump_contract``; the host reads them back with ``load_contract``, so both sides are checked against the
same definitions. Durations are whole seconds. Secrets are never values here, only paths of 0600 files
(fields ending in ``_file``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

CONTRACT_VERSION = 1
"""The contract version this agent writes and understands. See docs/agent-contract.md for the rules."""

DEFAULT_CONTRACT_PATH = '/etc/mailinfra/agent.json'
DEFAULT_SQLITE_PATH = '/var/lib/mailinfra/agent.db'

Mta = Literal['postfix', 'powermta']


@dataclass(frozen=True)
class Host:
    """The host the contract is for."""

    name: str
    fqdn: str
    roles: tuple[str, ...]
    """What the host does in the deployment's model (``mta``, and e.g. monitoring, database, dns)."""
    mta: Mta | None
    """The MTA the host runs; None on a host without the ``mta`` role."""


@dataclass(frozen=True)
class Injection:
    """The listener applications hand the stream's mail to."""

    port: int
    networks: tuple[str, ...]
    sasl_users: tuple[str, ...]


@dataclass(frozen=True)
class Retry:
    """Queue timing of a stream (seconds)."""

    min_backoff: int
    max_backoff: int
    queue_lifetime: int


@dataclass(frozen=True)
class BounceCategory:
    """How one bounce category is handled in a stream: retries and suppression."""

    name: str
    retry: bool
    retry_after: tuple[int, ...]
    """Retry intervals (seconds); the last one repeats. Empty when the category is not retried."""
    expire_after: int
    suppress_after: int | None
    """Bounces of this category after which the recipient is suppressed; None: never."""


@dataclass(frozen=True)
class ReplyRule:
    """A remote reply that is reclassified (pattern against ``"<code> <enhanced-code> <text>"``)."""

    pattern: str
    category: str
    action: Literal['defer', 'bounce']
    description: str


@dataclass(frozen=True)
class Limits:
    """Throttles towards one provider from each sending IP of a stream; every field is resolved."""

    max_connections: int
    messages_per_connection: int
    messages_per_hour: int
    recipients_per_message: int
    retry_after: int
    backoff_messages_per_hour: int
    backoff_retry_after: int
    backoff_to_normal_after: int
    require_tls: bool


DEFAULT_ISP = '*'
"""The ``Isp.name`` of the recipients that no provider matches."""


@dataclass(frozen=True)
class Isp:
    """A mailbox provider: how its recipients are recognised (the same for every stream of the host)."""

    name: str
    """The provider's profile name, or ``DEFAULT_ISP`` for every other recipient."""
    display_name: str
    recipient_domains: tuple[str, ...]
    mx_patterns: tuple[str, ...]
    """MX host-name suffixes (``.google.com``) that identify the provider for other recipient domains."""


@dataclass(frozen=True)
class StreamIsp:
    """Delivery of one stream to one provider: limits, retries and back-off.

    The limits hold for each sending IP of the stream: the delivery plan's rows per sending IP carry the
    same values, so the contract states them once per stream and provider instead of once per IP.
    """

    isp: str
    """An ``Isp.name`` of the contract."""
    limits: Limits
    retry_after: tuple[int, ...]
    """Retry intervals of ordinary temporary failures towards this provider; the last one repeats."""
    backoff_rules: tuple[BackoffRule, ...]
    """First match wins."""


@dataclass(frozen=True)
class Stream:
    """A mail stream with its MTA instance on this host."""

    name: str
    kind: str
    instance: str
    """Postfix: the postmulti instance (``postfix-<stream>``); PowerMTA: the virtual-MTA pool (the stream name)."""
    domains: tuple[str, ...]
    injection: Injection
    retry: Retry
    bounce_categories: tuple[BounceCategory, ...]
    reply_rules: tuple[ReplyRule, ...]
    isps: tuple[StreamIsp, ...]


@dataclass(frozen=True)
class SendingIp:
    """A sending address of this host."""

    id: str
    address: str | None
    """None while the provider has not allocated it yet (known after ``terraform apply``)."""
    ptr: str
    helo: str
    pool: str
    stream: str | None
    """The stream that sends from the pool; None for a pool no stream uses."""


@dataclass(frozen=True)
class BackoffRule:
    """A reply from a provider that slows delivery down (``backoff``) or pauses it (``suspend``)."""

    pattern: str
    """Python regular expression, matched against ``"<code> <enhanced-code> <text>"``."""
    action: Literal['backoff', 'suspend']
    duration: int
    description: str
    origin: Literal['isp', 'reply-rule']
    """``isp``: one of the provider's rules; ``reply-rule``: a stream reply rule that defers a reputation category."""
    category: str | None
    """The reply rule's bounce category; None for a provider's rule."""


@dataclass(frozen=True)
class QueueThresholds:
    depth_warning: int
    depth_critical: int
    age_warning: int
    age_critical: int


@dataclass(frozen=True)
class Thresholds:
    """When a measurement is worth an alert."""

    queue: QueueThresholds


@dataclass(frozen=True)
class BlocklistZone:
    """A DNS blocklist zone and how to read its answers (from the controller's catalogue)."""

    zone: str
    kind: Literal['ip', 'domain']
    operator: str
    decoder: Literal['codes', 'bitmask']
    listings: dict[str, str]
    errors: dict[str, str]


@dataclass(frozen=True)
class Blocklists:
    interval: int
    zones: tuple[BlocklistZone, ...]
    dqs_key_file: str | None = None
    """Spamhaus DQS key (0600 file); None queries the public mirrors."""


@dataclass(frozen=True)
class Suppression:
    """Suppression list policy; per-category counts are in each stream's ``bounce_categories``."""

    signing_key_file: str | None = None
    """Key (0600 file) that signs VERP addresses and unsubscribe links; None until a feature needs it."""


@dataclass(frozen=True)
class Store:
    """Where the host services keep their state: SQLite (``path``) or PostgreSQL (``dsn`` + ``password_file``)."""

    backend: Literal['sqlite', 'postgresql']
    path: str | None = None
    dsn: str | None = None
    """A libpq connection string without a password, e.g. ``host=db.example.net dbname=mailinfra user=agent``."""
    password_file: str | None = None


@dataclass(frozen=True)
class Contract:
    """Everything the host's services need to know about this host, compiled on the controller."""

    version: int
    host: Host
    streams: tuple[Stream, ...]
    isps: tuple[Isp, ...]
    """The providers the streams deliver to, ``DEFAULT_ISP`` included."""
    ips: tuple[SendingIp, ...]
    thresholds: Thresholds
    blocklists: Blocklists
    suppression: Suppression = field(default_factory=Suppression)
    store: Store = field(default_factory=lambda: Store('sqlite', path=DEFAULT_SQLITE_PATH))
