"""The contract's types: what the controller compiles for one host and the host's services read.

Frozen dataclasses, standard library only. The controller builds these objects and serialises them with
``dump_contract``; the host reads them back with ``load_contract``, so both sides are checked against the
same definitions. Durations are whole seconds. Secrets are never values here, only paths of 0600 files
(fields ending in ``_file``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

CONTRACT_VERSION = 6
"""The contract version this agent writes. See docs/agent-contract.md for the rules.

2 (issue 12): exporter, blocklist subjects/nameservers/zone details, dns_expectations, bounce_rules.
3 (issue 13): stream verp/complaint_links/suppression_map, suppression key rotation and window, logs,
feedback_maildirs, retention, unsubscribe, webhook.
4 (issue 14): back-off rule trigger_count/trigger_window/failover and action suspend_ip.
4 (issue 14), also: warmup (curve, time zone, per-stream limits, ISP shares), sending IP warmup_started.
5: blocklist zone host_names. 6: exporter shared_labels.
"""

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
class Verp:
    """Return path of a stream: ``<prefix><separator><signed data>@<domain>`` (``mailinfra_agent.feedback.verp``)."""

    enabled: bool = False
    prefix: str = 'b'
    separator: str = '-'
    domains: dict[str, str] = field(default_factory=dict)
    """From domain of the stream -> its return-path domain (the spec's ``return_path_domain`` for all, if set)."""


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
    verp: Verp = field(default_factory=Verp)
    complaint_links: tuple[str, ...] = ()
    """Other streams of the deployment a complaint or unsubscribe on this stream also suppresses."""
    suppression_map: str | None = None
    """Postfix: the access table of suppressed recipients the instance's injection listener checks (source
    of a ``hash:`` table, ``<path>.db`` built by postmap); None for PowerMTA, where the injection point enforces it."""


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
    warmup_started: str | None = None
    """ISO date (``2026-03-01``) the warm-up of this address started; None: not warming up (``Warmup``)."""


@dataclass(frozen=True)
class BackoffRule:
    """A reply from a provider that slows delivery down (``backoff``), pauses it (``suspend``) or takes the
    sending IP out of rotation for every provider of the stream (``suspend_ip``)."""

    pattern: str
    """Python regular expression, matched against ``"<code> <enhanced-code> <text>"``."""
    action: Literal['backoff', 'suspend', 'suspend_ip']
    duration: int
    """Seconds the action lasts after the last match that triggered or extended it."""
    description: str
    origin: Literal['isp', 'reply-rule']
    """``isp``: one of the provider's rules; ``reply-rule``: a stream reply rule that defers a reputation category."""
    category: str | None
    """The reply rule's bounce category; None for a provider's rule."""
    trigger_count: int = 1
    """Matches (per stream, sending IP and provider) within ``trigger_window`` that start the action."""
    trigger_window: int = 0
    """Seconds the ``trigger_count`` matches must fall within; 0: the first match acts (``trigger_count`` is 1)."""
    failover: bool = False
    """``suspend`` only: the pool's other IPs take the provider's mail meanwhile; False: the mail waits."""


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
    """A DNS blocklist zone and how to read its answers (the agent's catalogue, or a custom zone of the spec)."""

    zone: str
    kind: Literal['ip', 'domain']
    operator: str
    decoder: Literal['codes', 'bitmask', 'score']
    listings: dict[str, str]
    """Answer (``codes``, ``score`` meanings) or bit value (``bitmask``) -> meaning."""
    errors: dict[str, str]
    """Answer or bit value -> meaning of an error or refusal (never a listing)."""
    error_ids: dict[str, str] = field(default_factory=dict)
    """Answer or bit value -> short error id (metric label); missing ones become ``custom_<n>``."""
    section: Literal['listing', 'allowlist', 'reputation', 'key_only'] = 'listing'
    list_kind: str = ''
    severity: Literal['warning', 'critical'] = 'warning'
    test_point: str | None = None
    """Query prefix the zone always lists (``2.0.0.127``); None: no test point, the zone is trusted."""
    test_answers: tuple[str, ...] = ()
    negative_point: str | None = None
    delisting_url: str | None = None
    source: str = ''
    ipv6: bool = False
    host_names: bool = False
    """Domain zones: host names below a registered domain are asked too (the zone lists them)."""
    key: Literal['dqs', 'abusix'] | None = None
    key_zone: str | None = None
    score_network: str | None = None
    """Score decoder: answers inside this network carry the score in their last octet."""
    score_min: int = 0
    score_max: int = 255


@dataclass(frozen=True)
class BlocklistSubjects:
    """What the monitoring host checks (empty on other hosts)."""

    ips: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()


@dataclass(frozen=True)
class Blocklists:
    interval: int
    zones: tuple[BlocklistZone, ...]
    dqs_key_file: str | None = None
    """Spamhaus DQS key (0600 file); None queries the public mirrors."""
    nameservers: tuple[str, ...] = ('127.0.0.1',)
    """Recursive resolvers (``address`` or ``address:port``), asked in order."""
    subjects: BlocklistSubjects = field(default_factory=BlocklistSubjects)
    textfile: str = '/var/lib/prometheus/node-exporter/mailinfra_dnsbl.prom'
    """node_exporter textfile the ``dnsbl check`` timer writes."""
    rate_limit: int | None = None
    """Queries a second per zone; None: no limit beyond the concurrency."""


@dataclass(frozen=True)
class Suppression:
    """Suppression list policy; per-category counts are in each stream's ``bounce_categories``."""

    signing_key_file: str | None = None
    """Key (0600 file) that signs VERP addresses and unsubscribe links (spec ``feedback.signing_key_file``)."""
    old_signing_key_files: tuple[str, ...] = ()
    """Earlier keys (0600 files) that still verify, never sign (key rotation)."""
    soft_bounce_window: int = 30 * 86400
    """Seconds within which soft bounces count towards a category's ``suppress_after``."""


@dataclass(frozen=True)
class LogSource:
    """A log file an MTA instance of this host writes, read by ``mailinfra-agent ingest``."""

    path: str
    format: Literal['postfix', 'powermta-acct']
    instance: str
    """Postfix instance (``postfix``, ``postfix-<stream>``), or ``powermta``."""
    syslog_name: str | None = None
    """Postfix: the program prefix of its lines (``postfix-marketing/smtp[123]:``); None for PowerMTA."""
    stream: str | None = None
    """The stream the instance sends; None for the primary Postfix instance and PowerMTA (one for all streams)."""


@dataclass(frozen=True)
class Retention:
    """How long personal data is kept (seconds)."""

    events: int = 180 * 86400
    """Events keep the recipient address this long."""
    after: Literal['hash', 'erase'] = 'hash'
    """Then the address becomes a keyed hash, or is removed."""
    suppressions: Literal['address', 'hash'] = 'address'
    """Suppressed recipients kept as addresses, or only as keyed hashes."""
    hash_key_file: str | None = None
    """Key (0600 file, never rotated) of the keyed hashes."""


@dataclass(frozen=True)
class Unsubscribe:
    """The one-click unsubscribe endpoint (RFC 8058); ``enabled`` only on the hosts that serve it."""

    enabled: bool = False
    hostname: str | None = None
    """Public host name; links are ``https://<hostname>/...``."""
    listen_address: str = '0.0.0.0'
    port: int = 443
    tls_certificate_file: str | None = None
    tls_key_file: str | None = None
    """Private key of the certificate (0600 file)."""
    token_max_age: int = 180 * 86400
    """Seconds after which a token is refused."""
    rate_limit: int = 60
    """Requests a minute accepted from one client address."""


@dataclass(frozen=True)
class Webhook:
    """Signed HTTP POST for each new suppression; ``url`` None: no webhook."""

    url: str | None = None
    secret_file: str | None = None
    """HMAC key (0600 file) that signs each request."""
    retries: int = 8
    timeout: int = 10


@dataclass(frozen=True)
class Store:
    """Where the host services keep their state: SQLite (``path``) or PostgreSQL (``dsn`` + ``password_file``)."""

    backend: Literal['sqlite', 'postgresql']
    path: str | None = None
    dsn: str | None = None
    """A libpq connection string without a password, e.g. ``host=db.example.net dbname=mailinfra user=agent``."""
    password_file: str | None = None


DEFAULT_EXPORTER_PORT = 9745


@dataclass(frozen=True)
class LabelIp:
    """A sending IP of the deployment as feedback events carry it (its id, or its address once allocated)."""

    id: str
    address: str | None = None


@dataclass(frozen=True)
class SharedLabels:
    """The feedback counters' label values on every host of a shared store: the deployment's, not the host's.

    Every host serves the counts of the whole store and the rules take their maximum across hosts, so each host
    must label the same events alike (one host's ``other`` would be another's stream, ISP or IP, counted twice).
    """

    streams: tuple[str, ...] = ()
    isps: tuple[str, ...] = ()
    """``Isp.name`` values of every stream of the deployment, ``DEFAULT_ISP`` included."""
    ips: tuple[LabelIp, ...] = ()


@dataclass(frozen=True)
class Exporter:
    """The queue exporter (``mailinfra-agent exporter``) of an MTA host; see docs/monitoring.md."""

    listen_address: str = '0.0.0.0'
    port: int = DEFAULT_EXPORTER_PORT
    top_domains: int = 10
    """Recipient domains reported by name per stream; the rest are summed as ``other``."""
    powermta_url: str | None = None
    """PowerMTA's HTTP management API (``http-mgmt-port``); None on a host without PowerMTA."""
    timeout: int = 5
    """Seconds one collection from PowerMTA's API may take before the collector counts as down."""
    shared_labels: SharedLabels | None = None
    """A PostgreSQL store: the deployment's streams, ISPs and IPs to label feedback counters by; None: the host's."""


@dataclass(frozen=True)
class BounceRule:
    """A bounce-classification rule (``mailinfra_agent.feedback.classify``); empty conditions are not checked."""

    id: str
    category: str
    """A PowerMTA bounce category (``bad-mailbox``, ``policy-related``, ...)."""
    codes: tuple[str, ...] = ()
    """SMTP reply code patterns: ``550``, ``55x``, ``5xx``."""
    enhanced: tuple[str, ...] = ()
    """RFC 3463 status code patterns: ``5.1.1``, ``x.1.1``, ``5.7.x``."""
    regex: str | None = None
    """Python regular expression, case-insensitive, searched in the reply text."""
    isp: str | None = None
    """Only for recipients of this ISP profile."""
    stream: str | None = None
    """Only for events of this stream (a stream's own rule)."""
    origin: Literal['catalogue', 'spec'] = 'catalogue'
    description: str = ''


@dataclass(frozen=True)
class BounceRules:
    """Bounce classification: the spec's rules (streams' first), then the catalogue's; the first match wins."""

    rules: tuple[BounceRule, ...] = ()
    max_text: int = 4096
    """Characters of a reply the rules see."""


@dataclass(frozen=True)
class DnsExpectation:
    """A public record set the monitoring host expects the resolver to answer (``mailinfra-agent dns-drift``)."""

    name: str
    """Fully qualified, lower case, no trailing dot."""
    type: str
    """A, AAAA, CNAME, MX, PTR or TXT."""
    values: tuple[str, ...]
    """As ``mailinfra_agent.dns`` reports them: TXT strings joined, names without the trailing dot, MX ``"10 name"``."""
    check: str
    """The ``check`` label of the metric: spf, dkim, dmarc, ptr, mx, a, mta_sts, tls_rpt or other."""


@dataclass(frozen=True)
class WarmupStep:
    """A point of the warm-up curve: the daily cap of one sending IP on warm-up day ``day`` (1 = start day)."""

    day: int
    cap: int


@dataclass(frozen=True)
class WarmupStream:
    """How a stream's warming IPs split their daily cap, and the rates above which their progress holds."""

    stream: str
    hard_bounce_limit_ppm: int = 20_000
    """Hard-bounce rate (parts per million, 20,000 = 2 %) above which a day does not advance the warm-up."""
    complaint_limit_ppm: int = 1_000
    """Complaint rate (parts per million, 1,000 = 0.1 %) above which a day does not advance the warm-up."""
    shares: dict[str, int] = field(default_factory=dict)
    """``Isp.name`` -> its part of the daily cap (parts per million); ``DEFAULT_ISP`` gets the rest."""


@dataclass(frozen=True)
class Warmup:
    """IP warm-up: the curve every warming IP follows from its ``warmup_started``; the host computes today's step."""

    curve: str = ''
    """Name of the curve (``conservative``: KumoMTA's), for status and logs; empty: no warm-up."""
    steps: tuple[WarmupStep, ...] = ()
    """Published points, by day; days between them are interpolated geometrically; after the last, no cap."""
    time_zone: str = 'UTC'
    """IANA time zone whose midnight starts a warm-up day (caps reset, the next step begins)."""
    on_threshold: Literal['hold', 'cut_back'] = 'hold'
    """A day over a stream's limits does not advance the IP (``hold``) or moves it one step back (``cut_back``)."""
    min_sent: int = 50
    """Deliveries a day needs before its rates are judged (fewer: the day counts as good)."""
    streams: tuple[WarmupStream, ...] = ()


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
    exporter: Exporter = field(default_factory=Exporter)
    bounce_rules: BounceRules = field(default_factory=BounceRules)
    """Bounce classification rules; empty in a contract rendered before they existed."""
    dns_expectations: tuple[DnsExpectation, ...] = ()
    """Monitoring hosts only: the deployment's public records, compared with DNS answers by ``dns-drift``."""
    logs: tuple[LogSource, ...] = ()
    """MTA hosts: the log files of their MTA instances."""
    feedback_maildirs: tuple[str, ...] = ()
    """Postfix inbound hosts: the Maildir that receives everything sent to the return-path domains (DSNs, ARF)."""
    retention: Retention = field(default_factory=Retention)
    unsubscribe: Unsubscribe = field(default_factory=Unsubscribe)
    webhook: Webhook = field(default_factory=Webhook)
    warmup: Warmup = field(default_factory=Warmup)
    """MTA hosts with warming IPs: the schedule the shaping service turns into daily caps."""
