"""``powermta__*``: the PowerMTA configuration of a host, computed here so that the template only prints it.

What maps to what (``docs/powermta.md`` has the reasoning):

- each sending IP of the host is a ``<virtual-mta>`` (``smtp-source-host IP HELO``), named by its IP id;
- each stream on the host is a ``<virtual-mta-pool>`` named after the stream, holding the stream's IPs on the host;
- each stream's injection port is an ``smtp-listener 0/0:PORT`` (every local address; the firewall of ``mta_base``
  opens the port to the stream's networks only);
- each injection network is a ``<source>`` that may relay, with ``process-x-virtual-mta yes`` (an
  ``X-Virtual-MTA: <stream>`` header selects the pool) and ``default-virtual-mta`` the pool of the first stream
  injecting from that network;
- with ``feedback.suppression.powermta_gate``, mailinfra's suppression gate takes the public injection ports instead:
  PowerMTA listens on one loopback port (``powermta__gate.upstream``), and each stream gets a loopback source address
  127.0.0.N that the gate relays its port's sessions from; ``<source 127.0.0.N>`` defaults to the stream's pool and
  ignores ``X-Virtual-MTA``, so the port selects the stream;
- each stream with SMTP AUTH users has a named source ``<source {auth-STREAM}>`` (``require-auth true``,
  ``default-virtual-mta STREAM``, no header selection) that its ``<smtp-user>`` blocks name: the login selects the pool;
- each provider with recipient domains is a ``domain-macro`` rolled up into one queue ``<isp>.queue``
  (``<domain $isp> queue-to <isp>.queue``) so that its limits count once per IP, not once per recipient domain;
- each VMTA carries the queues of its stream (``<domain <isp>.queue>`` and ``<domain *>``): PowerMTA applies limits
  per queue (recipient domain x VMTA) and a VMTA has one IP, so the facts' per-IP limits carry over one to one;
- backoff rules of a provider and the stream's "slow down" reply rules become an ``<smtp-pattern-list>``:
  ``reply /RE/ mode=backoff`` (``suspend_ip``: ``disable-source-ip reenable-after=``); the same rules the shaping
  service enforces for Postfix (``docs/shaping.md``), with what PowerMTA cannot express in the notes.

Values are the delivery plan's (``facts.plan``: resolved limits, retry schedules, back-off rules), in PowerMTA's
notation. What PowerMTA cannot express with the directives of our reference is listed in
``powermta__notes``, which the template writes at the top of the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from mailinfra_agent.shaping.powermta_warmup import queue_name, vmta_name

from ...catalogue import bounces
from ...facts import DEFAULT_ISP, Backoff, IspPlan, StreamPlan
from ...facts.hosts import POWERMTA_MGMT_PORT, gate_upstream_port
from ...facts.plan import ORDINARY
from ..base import RenderContext
from .base import Template
from .core import dkim_keys_by_domain

MTA = 'powermta'
LISTEN_ALL = '0/0'
"""``smtp-listener`` address for every local address, as Port25's sample writes it."""
GATE_UPSTREAM = '127.0.0.1'
GATE_SOURCE_BASE = 2
"""The first stream's loopback source is 127.0.0.2; 127.0.0.1 stays for the host's own clients."""
CONFIG_TEMPLATE = Template('powermta/templates/etc/pmta/config.j2', 'pmta/config')

HTTP_MGMT_PORT = POWERMTA_MGMT_PORT  # one value: the reserved-port check reads it from facts
DKIM_DIR = '/etc/pmta/dkim'
SPOOL_DIR = '/var/spool/pmta'
LOG_DIR = '/var/log/pmta'
ACCT_ARCHIVE_DIR = f'{LOG_DIR}/acct-archive'
ACCT_FIELDS = (
    'type',
    'timeLogged',
    'timeQueued',
    'orig',
    'rcpt',
    'orcpt',
    'dsnAction',
    'dsnStatus',
    'dsnDiag',
    'dsnMta',
    'bounceCat',
    'srcMta',
    'dlvSourceIp',
    'dlvDestinationIp',
    'dlvSize',
    'vmta',
    'jobId',
    'envId',
)
"""Accounting fields, all from the reference's field list (v5.5 accounting; mailrelay appendix)."""


def duration(seconds: int) -> str:
    """PowerMTA time notation in one unit (``600`` -> ``10m``, ``43200`` -> ``12h``)."""
    for unit, size in (('d', 86400), ('h', 3600), ('m', 60)):
        if seconds % size == 0:
            return f'{seconds // size}{unit}'
    return f'{seconds}s'


def per_hour(count: int) -> str:
    return f'{count}/h'


def auth_source(stream: str) -> str:
    """The named source (``<source {NAME}>``) that a stream's SMTP users select."""
    return f'{{auth-{stream}}}'


def default_stream(streams: list[str], kinds: dict[str, str]) -> str:
    """The pool for messages without ``X-Virtual-MTA`` from a network that several streams share.

    The first stream in spec order that is not transactional: bulk mail that forgets the header must not land on
    the transactional IPs, whose reputation matters most; a receipt that forgets it is the lesser harm.
    """
    return next((name for name in streams if kinds[name] != 'transactional'), streams[0])


def _regex(pattern: str) -> str:
    """A pattern between slashes, as ``reply /.../`` takes it."""
    return re.sub(r'(?<!\\)/', r'\/', pattern)


def reply_action(rule: Backoff) -> str:
    """The ``reply`` action of a back-off rule (mta.md §1.2): ``suspend_ip`` disables the source IP for the rule's
    duration; ``backoff`` and ``suspend`` switch the queue to backoff mode (no suspending action is confirmed)."""
    if rule.action == 'suspend_ip':
        return f'disable-source-ip reenable-after={duration(rule.duration)}'
    return 'mode=backoff'


def _trigger(rule: Backoff) -> str:
    return '' if rule.first_match else f' after {rule.trigger_count} in {duration(rule.trigger_window)}'


def _pattern(plan: IspPlan, rule: Backoff) -> dict[str, str]:
    failover = ' with failover' if rule.failover else ''
    why = (
        f'{plan.isp} {rule.action}{failover} {duration(rule.duration)}{_trigger(rule)}: {rule.description}'
        if rule.origin == 'isp'
        else f'{rule.category}: {rule.description}'
    )
    return {'regex': _regex(rule.pattern), 'action': reply_action(rule), 'why': why}


def _backoff_rules(plan: IspPlan) -> list[dict[str, str]]:
    """The plan's back-off rules as ``reply`` lines, in the plan's order (see ``reply_action`` and the notes).

    A stream's reply rule is dropped where a provider's rule has the same regex once written between slashes.
    """
    own = [_pattern(plan, rule) for rule in plan.backoff if rule.origin == 'isp']
    seen = {rule['regex'] for rule in own}
    return own + [
        entry for rule in plan.backoff if rule.origin != 'isp' and (entry := _pattern(plan, rule))['regex'] not in seen
    ]


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _distinct(values: Iterable[list[dict[str, str]]]) -> list[list[dict[str, str]]]:
    """The distinct rule lists, by value (the same list object for most streams: ``in`` tests identity first)."""
    found: list[list[dict[str, str]]] = []
    for value in values:
        if value not in found:
            found.append(value)
    return found


def gate_upstream(context: RenderContext, host: str) -> tuple[str, int]:
    """PowerMTA's loopback listener behind the suppression gate on ``host``: address and port."""
    ports = [stream.injection.port for stream in context.facts.streams_of_host(host)]
    return GATE_UPSTREAM, gate_upstream_port(context.deployment, host, ports)


def has_gate(context: RenderContext, host: str) -> bool:
    """Whether the suppression gate runs in front of PowerMTA on ``host``."""
    return context.facts.host_mta.get(host) == MTA and context.deployment.feedback.suppression.powermta_gate


class _Host:
    """The computation for one PowerMTA host."""

    def __init__(self, context: RenderContext, host: str) -> None:
        self.context = context
        self.host = host
        self.streams = context.facts.streams_of_host(host)
        self.plans = {stream.name: context.facts.plan.for_stream(stream.name) for stream in self.streams}
        self._notes: dict[str, list[str]] = {}
        self.isps = self._isps()
        self.gate = context.deployment.feedback.suppression.powermta_gate

    def _isps(self) -> dict[str, list[str]]:
        """Providers with recipient domains on this host's streams: name -> domains (union over the streams)."""
        domains: dict[str, list[str]] = {}
        plans = list(self.plans.values())
        for plan in plans:
            for name, isp in plan.isps.items():
                domains[name] = _unique([*domains.get(name, []), *isp.recipient_domains])
        for name in sorted(domains):
            if not domains[name]:
                mx = ', '.join(plans[0].isps[name].mx_patterns) if name in plans[0].isps else ''
                self.note(
                    name,
                    f"recognised only by MX ({mx}); PowerMTA's MX rollup syntax is not confirmed in our reference, "
                    'so these recipients get the <domain *> limits',
                )
                del domains[name]
        for name in domains:
            variants = {frozenset(plan.isps[name].recipient_domains) for plan in plans if name in plan.isps}
            if len(variants) > 1:
                self.note(name, 'streams add different recipient domains; the rollup uses all of them')
        return dict(sorted(domains.items()))

    def note(self, subject: str, message: str) -> None:
        """Record a difference from the spec; the same message for several subjects becomes one line."""
        subjects = self._notes.setdefault(message, [])
        if subject not in subjects:
            subjects.append(subject)

    # --- IPs, pools, sources -----------------------------------------------------------------------------------------

    def virtual_mtas(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, str]]]:
        vmtas, pools, unallocated = [], [], []
        for stream in self.streams:
            members = []
            for ip in stream.ips:
                if ip.host != self.host:
                    continue
                address = self.context.address_of(ip.id, ip.address)
                if address is None:
                    unallocated.append({'id': ip.id, 'ptr': ip.ptr})
                    continue
                vmtas.append({'name': vmta_name(ip.id), 'address': address, 'helo': ip.helo, 'stream': stream.name})
                members.append(vmta_name(ip.id))
            pools.append({'name': stream.name, 'members': members})
        return vmtas, pools, unallocated

    def gate_streams(self) -> list[dict[str, Any]]:
        """Each stream's public port and the loopback address the gate relays its sessions from."""
        return [
            {
                'name': stream.name,
                'port': stream.injection.port,
                'source': f'127.0.0.{GATE_SOURCE_BASE + index}',
                'networks': list(stream.injection.networks),
            }
            for index, stream in enumerate(self.streams)
        ]

    def gate_upstream_port(self) -> int:
        return gate_upstream(self.context, self.host)[1]

    def sources(self) -> list[dict[str, Any]]:
        if self.gate:
            self.note(
                'suppression gate',
                "mailinfra's gate holds the injection ports and refuses suppressed recipients (550 5.7.1); PowerMTA "
                'listens on loopback only and each port selects its stream through the source address the gate '
                'relays from (X-Virtual-MTA is ignored)',
            )
            return [
                {'network': item['source'], 'default_pool': item['name'], 'streams': [item['name']], 'header': False}
                for item in self.gate_streams()
            ]
        by_network: dict[str, list[str]] = {}
        for stream in self.streams:
            if not stream.injection.networks:
                self.note(
                    f'stream {stream.name}',
                    f'no injection network: select its pool with "X-Virtual-MTA: {stream.name}" from another source',
                )
            for network in stream.injection.networks:
                by_network.setdefault(network, []).append(stream.name)
        kinds = {stream.name: stream.kind for stream in self.streams}
        sources = []
        for network, streams in by_network.items():
            default = default_stream(streams, kinds)
            if len(streams) > 1:
                self.note(
                    f'streams {", ".join(streams)}',
                    f'inject from {network}: messages must carry "X-Virtual-MTA: <stream>"; without it they go to '
                    f'pool {default}',
                )
            sources.append({'network': network, 'default_pool': default, 'streams': streams})
        if len(self.streams) > 1:
            ports = ', '.join(f'{stream.name} {stream.injection.port}' for stream in self.streams)
            self.note(
                f'injection ports ({ports})',
                'PowerMTA listens on all of them, but a port does not select a stream (no such directive is confirmed '
                'in our reference): the client network, the SMTP login or X-Virtual-MTA does',
            )
        return sources

    def listeners(self) -> list[dict[str, Any]]:
        """One ``smtp-listener`` per stream (validation gives the streams of a host different ports)."""
        if self.gate:
            names = [stream.name for stream in self.streams]
            return [{'address': GATE_UPSTREAM, 'port': self.gate_upstream_port(), 'streams': names}]
        return [
            {'address': LISTEN_ALL, 'port': stream.injection.port, 'streams': [stream.name]} for stream in self.streams
        ]

    def auth_sources(self) -> list[dict[str, Any]]:
        """A named source per stream with SMTP AUTH users; each user selects the source of one stream."""
        owner: dict[str, str] = {}
        sources = []
        for stream in self.streams:
            users = []
            for user in stream.injection.sasl_users:
                if user in owner:
                    self.note(
                        f'SMTP user {user}',
                        f'listed by streams {owner[user]} and {stream.name}; PowerMTA selects one source per login, '
                        f'so it sends as stream {owner[user]}',
                    )
                    continue
                owner[user] = stream.name
                users.append(user)
            if users:
                sources.append({'name': auth_source(stream.name), 'pool': stream.name, 'users': users})
        return sources

    # --- queues ------------------------------------------------------------------------------------------------------

    def _backoff_rules(self, plan: IspPlan) -> list[dict[str, str]]:
        """``_backoff_rules(plan)``, built once per render for the same ISP and rules (many streams have the same),
        and shared data of the render (``serialise.Shared``: written to YAML once)."""
        built: dict[tuple[str, tuple[Backoff, ...]], list[dict[str, str]]]
        built = self.context.memoize('powermta:backoff_rules', dict)
        key = (plan.isp, plan.backoff)
        rules = built.get(key)
        if rules is None:
            rules = built[key] = _backoff_rules(plan)
            self.context.shared.add(rules)
        return rules

    def pattern_lists(self) -> tuple[list[dict[str, Any]], dict[tuple[str, str], str]]:
        """Pattern lists, shared between streams when their rules are the same; (stream, isp) -> list name."""
        lists: list[dict[str, Any]] = []
        names: dict[tuple[str, str], str] = {}
        for isp in [*self.isps, '*']:
            key = 'default' if isp == '*' else isp
            rules = {
                stream.name: self._backoff_rules(self.plans[stream.name].isp(DEFAULT_ISP if isp == '*' else isp))
                for stream in self.streams
            }
            variants = _distinct(rules.values())
            for stream_name, stream_rules in rules.items():
                if not stream_rules:
                    continue
                name = f'backoff-{key}' if len(variants) == 1 else f'backoff-{key}-{stream_name}'
                names[(stream_name, isp)] = name
                if all(entry['name'] != name for entry in lists):
                    lists.append({'name': name, 'rules': stream_rules})
        return lists, names

    def queue(self, stream: StreamPlan, isp: str, plan: IspPlan, pattern_list: str | None) -> dict[str, Any]:
        """The ``<domain>`` block of ``isp`` (``*``: every other recipient) in each VMTA of the stream."""
        limits = plan.limits
        return {
            'domain': '*' if isp == '*' else queue_name(isp),
            'isp': 'default' if isp == '*' else isp,
            'smtp_hosts': None if isp == '*' else self.isps[isp][0],
            'max_smtp_out': limits.max_connections,
            'max_msg_per_connection': limits.messages_per_connection,
            'max_msg_rate': per_hour(limits.messages_per_hour),
            'retry_after': ','.join(duration(value) for value in plan.retry_after),
            'bounce_after': duration(stream.retry.queue_lifetime),
            'backoff_max_msg_rate': per_hour(limits.backoff_messages_per_hour),
            'backoff_retry_after': duration(limits.backoff_retry_after),
            'backoff_to_normal_after': duration(limits.backoff_to_normal_after),
            'smtp_pattern_list': pattern_list,
        }

    def queues(self, names: dict[tuple[str, str], str]) -> dict[str, list[dict[str, Any]]]:
        result = {}
        for stream in self.streams:
            plan = self.plans[stream.name]
            entries = []
            for isp in self.isps:
                if isp not in plan.isps:
                    self.note(f'stream {stream.name}', f'{isp} is not one of its providers; default limits apply')
                entries.append(self.queue(plan, isp, plan.isp(isp), names.get((stream.name, isp))))
            entries.append(self.queue(plan, '*', plan.default, names.get((stream.name, '*'))))
            result[stream.name] = entries
        return result

    def policy_notes(self) -> None:
        """What our bounce policy asks for and PowerMTA cannot do with the directives of our reference."""
        tls = sorted(
            isp
            for isp in self.isps
            if any(isp in plan.isps and plan.isps[isp].limits.require_tls for plan in self.plans.values())
        )
        if tls:
            self.note(
                f'require_tls ({", ".join(tls)})',
                'use-starttls yes is rendered; require-starttls, which presumably refuses delivery without TLS, has '
                'a single source in our reference and is not rendered',
            )
        self.note(
            'recipients_per_message',
            'not rendered: our reference gives max-rcpt-per-message two different meanings (single source)',
        )
        for stream in self.streams:
            self._stream_notes(self.plans[stream.name])
        for isp in self.isps:
            self._isp_notes(isp)
        self._suspend_ip_notes()

    def _stream_notes(self, stream: StreamPlan) -> None:
        categories = stream.categories
        ordinary = categories[ORDINARY].retry_after
        own = [
            f'{name} {",".join(duration(value) for value in category.retry_after)}'
            for name, category in categories.items()
            if category.retry and name not in bounces.REPUTATION and category.retry_after != ordinary
        ]
        subject = f'stream {stream.name}'
        if own:
            self.note(subject, f'one retry list per queue; own schedules not applied: {"; ".join(own)}')
        reputation = [name for name in sorted(bounces.REPUTATION) if categories[name].retry]
        if reputation:
            schedule = ','.join(duration(value) for value in categories[reputation[0]].retry_after)
            self.note(
                subject,
                f'{", ".join(reputation)} deferrals switch the queue to backoff mode (reply patterns); '
                f'backoff-retry-after replaces their schedule {schedule}',
            )
        lifetime = stream.retry.queue_lifetime
        expiring = [
            f'{name} {duration(category.expire_after)}'
            for name, category in categories.items()
            if category.expire_after != lifetime
        ]
        if expiring:
            self.note(subject, f'bounce-after is per queue; own expiry not applied: {"; ".join(expiring)}')
        no_retry = [name for name, category in categories.items() if not category.retry]
        if no_retry:
            self.note(
                subject,
                f'not retried by policy: {", ".join(no_retry)}; PowerMTA decides by reply code (5xx bounces, 4xx '
                'is retried until bounce-after)',
            )
        for rule in stream.reply_rules:
            if rule.action == 'bounce':
                self.note(subject, f'reply rule /{rule.pattern}/ -> bounce ({rule.category}) is not expressible')
            elif rule.pattern.startswith('^5'):
                self.note(
                    subject,
                    f'reply rule /{rule.pattern}/ -> defer: PowerMTA bounces 5xx; the rule only switches the queue '
                    'to backoff',
                )

    def _isp_notes(self, isp: str) -> None:
        for stream in self.streams:
            plan = self.plans[stream.name].isps.get(isp)
            if plan is None:
                continue
            normal = plan.limits.backoff_to_normal_after
            rules = [rule for rule in plan.backoff if rule.origin == 'isp']
            suspend = [rule for rule in rules if rule.action == 'suspend']
            other = [rule for rule in rules if rule.action == 'backoff' and rule.duration != normal]
            counted = [rule for rule in rules if not rule.first_match]
            if suspend:
                text = ', '.join(f'/{rule.pattern}/ {duration(rule.duration)}' for rule in suspend)
                self.note(
                    isp,
                    f'suspend {text} rendered as mode=backoff (no suspending action is confirmed in our reference: '
                    'suspend is not found, defer-queue has a single source)',
                )
            failover = [rule for rule in suspend if rule.failover]
            if failover:
                text = ', '.join(f'/{rule.pattern}/' for rule in failover)
                self.note(
                    isp,
                    f"failover of {text}: the queue backs off on its own VMTA while the pool's other VMTAs keep "
                    'delivering; its mail is not moved (backoff-reroute-to-virtual-mta would move it for every '
                    'pattern)',
                )
            if other:
                text = ', '.join(f'/{rule.pattern}/ {duration(rule.duration)}' for rule in other)
                self.note(
                    isp,
                    f'per-pattern durations {text} are not rendered (their syntax is not confirmed in our '
                    f'reference); backoff lasts backoff-to-normal-after {duration(normal)}',
                )
            if counted:
                text = ', '.join(f'/{rule.pattern}/{_trigger(rule)}' for rule in counted)
                self.note(
                    isp,
                    f'triggers {text} are not rendered (no threshold in our reference): PowerMTA acts on the first '
                    'match',
                )

    def _suspend_ip_notes(self) -> None:
        """``suspend_ip`` rules of any provider: one note for the host."""
        rules = {
            rule.pattern: rule
            for plan in self.plans.values()
            for isp in (plan.default, *plan.isps.values())
            for rule in isp.backoff
            if rule.action == 'suspend_ip'
        }
        if rules:
            text = ', '.join(f'/{pattern}/' for pattern in rules)
            self.note(
                'suspend_ip',
                f'{text} rendered as disable-source-ip reenable-after=<duration> (our reference: [DIR] only, no '
                'configuration example; whether the IP is disabled for its other queues too is not stated)',
            )

    def dkim(self) -> list[dict[str, str]]:
        by_domain = dkim_keys_by_domain(self.context)
        order = self.context.memoize(  # the spec's order of sending domains
            'dkim_domain_order', lambda: {domain: index for index, domain in enumerate(by_domain)}
        )
        domains = sorted(
            {domain for stream in self.streams for domain in stream.domains}, key=lambda d: order.get(d, 0)
        )
        keys = []
        for key in (key for domain in domains for key in by_domain.get(domain, [])):
            if not key['signing']:
                continue
            if key['algorithm'] != 'rsa':
                self.note(
                    f'DKIM {key["selector"]}._domainkey.{key["domain"]}',
                    f'{key["algorithm"]} key published but not used for signing: Ed25519 support in PowerMTA is not '
                    'confirmed in our reference',
                )
                continue
            keys.append(
                {
                    'domain': key['domain'],
                    'selector': key['selector'],
                    'key_ref': key['key_ref'],
                    'file': f'{key["domain"]}/{key["selector"]}.{key["algorithm"]}.key',
                }
            )
        return keys

    def variables(self) -> dict[str, Any]:
        vmtas, pools, unallocated = self.virtual_mtas()
        sources = self.sources()
        listeners = self.listeners()
        auth = self.auth_sources()
        lists, names = self.pattern_lists()
        queues = self.queues(names)
        dkim = self.dkim()
        self.policy_notes()
        notes = [f'{", ".join(subjects)}: {message}' for message, subjects in self._notes.items()]
        if unallocated:
            notes.insert(
                0,
                f'NOT DEPLOYABLE YET: {len(unallocated)} sending address(es) are not allocated '
                f'({", ".join(ip["ptr"] for ip in unallocated)}); render again with --terraform-output',
            )
        gate = (
            {
                'powermta__gate': {
                    'upstream': f'{GATE_UPSTREAM}:{self.gate_upstream_port()}',
                    'streams': self.gate_streams(),
                }
            }
            if self.gate
            else {}
        )
        return {
            **gate,
            'powermta__notes': notes,
            'powermta__unallocated_ips': unallocated,
            'powermta__virtual_mtas': vmtas,
            'powermta__pools': pools,
            'powermta__sources': sources,
            'powermta__listeners': listeners,
            'powermta__auth_sources': auth,
            'powermta__rollups': [
                {'macro': isp, 'queue': queue_name(isp), 'domains': domains} for isp, domains in self.isps.items()
            ],
            'powermta__pattern_lists': lists,
            'powermta__queues': queues,
            'powermta__dkim_keys': dkim,
        }


class PowerMtaVars:
    """Variables of roles/powermta, for hosts that run PowerMTA (nothing for other hosts)."""

    name = 'powermta'

    def _runs_powermta(self, context: RenderContext, host: str) -> bool:
        return context.facts.host_mta.get(host) == MTA

    def group_vars(self, context: RenderContext) -> dict[str, Any]:
        if not any(self._runs_powermta(context, host) for host in context.deployment.hosts):
            return {}
        return {
            'powermta__http_mgmt_port': HTTP_MGMT_PORT,
            'powermta__http_access': [
                {'network': '127.0.0.1/32', 'level': 'admin'},
                {'network': '0.0.0.0/0', 'level': 'none'},
            ],
            'powermta__spool_dir': SPOOL_DIR,
            'powermta__dkim_dir': DKIM_DIR,
            'powermta__acct_archive_dir': ACCT_ARCHIVE_DIR,
            'powermta__acct_files': [
                {'path': f'{LOG_DIR}/acct.csv', 'records': 'd,b,f,rb', 'record_fields': ['d', 'b']},
                {'path': f'{LOG_DIR}/diag.csv', 'records': 't', 'record_fields': ['t']},
            ],
            'powermta__acct_fields': list(ACCT_FIELDS),
            'powermta__acct_extra_fields': [],
            'powermta__extra_global_lines': [],
            'powermta__extra_source_lines': [],
        }

    def host_vars(self, context: RenderContext, host: str) -> dict[str, Any]:
        if not self._runs_powermta(context, host):
            return {}
        return _Host(context, host).variables()

    def templates(self, context: RenderContext, host: str) -> list[Template]:
        return [CONFIG_TEMPLATE] if self._runs_powermta(context, host) else []
