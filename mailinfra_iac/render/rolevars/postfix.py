"""``postfix__*``: one Postfix instance per stream, transports per sending IP and per IP x ISP, the bounce MX.

The design is explained in docs/postfix.md. In short:

- The primary instance (``/etc/postfix``) is the MX for the return-path domains on inbound hosts (TLS,
  everything for those domains goes to one local mailbox), and local mail only elsewhere. It lists the
  stream instances for postmulti.
- Every stream with IPs on the host gets its own instance ``postfix-<stream>`` (postmulti): its own queue,
  its own injection listener on the stream's port, relaying only for the stream's networks and SASL users.
- Outbound, each sending IP is a transport ``out_<ip>`` (``smtp_bind_address`` + ``smtp_helo_name`` = PTR);
  mail to ordinary domains picks one at random (``randmap``). Each IP x ISP pair is a transport
  ``out_<ip>__<isp>`` with the ISP's limits; ``transport_maps`` picks one of the ISP's transports at random:
  ``pipemap:{unionmap:{randmap:{<ips>}, pcre:transport_isp}, texthash:transport_ip_isp}`` turns
  ``user@gmail.com`` into ``"<random ip>,gmail"`` and that into ``out_<ip>__gmail:``. Spreading and
  throttles therefore hold together, and every limit is per sending IP, as the ISP limits are defined.
  (The ISP is matched on the full address with pcre: trivial-rewrite looks up bare domains only in
  fixed-string tables, which a pipemap is not.)

Everything a template prints is computed here; templates only loop and print.
"""

from __future__ import annotations

import math
import re
from typing import Any

from mailinfra_agent import contract as c

from ...facts import IpFact, Limits, StreamFact
from ...facts.hosts import inbound_hosts
from ...model import ReplyRule
from ..base import RenderContext
from . import opendkim
from .base import Template

HOURLY_DELAY_THRESHOLD = 3600
"""An hourly limit below this (less than one message a second) is enforced with a rate delay."""

FAILED_COHORT_LIMIT = 10
"""Postfix's advice for destinations with a rate delay (``*_destination_concurrency_failed_cohort_limit``)."""

QUEUE_RUN_DELAY = 300
"""Postfix's default deferred-queue scan interval; lowered to the minimal backoff when that is shorter."""

LOG_DIR = '/var/log/postfix'
POLICY_SERVICE = 'unix:/run/mailinfra/suppression/policy.sock'
"""The suppression policy service (feedback role) the listeners ask when suppressions are kept as hashes only."""
PRIMARY_MYNETWORKS = ('127.0.0.0/8', '[::1]/128')


def _seconds(value: int) -> str:
    return f'{value}s'


def ip_key(ip: IpFact) -> str:
    """The IP's id without its pool prefix: unique inside a stream's instance (``192_0_2_10``, ``alloc1``)."""
    return ip.id.removeprefix(f'{ip.pool}_')


def instance_name(stream: str) -> str:
    return f'postfix-{stream}'


def rate_delay(limits: Limits) -> int:
    """Seconds between two deliveries through one IP x ISP transport; 0 when no delay is needed.

    Postfix counts nothing per hour; it can only wait between deliveries, in whole seconds, and a wait
    makes the transport deliver one message at a time. An hourly limit below 3600 per IP is enforced as
    ``ceil(3600 / messages_per_hour)`` seconds (rounded up, so never above the limit). From 3600 per IP
    the shortest possible delay (1 s) would already cut the ISP's connection limit to one; there the
    connection limit and messages per connection are the throttle and the hourly figure is not enforced.
    """
    hourly = limits.messages_per_hour
    if hourly >= HOURLY_DELAY_THRESHOLD:
        return 0
    return math.ceil(HOURLY_DELAY_THRESHOLD / hourly)


def _transport(
    name: str,
    ip: dict[str, Any],
    limits: Limits,
    syslog_name: str,
    isp: str | None,
) -> dict[str, Any]:
    """One smtp(8) transport: master.cf options, its qmgr parameters for main.cf, and a comment."""
    connections = limits.max_connections
    per_connection = limits.messages_per_connection
    recipients = limits.recipients_per_message
    delay = rate_delay(limits) if isp is not None else 0
    concurrency = 1 if delay else connections
    options = [
        ['syslog_name', f'{syslog_name}/{name}'],
        ['smtp_bind_address', ip['address']],
        ['smtp_helo_name', ip['helo']],
        ['smtp_connection_reuse_count_limit', str(per_connection)],
    ]
    if limits.require_tls:
        options.append(['smtp_tls_security_level', 'encrypt'])
    if delay:
        # Keep the connection open across the wait, so that it is reused rather than reopened.
        options.append(['smtp_connection_cache_time_limit', _seconds(delay + 1)])
    parameters = [
        [f'{name}_destination_concurrency_limit', str(concurrency)],
        [f'{name}_destination_recipient_limit', str(recipients)],
    ]
    if delay:
        parameters += [
            [f'{name}_transport_rate_delay', _seconds(delay)],
            [f'{name}_destination_concurrency_failed_cohort_limit', str(FAILED_COHORT_LIMIT)],
        ]
    hourly = limits.messages_per_hour
    if delay:
        rate = f'one message every {delay}s (at most {HOURLY_DELAY_THRESHOLD // delay}/h, limit {hourly}/h)'
    else:
        rate = f'no rate delay (limit {hourly}/h is not enforced, see docs/postfix.md)'
    target = f'{isp} from {ip["address"]}' if isp else f'every other domain from {ip["address"]}'
    comment = (
        f'{target}: {concurrency} connection(s), {recipients} recipients per message, '
        f'{per_connection} messages per connection, {rate}' + (', TLS required' if limits.require_tls else '')
    )
    return {
        'name': name,
        'ip': ip['key'],
        'isp': isp,
        # master.cf maxproc: per IP x ISP it caps the connections from that IP to the ISP over all its domains.
        'process_limit': str(concurrency) if isp is not None else '-',
        'options': options,
        'parameters': parameters,
        'comment': comment,
    }


# --- Reply rules -> smtp_delivery_status_filter -------------------------------------------------------------


def _anchors_to_reply(pattern: str) -> str:
    """Rewrite ``^``/``$`` anchors so that they match the remote reply inside Postfix's status text.

    Reply rules are written against ``"<code> <enhanced-code> <text>"``. The status filter sees
    ``"4.1.1 host mx.example[192.0.2.1] said: 450 4.1.1 <text> (in reply to RCPT TO command)"``, so ``^``
    becomes "right after ``said: ``" and ``$`` "right before `` (in reply to ...)``". Anchors inside
    character classes and escaped characters are left alone.
    """
    out: list[str] = []
    index, in_class = 0, False
    while index < len(pattern):
        char = pattern[index]
        if char == '\\':
            out.append(pattern[index : index + 2])
            index += 2
            continue
        if in_class:
            if char == ']' and not (out and out[-1] in ('[', '[^')):
                in_class = False
            out.append(char)
        elif char == '[':
            in_class = True
            if pattern.startswith('[^', index):
                out.append('[^')
                index += 2
                continue
            out.append('[')
        elif char == '^':
            out.append('(?<=said: )')
        elif char == '$':
            out.append(r'(?=(?: \(in reply to [^)]*\))?$)')
        else:
            out.append(char)
        index += 1
    return ''.join(out)


def _escape_delimiter(regex: str, delimiter: str) -> str:
    """``regex`` with every unescaped ``delimiter`` escaped: Postfix's pcre table ends the pattern at the first one."""
    out: list[str] = []
    index = 0
    while index < len(regex):
        if regex[index] == '\\':
            out.append(regex[index : index + 2])
            index += 2
            continue
        out.append('\\' + delimiter if regex[index] == delimiter else regex[index])
        index += 1
    return ''.join(out)


def status_filter_entry(rule: ReplyRule) -> dict[str, str]:
    """A pcre table line that gives matching replies the rule's class: 5.x.y to bounce, 4.x.y to defer.

    The rule's own groups come first (inside the lookahead), then the enhanced code's last two parts and
    the whole text, which the result puts back behind the new first digit.
    """
    groups = re.compile(rule.pattern).groups
    body = _anchors_to_reply(rule.pattern)
    regex = rf'^(?=[245]\.\d{{1,3}}\.\d{{1,3}} .*?(?:{body}))[45]\.(\d{{1,3}}\.\d{{1,3}}) (.*)$'
    # Always "/", escaped inside: Postfix reads a line that starts with "#" as a comment and "!" as a negation
    first = '5' if rule.action == 'bounce' else '4'
    return {
        'pattern': f'/{_escape_delimiter(regex, "/")}/',
        'result': f'{first}.${{{groups + 1}}} ${{{groups + 2}}}',
        'description': f'{rule.action} as {rule.category}: {rule.description}'.rstrip(': '),
    }


# --- Instances ----------------------------------------------------------------------------------------------


def _host_ips(context: RenderContext, stream: StreamFact, host: str) -> tuple[list[dict[str, Any]], list[str]]:
    ips, missing = [], []
    for ip in stream.ips:
        if ip.host != host:
            continue
        address = context.address_of(ip.id, ip.address)
        if address is None:
            missing.append(ip.id)
        else:
            ips.append({'key': ip_key(ip), 'id': ip.id, 'address': address, 'helo': ip.helo})
    return ips, missing


def stream_instance(context: RenderContext, stream: StreamFact, host: str) -> dict[str, Any]:
    """Everything the stream's instance files print: topology from the stream facts, delivery from the plan."""
    plan = context.facts.plan.for_stream(stream.name)
    name = instance_name(stream.name)
    config_directory = f'/etc/{name}'
    ips, _ = _host_ips(context, stream, host)
    # Not the host name: the primary instance answers as the host (the MX target), and Postfix takes a
    # server that greets with its own myhostname for a loop ("loops back to myself"), so a stream
    # instance could not hand bounces to the MX on its own host.
    hostname = next(ip.helo for ip in stream.ips if ip.host == host)
    transports = [_transport(f'out_{ip["key"]}', ip, plan.default.limits, name, None) for ip in ips]
    claimed: set[str] = set()
    isp_patterns = []
    isp_transports = []
    for isp_name, isp in plan.isps.items():
        domains = [domain for domain in isp.recipient_domains if domain not in claimed]
        if not domains:
            continue  # known only by its MX host names, which Postfix cannot route on (docs/postfix.md)
        claimed.update(domains)
        alternatives = '|'.join(re.escape(domain) for domain in domains)
        isp_patterns.append({'isp': isp_name, 'pattern': f'/@({alternatives})$/'})
        isp_transports += [_transport(f'out_{ip["key"]}__{isp_name}', ip, isp.limits, name, isp_name) for ip in ips]
    randmap = ', '.join(ip['key'] for ip in ips)
    delays = [rate_delay(plan.isps[t['isp']].limits) for t in isp_transports]
    retry = plan.retry
    files = ['main.cf', 'master.cf', 'delivery_status_filter']
    if isp_transports:
        files += ['transport_isp', 'transport_ip_isp']
    if stream.injection.sasl_users:
        files.append('sasl/smtpd.conf')
    return {
        'name': name,
        'stream': stream.name,
        'hostname': hostname,
        'template_directory': 'etc/postfix-INSTANCE',
        'config_directory': config_directory,
        'queue_directory': f'/var/spool/{name}',
        'data_directory': f'/var/lib/{name}',
        'maillog_file': f'{LOG_DIR}/{name}.log',
        'syslog_name': name,
        'port': stream.injection.port,
        'mynetworks': list(stream.injection.networks),
        'sasl_users': list(stream.injection.sasl_users),
        'minimal_backoff_time': _seconds(retry.min_backoff),
        'maximal_backoff_time': _seconds(retry.max_backoff),
        'maximal_queue_lifetime': _seconds(retry.queue_lifetime),
        'bounce_queue_lifetime': _seconds(retry.queue_lifetime),
        'queue_run_delay': _seconds(min(QUEUE_RUN_DELAY, retry.min_backoff)),
        'connection_cache_ttl_limit': _seconds(max([2, *(delay + 1 for delay in delays)])),
        'default_transport': f'{transports[0]["name"]}:' if transports else 'error:5.3.0 no sending IP on this host',
        'sender_dependent_default_transport_maps': (
            'randmap:{' + ', '.join(f'{t["name"]}:' for t in transports) + '}' if len(transports) > 1 else ''
        ),
        'transport_maps': (
            f'pipemap:{{unionmap:{{randmap:{{{randmap}}}, pcre:$config_directory/transport_isp}}, '
            'texthash:$config_directory/transport_ip_isp}'
            if isp_transports
            else ''
        ),
        'transports': transports + isp_transports,
        'isp_patterns': isp_patterns,
        'ip_isp_table': [[f'{t["ip"]},{t["isp"]}', f'{t["name"]}:'] for t in isp_transports],
        'status_filter': [status_filter_entry(rule) for rule in plan.reply_rules],
        'files': files,
    }


def stream_verp(context: RenderContext, stream: StreamFact) -> c.Verp:
    """The stream's return path: the spec's domain for all From domains, else each one's return-path domain."""
    verp = context.deployment.feedback.stream(stream.name).verp
    bounce = context.memoize(
        'agent:bounce_domains',
        lambda: {domain.domain: domain.bounce_domain for domain in context.deployment.sending_domains},
    )
    domains = {name: verp.return_path_domain or bounce.get(name, f'bounces.{name}') for name in stream.domains}
    return c.Verp(enabled=verp.enabled, prefix=verp.prefix, separator=verp.separator, domains=domains)


def primary_instance(context: RenderContext, host: str, streams: list[StreamFact]) -> dict[str, Any]:
    """The default instance: MX for the return-path domains on inbound hosts, local mail elsewhere."""
    deployment = context.deployment
    inbound = host in inbound_hosts(deployment)
    domains = sorted({domain.bounce_domain for domain in deployment.sending_domains}) if inbound else []
    # What the bounce MX's RCPT check reserves: each stream's VERP prefix and separator in its return-path domains.
    verps = [stream_verp(context, stream) for stream in context.facts.streams.values()]
    return_paths = {
        f'{domain}={verp.prefix}{verp.separator}'
        for verp in verps
        if verp.enabled
        for domain in verp.domains.values()
        if domain in domains
    }
    # The feedback-loop address outside the return-path domains: its domain has our MX, but only it is taken.
    fbl = deployment.inbound.fbl_address
    fbl_addresses = [fbl.lower()] if inbound and fbl and fbl.rpartition('@')[2].lower() not in domains else []
    # TLS-RPT and DMARC reports at these domains go to the mailbox: the feedback pipe would drop them.
    ours = set(domains) | {address.rpartition('@')[2] for address in fbl_addresses}
    # The TLS-RPT addresses as published (facts/records.py): the postmaster when none is given.
    reports = [*(deployment.inbound.tls_rpt.rua or [deployment.client.postmaster])]
    reports += [address for domain in deployment.sending_domains for address in (*domain.dmarc.rua, *domain.dmarc.ruf)]
    # postmaster at the FBL address's domain too (RFC 5321 4.5.1): to the mailbox, like a report address.
    postmasters = {f'postmaster@{domain}' for domain in ours - set(domains)} - set(fbl_addresses)
    reports += sorted(postmasters)
    # postmaster and abuse of the return-path domains have their own entries: a texthash key twice is a warning.
    own = {f'{local}@{domain}' for local in ('postmaster', 'abuse') for domain in domains}
    report_addresses = sorted(
        {address.lower() for address in reports if address.rpartition('@')[2].lower() in ours} - own
    )
    accepted = sorted(
        {*fbl_addresses, *(address for address in report_addresses if address.rpartition('@')[2] not in domains)}
    )
    # Texthash files, not inline: tables: an inline: table splits a key at its first '=' (fbl=x@...).
    tables = [*(['inbound_aliases'] if inbound else []), *(['inbound_accepted'] if accepted else [])]
    tables += ['inbound_transport'] if fbl_addresses else []
    return {
        'name': 'postfix',
        'template_directory': 'etc/postfix',
        'config_directory': '/etc/postfix',
        'maillog_file': f'{LOG_DIR}/postfix.log',
        'log_directory': LOG_DIR,
        'syslog_name': 'postfix',
        'inbound': inbound,
        'inbound_domains': domains,
        'return_paths': sorted(return_paths),
        'fbl_addresses': fbl_addresses,
        'report_addresses': report_addresses,
        'accepted_addresses': accepted,
        'mynetworks': list(PRIMARY_MYNETWORKS),
        'multi_instance_directories': [f'/etc/{instance_name(stream.name)}' for stream in streams],
        'files': ['main.cf', 'master.cf', *tables],
    }


class PostfixVars:
    """Variables of roles/postfix (hosts whose MTA is Postfix)."""

    name = 'postfix'

    def group_vars(self, context: RenderContext) -> dict[str, Any]:
        return {}

    def host_vars(self, context: RenderContext, host: str) -> dict[str, Any]:
        if not opendkim.is_postfix_host(context, host):
            return {}
        streams = context.facts.streams_of_host(host)
        unallocated = [ip_id for stream in streams for ip_id in _host_ips(context, stream, host)[1]]
        variables: dict[str, Any] = {
            'postfix__hostname': context.deployment.hosts[host].fqdn,
            'postfix__primary': primary_instance(context, host, streams),
            'postfix__instances': [stream_instance(context, stream, host) for stream in streams],
            'postfix__milters': opendkim.milters(context, host),
            'postfix__unallocated_ips': unallocated,
        }
        # An access map holds addresses: a list kept as keyed hashes only is enforced by the policy service.
        if context.deployment.feedback.retention.suppressions == 'hash':
            variables['postfix__suppression_policy_service'] = POLICY_SERVICE
        return variables

    def templates(self, context: RenderContext, host: str) -> list[Template]:
        """Every file the role writes from a template on this host (``__postfix_instance`` per stream instance)."""
        if not opendkim.is_postfix_host(context, host):
            return []
        inventory = {**self.group_vars(context), **self.host_vars(context, host)}
        defaults = opendkim.template_variables(self.name, inventory, {})
        primary = inventory['postfix__primary']
        files = [
            Template(
                f'postfix/templates/{instance["template_directory"]}/{file}.j2',
                f'{instance["config_directory"].removeprefix("/")}/{file}',
                {**defaults, '__postfix_instance': instance} if instance is not primary else defaults,
            )
            for instance in [primary, *inventory['postfix__instances']]
            for file in instance['files']
        ]
        files += [
            Template(f'postfix/templates/etc/systemd/system/{unit}.j2', f'etc/systemd/system/{unit}', defaults)
            for unit in ('mailinfra-postfix-logrotate.service', 'mailinfra-postfix-logrotate.timer')
        ]
        return files
