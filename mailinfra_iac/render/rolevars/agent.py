"""``agent__contract``: the host's contract (``/etc/mailinfra/agent.json``), built with the agent's own types.

The schema belongs to ``mailinfra_agent.contract``; this module only fills it from the facts, so that the
controller and the host are checked against the same definitions. No secret goes in: the contract names
the 0600 files that hold them.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from typing import Any, TypeVar

from mailinfra_agent import contract as c
from mailinfra_agent.contract.blocklists import zone_to_contract
from mailinfra_agent.dnsbl import zone_key

from ...catalogue import dnsbl
from ...catalogue.bounce_rules import compile_rules
from ...facts import StreamFact
from ...facts.dnsbl import dnsbl_subjects
from ...facts.hosts import database_host, inbound_hosts
from ...facts.plan import Backoff, IspPlan, Limits, StreamPlan
from ...facts.warmup import contract_warmup
from ...model.feedback import Feedback
from ...model.infrastructure import HOST_ROLES
from ..base import RenderContext
from .base import Template
from .drift import dns_expectations
from .postfix import instance_name, primary_instance, stream_instance, stream_verp
from .powermta import HTTP_MGMT_PORT, PowerMtaVars

CONTRACT_TEMPLATE = 'agent/templates/etc/mailinfra/agent.json.j2'
CONTRACT_OUTPUT = 'etc/mailinfra/agent.json'

STORE_PORT = 5432
STORE_DATABASE = 'mailinfra'
STORE_USER = 'mailinfra_agent'
STORE_PASSWORD_FILE = '/etc/mailinfra/secrets/store-password'
"""The shared store's password on every host (mode 0600, owned by the agent's user); never in the contract."""

SUPPRESSION_MAP_DIR = '/var/lib/mailinfra/suppression'
"""Postfix access tables of suppressed recipients, one per stream instance (``<dir>/postfix-<stream>``)."""

INBOUND_MAILDIR = '/var/lib/mailinfra-inbound/Maildir'
"""Where the bounce MX delivers (roles/postfix: ``postfix__inbound_home`` + ``/Maildir``)."""

T = TypeVar('T')


class _Sections:
    """Contract sections that several hosts' contracts hold, one object per value within a render.

    Each is converted to plain data once (``dump_contract``'s memo), and that plain object is shared data of the
    render (``serialise.Shared``): written to YAML once per indentation and checked for JSON once. At the 1x render
    benchmark (benchmarks/render) the 60 contracts are 9 MB of JSON, of which about 2 MB differ.
    """

    def __init__(self) -> None:
        self.by_key: dict[Any, Any] = {}
        self.unregistered: list[Any] = []
        self.memo: dict[int, tuple[Any, Any]] = {}
        """``dump_contract``'s memo: id of a section or tuple -> (it, its plain data)."""


def _sections(context: RenderContext) -> _Sections:
    return context.memoize('agent:sections', _Sections)


def _section(context: RenderContext, key: Any, build: Callable[[], T]) -> T:
    """The section object for ``key`` (hashable, naming everything the section is built from), built once."""
    sections = _sections(context)
    found = sections.by_key.get(key)
    if found is None:
        found = sections.by_key[key] = build()
        sections.unregistered.append(found)
    return typing.cast(T, found)


def _plain_contract(context: RenderContext, contract: c.Contract) -> dict[str, Any]:
    sections = _sections(context)
    data = c.dump_contract(contract, sections.memo)
    if sections.unregistered:
        shared = context.shared
        for section in sections.unregistered:
            plain = sections.memo.get(id(section))
            if plain is not None and isinstance(plain[1], dict | list):
                shared.add(plain[1])
        sections.unregistered.clear()
    return data


def _limits(limits: Limits) -> c.Limits:
    """The contract's own type (``facts.isps.Limits`` only adds how it is resolved)."""
    return c.Limits(*(getattr(limits, field.name) for field in dataclasses.fields(c.Limits)))


def _backoff(rule: Backoff) -> c.BackoffRule:
    return c.BackoffRule(
        rule.pattern,
        rule.action,
        rule.duration,
        rule.description,
        rule.origin,
        rule.category,
        trigger_count=rule.trigger_count,
        trigger_window=rule.trigger_window,
        failover=rule.failover,
    )


def _isp(plan: IspPlan) -> c.Isp:
    return c.Isp(plan.isp, plan.display_name, plan.recipient_domains, plan.mx_patterns)


def _stream_isp(plan: IspPlan) -> c.StreamIsp:
    return c.StreamIsp(
        isp=plan.isp,
        limits=_limits(plan.limits),
        retry_after=plan.retry_after,
        backoff_rules=tuple(_backoff(rule) for rule in plan.backoff),
    )


def _stream_isps(context: RenderContext, plan: StreamPlan) -> tuple[c.StreamIsp, ...]:
    """The stream's ISPs (what the contract holds of them is the same for many streams)."""
    isps = sorted([plan.default, *plan.isps.values()], key=lambda isp: isp.isp)
    key = ('stream_isps', *((isp.isp, isp.limits, isp.retry_after, isp.backoff) for isp in isps))
    return _section(context, key, lambda: tuple(_stream_isp(isp) for isp in isps))


def _isps(plans: list[StreamPlan]) -> tuple[c.Isp, ...]:
    """Every provider the streams deliver to, once (recognition is the catalogue's, the same for each stream)."""
    found = {isp.isp: isp for plan in plans for isp in (plan.default, *plan.isps.values())}
    return tuple(_isp(found[name]) for name in sorted(found))


def _stream(context: RenderContext, stream: StreamFact, plan: StreamPlan, mta: str | None) -> c.Stream:
    links = context.memoize(
        'agent:complaint_links',
        lambda: context.deployment.feedback.complaint_links(
            {name: fact.kind for name, fact in context.facts.streams.items()}
        ),
    )
    return c.Stream(
        name=stream.name,
        kind=stream.kind,
        instance=instance_name(stream.name) if mta == 'postfix' else stream.name,
        domains=stream.domains,
        injection=c.Injection(
            stream.injection.port, tuple(stream.injection.networks), tuple(stream.injection.sasl_users)
        ),
        retry=c.Retry(plan.retry.min_backoff, plan.retry.max_backoff, plan.retry.queue_lifetime),
        bounce_categories=_section(
            context,
            ('bounce_categories', tuple(plan.categories.values())),
            lambda: tuple(
                c.BounceCategory(
                    name=category.name,
                    retry=category.retry,
                    retry_after=category.retry_after,
                    expire_after=category.expire_after,
                    suppress_after=None if category.suppress_after == 'never' else int(category.suppress_after),
                )
                for category in plan.categories.values()
            ),
        ),
        reply_rules=_section(
            context,
            ('reply_rules', plan.reply_rules),
            lambda: tuple(
                c.ReplyRule(rule.pattern, rule.category, rule.action, rule.description) for rule in plan.reply_rules
            ),
        ),
        isps=_stream_isps(context, plan),
        verp=stream_verp(context, stream),
        complaint_links=links.get(stream.name, ()),
        suppression_map=f'{SUPPRESSION_MAP_DIR}/{instance_name(stream.name)}' if mta == 'postfix' else None,
    )


def _logs(context: RenderContext, host: str, mta: str | None, streams: list[StreamFact]) -> tuple[c.LogSource, ...]:
    """The log files the MTA roles configure, read from their own variables."""
    if mta == 'postfix':
        primary = primary_instance(context, host, streams)
        instances = [(primary, None), *((stream_instance(context, stream, host), stream.name) for stream in streams)]
        return tuple(
            c.LogSource(item['maillog_file'], 'postfix', item['name'], syslog_name=item['syslog_name'], stream=stream)
            for item, stream in instances
        )
    if mta == 'powermta':
        files = PowerMtaVars().group_vars(context)['powermta__acct_files']
        return tuple(c.LogSource(item['path'], 'powermta-acct', 'powermta') for item in files)
    return ()


def _suppression(feedback: Feedback) -> c.Suppression:
    return c.Suppression(
        signing_key_file=feedback.signing_key_file,
        old_signing_key_files=tuple(feedback.old_signing_key_files),
        soft_bounce_window=feedback.suppression.soft_bounce_window,
    )


def _retention(feedback: Feedback) -> c.Retention:
    retention = feedback.retention
    return c.Retention(retention.events, retention.after, retention.suppressions, retention.hash_key_file)


def _unsubscribe(context: RenderContext, enabled: bool) -> c.Unsubscribe:
    """The endpoint's settings on every host (applications build links from them), enabled on the inbound hosts."""
    spec = context.deployment.feedback.unsubscribe
    if spec is None:
        return c.Unsubscribe()
    return c.Unsubscribe(
        enabled=enabled,
        hostname=spec.hostname,
        listen_address=spec.listen_address,
        port=spec.port,
        tls_certificate_file=spec.tls_certificate,
        tls_key_file=spec.tls_key,
        token_max_age=spec.token_max_age,
        rate_limit=spec.rate_limit,
    )


def _webhook(feedback: Feedback) -> c.Webhook:
    spec = feedback.webhook
    if spec is None:
        return c.Webhook()
    return c.Webhook(url=spec.url, secret_file=spec.secret_file, retries=spec.retries, timeout=spec.timeout)


def _store(context: RenderContext) -> c.Store:
    """The shared PostgreSQL on the deployment's database host, else a local SQLite file."""
    host = database_host(context.deployment)
    if host is None:
        return c.Store('sqlite', path=c.DEFAULT_SQLITE_PATH)
    fqdn = context.deployment.hosts[host].fqdn
    dsn = f'host={fqdn} port={STORE_PORT} dbname={STORE_DATABASE} user={STORE_USER}'
    return c.Store('postgresql', dsn=dsn, password_file=STORE_PASSWORD_FILE)


def _shared_labels(context: RenderContext) -> c.SharedLabels:
    """The deployment's streams, ISPs and sending IPs: each host's exporter labels the shared store's events alike."""
    facts = context.facts
    plans = [facts.plan.for_stream(name) for name in facts.streams]
    return c.SharedLabels(
        streams=tuple(facts.streams),
        isps=tuple(isp.name for isp in _isps(plans)),
        ips=tuple(c.LabelIp(ip.id, context.address_of(ip.id, ip.address)) for ip in facts.ips if ip.host is not None),
    )


def _exporter(context: RenderContext, mta: str | None) -> c.Exporter:
    # PowerMTA's API is reachable from loopback only (its http-access rules).
    shared = None
    if mta is not None and database_host(context.deployment) is not None:  # the exporter runs on MTA hosts
        shared = _section(context, 'shared_labels', lambda: _shared_labels(context))
    return c.Exporter(
        powermta_url=f'http://127.0.0.1:{HTTP_MGMT_PORT}' if mta == 'powermta' else None, shared_labels=shared
    )


def _blocklist_zones(context: RenderContext) -> tuple[c.BlocklistZone, ...]:
    """Zones from the catalogue (the spec's selection, else its defaults) and the spec's custom zones."""
    monitoring = context.deployment.monitoring
    known = dnsbl.by_zone()
    selected = monitoring.dnsbl_zone_names()
    names = selected if selected is not None else dnsbl.default_zones()
    custom = {zone_key(zone.zone): zone for zone in monitoring.dnsbl.custom_zones}
    zones = []
    for name in dict.fromkeys(zone_key(name) for name in names):
        zone = known.get(name)
        if zone is not None and name not in custom:
            zones.append(zone_to_contract(zone))
        # unknown or retired names are refused by the dnsbl-zone check before rendering
    for _, spec in sorted(custom.items()):
        # the dnsbl-custom-zone check refused, before rendering, what this conversion would
        zones.append(zone_to_contract(dnsbl.custom_zone(spec)))
    return tuple(zones)


def _blocklists(context: RenderContext, host: str) -> c.Blocklists:
    """The zones, and the subjects only on monitoring hosts (the ones that run ``mailinfra-agent dnsbl check``)."""
    if 'monitoring' not in context.deployment.hosts[host].roles:
        return _section(context, 'blocklists', lambda: _blocklists_with(context, c.BlocklistSubjects()))
    addresses = {ip.id: address for ip in context.facts.ips if (address := context.address_of(ip.id, ip.address))}
    found = dnsbl_subjects(context.deployment, context.facts, addresses)
    return _blocklists_with(context, c.BlocklistSubjects(ips=found.ips, domains=found.domains))


def _blocklists_with(context: RenderContext, subjects: c.BlocklistSubjects) -> c.Blocklists:
    monitoring = context.deployment.monitoring
    return c.Blocklists(
        interval=monitoring.dnsbl_check_interval(),
        zones=_section(context, 'blocklist_zones', lambda: _blocklist_zones(context)),
        dqs_key_file=monitoring.dnsbl.dqs_key_file,
        nameservers=tuple(monitoring.dnsbl.nameservers),
        subjects=subjects,
    )


def host_contract(context: RenderContext, host: str) -> c.Contract:
    """The contract of one host."""
    facts = context.facts
    spec_host = context.deployment.hosts[host]
    mta = facts.host_mta.get(host)
    streams = facts.streams_of_host(host)
    stream_of_pool = {stream.pool: stream.name for stream in streams if stream.pool is not None}
    ips = facts.ips_of_host(host)
    queue = context.deployment.monitoring.queue
    plans = [facts.plan.for_stream(stream.name) for stream in streams]
    feedback = context.deployment.feedback
    isps = _isps(plans)
    enabled = host in inbound_hosts(context.deployment)
    return c.Contract(
        version=c.CONTRACT_VERSION,
        host=c.Host(
            name=host,
            fqdn=spec_host.fqdn,
            roles=tuple(spec_host.roles),
            mta='powermta' if mta == 'powermta' else 'postfix' if mta == 'postfix' else None,
        ),
        streams=tuple(_stream(context, stream, plan, mta) for stream, plan in zip(streams, plans, strict=True)),
        isps=_section(context, ('isps', isps), lambda: isps),
        ips=tuple(
            c.SendingIp(
                id=ip.id,
                address=context.address_of(ip.id, ip.address),
                ptr=ip.ptr,
                helo=ip.helo,
                pool=ip.pool,
                stream=stream_of_pool.get(ip.pool),
                warmup_started=ip.warmup_started.isoformat() if ip.warmup_started else None,
            )
            for ip in ips
        ),
        thresholds=_section(
            context,
            'thresholds',
            lambda: c.Thresholds(
                c.QueueThresholds(queue.depth_warning, queue.depth_critical, queue.age_warning, queue.age_critical)
            ),
        ),
        blocklists=_blocklists(context, host),
        suppression=_section(context, 'suppression', lambda: _suppression(feedback)),
        store=_section(context, 'store', lambda: _store(context)),
        bounce_rules=_section(context, 'bounce_rules', lambda: compile_rules(context.deployment)),
        exporter=_exporter(context, mta),
        dns_expectations=(
            _section(context, 'dns_expectations', lambda: dns_expectations(context))
            if 'monitoring' in spec_host.roles
            else ()
        ),
        logs=_logs(context, host, mta, streams),
        feedback_maildirs=(INBOUND_MAILDIR,) if mta == 'postfix' and host in inbound_hosts(context.deployment) else (),
        retention=_section(context, 'retention', lambda: _retention(feedback)),
        unsubscribe=_section(context, ('unsubscribe', enabled), lambda: _unsubscribe(context, enabled)),
        webhook=_section(context, 'webhook', lambda: _webhook(feedback)),
        warmup=contract_warmup(context.deployment, streams),
    )


class AgentVars:
    """Variables of roles/agent: the contract every host gets."""

    name = 'agent'
    host_roles = frozenset(HOST_ROLES)
    """Every host runs the agent."""

    def group_vars(self, context: RenderContext) -> dict[str, Any]:
        return {}

    def host_vars(self, context: RenderContext, host: str) -> dict[str, Any]:
        return {'agent__contract': _plain_contract(context, host_contract(context, host))}

    def templates(self, context: RenderContext, host: str) -> list[Template]:
        return [Template(CONTRACT_TEMPLATE, CONTRACT_OUTPUT)]
