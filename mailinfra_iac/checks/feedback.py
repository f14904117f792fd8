"""Feedback processing: stream references, VERP return paths, the unsubscribe host, the webhook, secret file paths."""

from __future__ import annotations

import ipaddress
import posixpath
from collections.abc import Iterator
from urllib.parse import urlsplit

from mailinfra_agent.contract import DEFAULT_EXPORTER_PORT
from mailinfra_agent.feedback.signing import pack_field
from mailinfra_agent.feedback.verp import payload_capacity

from ..facts.hosts import inbound_hosts
from ..facts.naming import organisation
from ..model.base import NOT_SHOWN, url_has_userinfo
from ..problems import Path, Problem
from .base import Check, CheckContext
from .isps import suggest
from .names import forward_zones, in_zones


def _unknown(ctx: CheckContext, name: str, path: Path, what: str, *, at_key: bool = False) -> Problem:
    known = sorted(ctx.deployment.streams)
    close = suggest(name, known)
    hint = f' (did you mean "{close}"?)' if close else ''
    return ctx.problem(
        'feedback-unknown-stream',
        f'{what} "{name}" is not a stream of the spec{hint}',
        path,
        expected='one of: ' + ', '.join(known),
        value=name,
        at_key=at_key,
    )


def feedback_unknown_stream(ctx: CheckContext) -> Iterator[Problem]:
    streams = ctx.deployment.streams
    for name, settings in ctx.deployment.feedback.streams.items():
        if name not in streams:
            yield _unknown(ctx, name, ('feedback', 'streams', name), 'feedback.streams names', at_key=True)
        for index, linked in enumerate(settings.complaint_links or ()):
            if linked not in streams:
                path = ('feedback', 'streams', name, 'complaint_links', index)
                yield _unknown(ctx, linked, path, 'complaint link')


def complaint_link_transactional(ctx: CheckContext) -> Iterator[Problem]:
    for name, settings in ctx.deployment.feedback.streams.items():
        for index, linked in enumerate(settings.complaint_links or ()):
            fact = ctx.facts.streams.get(linked)
            if fact is not None and fact.kind == 'transactional' and linked != name:
                yield ctx.problem(
                    'complaint-link-transactional',
                    f'a complaint or unsubscribe on "{name}" also stops transactional stream "{linked}" (password '
                    'resets, receipts) for that recipient',
                    ('feedback', 'streams', name, 'complaint_links', index),
                    severity='warning',
                    expected='only marketing and cold outreach streams, unless stopping transactional mail is meant',
                    value=linked,
                )


def verp_return_path(ctx: CheckContext) -> Iterator[Problem]:
    """A VERP domain must be a return-path domain of the spec: only those get MX records pointing at our hosts."""
    deployment = ctx.deployment
    receiving = sorted({domain.bounce_domain for domain in deployment.sending_domains})
    clients = deployment.client.domains
    for name, settings in deployment.feedback.streams.items():
        domain = settings.verp.return_path_domain
        stream = deployment.streams.get(name)
        if domain is None or stream is None:
            continue
        path = ('feedback', 'streams', name, 'verp', 'return_path_domain')
        if domain not in receiving:
            yield ctx.problem(
                'verp-return-path',
                f'VERP return-path domain "{domain}" of stream "{name}" has no MX at the inbound hosts, so bounces '
                'to it are lost',
                path,
                expected='a return-path domain of sending_domains: ' + ', '.join(receiving),
                value=domain,
            )
            continue
        unaligned = [d for d in stream.domains if organisation(d, clients) != organisation(domain, clients)]
        if unaligned:
            yield ctx.problem(
                'verp-return-path',
                f'VERP return-path domain "{domain}" is not in the organisational domain of "{unaligned[0]}", '
                'so SPF does not align for DMARC',
                path,
                expected="a return-path domain under the same organisational domain as the stream's From domains",
                value=domain,
            )


def _addresses_of_ours(ctx: CheckContext) -> Iterator[tuple[Path, str, str]]:
    """(path, address, what) of every address the spec publishes or registers for mail to come back to."""
    deployment = ctx.deployment
    yield ('client', 'postmaster'), deployment.client.postmaster, 'the postmaster address'
    yield ('client', 'abuse'), deployment.client.abuse, 'the abuse address'
    if deployment.inbound.fbl_address:
        yield ('inbound', 'fbl_address'), deployment.inbound.fbl_address, 'the feedback-loop address'
    for index, address in enumerate(deployment.inbound.tls_rpt.rua):
        yield ('inbound', 'tls_rpt', 'rua', index), address, 'TLS-RPT address'
    for number, domain in enumerate(deployment.sending_domains):
        for tag in ('rua', 'ruf'):
            for index, address in enumerate(getattr(domain.dmarc, tag)):
                yield ('sending_domains', number, 'dmarc', tag, index), address, f'DMARC {tag} address'


def return_path_reserved_local_part(ctx: CheckContext) -> Iterator[Problem]:
    """An address of ours in a VERP domain must not look like VERP: the bounce MX refuses it unless it verifies."""
    deployment = ctx.deployment
    bounce = {domain.domain: domain.bounce_domain for domain in deployment.sending_domains}
    reserved: dict[str, list[tuple[str, str]]] = {}  # return-path domain -> (prefix + separator, stream)
    for name, stream in deployment.streams.items():
        verp = deployment.feedback.stream(name).verp
        if not verp.enabled:
            continue
        for from_domain in stream.domains:
            domain = verp.return_path_domain or bounce.get(from_domain, f'bounces.{from_domain}')
            reserved.setdefault(domain.lower(), []).append((verp.prefix + verp.separator, name))
    for path, address, what in _addresses_of_ours(ctx):
        local, _, domain = address.rpartition('@')
        for start, name in reserved.get(domain.lower().rstrip('.'), ()):
            if local.lower().startswith(start):
                yield ctx.problem(
                    'return-path-reserved-local-part',
                    f'{what} "{address}" starts with "{start}", the VERP prefix and separator of stream "{name}" '
                    f'in return-path domain "{domain}": the bounce MX refuses it as a forged return path, so '
                    'every message to it is lost',
                    path,
                    expected=f'a local part that does not start with "{start}" (fbl@, postmaster@, ...)',
                    value=address,
                )
                break


MESSAGE_ID_ROOM = 9
"""Octets a VERP payload must keep free beside the stream: one packed 64-bit message number."""


def verp_capacity(ctx: CheckContext) -> Iterator[Problem]:
    """The stream name leaves room for a message id in the 64-octet local part (else every message is refused)."""
    feedback = ctx.deployment.feedback
    for name in ctx.deployment.streams:
        verp = feedback.stream(name).verp
        if not verp.enabled:
            continue
        room = payload_capacity(verp.prefix, verp.separator) - len(pack_field(name))
        if room >= MESSAGE_ID_ROOM:
            continue
        configured = name in feedback.streams and 'prefix' in feedback.streams[name].verp.model_fields_set
        path: Path = ('feedback', 'streams', name, 'verp', 'prefix') if configured else ('streams', name)
        capacity = payload_capacity(verp.prefix, verp.separator)
        yield ctx.problem(
            'verp-capacity',
            f'VERP return paths of stream "{name}" (prefix "{verp.prefix}") leave {max(room, 0)} octets for the '
            f'message id in the 64-octet local part, {MESSAGE_ID_ROOM} needed; building them would fail',
            path,
            expected=f'a shorter stream name (it takes {capacity - room} of {capacity} octets) or prefix, or '
            'verp.enabled: false',
            value=name,
            at_key=not configured,
        )


def unsubscribe_hostname(ctx: CheckContext) -> Iterator[Problem]:
    """The host name gets A records in a managed zone, under the client's domains, clear of other names."""
    deployment = ctx.deployment
    unsubscribe = deployment.feedback.unsubscribe
    if unsubscribe is None:
        return
    name = unsubscribe.hostname
    path = ('feedback', 'unsubscribe', 'hostname')
    zones = forward_zones(ctx)
    owners = set(deployment.client.domains) | {domain.domain for domain in deployment.sending_domains}
    taken = {domain.domain: 'a sending domain' for domain in deployment.sending_domains}
    taken |= {domain.bounce_domain: 'a return-path domain' for domain in deployment.sending_domains}
    taken |= {d.tracking.hostname: 'a tracking host name' for d in deployment.sending_domains if d.tracking}
    taken |= {host.fqdn: f'host "{key}"' for key, host in deployment.hosts.items()}
    taken |= {ip.ptr: 'a PTR name' for ip in ctx.facts.ips}
    for zone in deployment.dns.zones:
        taken |= {ns: 'a name server' for ns in (*zone.nameservers, *zone.nameserver_addresses)}
    if not in_zones(name, zones):
        message = f'unsubscribe host name "{name}" is outside the managed zones, so its A record is not published'
        expected = 'a name inside one of the managed zones: ' + ', '.join(zones)
    elif not in_zones(name, owners):
        message = f'unsubscribe host name "{name}" is not under a client or sending domain; mailbox providers '
        message += "trust links on the sender's own domain"
        expected = 'a name under one of: ' + ', '.join(sorted(owners))
    elif name in taken:
        message = f'unsubscribe host name "{name}" is already {taken[name]}'
        expected = 'a name of its own, e.g. "unsubscribe.<sending domain>"'
    else:
        return
    yield ctx.problem('unsubscribe-hostname', message, path, expected=expected, value=name)


def unsubscribe_port(ctx: CheckContext) -> Iterator[Problem]:
    """The endpoint's port is free on the inbound hosts that serve it."""
    unsubscribe = ctx.deployment.feedback.unsubscribe
    if unsubscribe is None:
        return
    taken = {25: 'the bounce MX (SMTP)', DEFAULT_EXPORTER_PORT: 'the queue exporter'}
    for host in inbound_hosts(ctx.deployment):
        for stream in ctx.facts.streams_of_host(host):
            taken.setdefault(stream.injection.port, f'the injection listener of stream "{stream.name}"')
    if unsubscribe.port in taken:
        yield ctx.problem(
            'unsubscribe-port',
            f'unsubscribe port {unsubscribe.port} is already used by {taken[unsubscribe.port]} on the inbound hosts',
            ('feedback', 'unsubscribe', 'port'),
            expected='443 (one-click links are https URLs), or a free port behind a proxy',
            value=unsubscribe.port,
        )


def inbound_powermta(ctx: CheckContext) -> Iterator[Problem]:
    """An inbound host that runs PowerMTA: no bounce MX is rendered there (docs/powermta.md)."""
    listed = ctx.deployment.inbound.hosts
    for host in inbound_hosts(ctx.deployment):
        if ctx.facts.host_mta.get(host) != 'powermta':
            continue
        path: Path = ('inbound', 'hosts', listed.index(host)) if host in listed else ('hosts', host)
        yield ctx.problem(
            'inbound-powermta',
            f'inbound host "{host}" runs PowerMTA, for which no bounce MX is rendered: nothing set up by this '
            'library listens on its port 25, so DSNs, feedback-loop reports and mailto: unsubscribes sent to the '
            'MX records that name it are refused or lost (and its MX probe alerts)',
            path,
            severity='warning',
            expected='a Postfix host in inbound.hosts (the bounce MX), or your own PowerMTA inbound configuration',
            value=host,
            at_key=host not in listed,
        )


def _loopback(host: str) -> bool:
    if host == 'localhost':
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def webhook_url(ctx: CheckContext) -> Iterator[Problem]:
    webhook = ctx.deployment.feedback.webhook
    if webhook is None:
        return
    url = webhook.url
    try:
        parts = urlsplit(url)
        host = parts.hostname or ''
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        parts, host = None, ''
    credentials = url_has_userinfo(url)
    if credentials:
        message = 'webhook URL holds credentials; the requests are signed with secret_file instead'
    elif parts is None or not host or parts.scheme not in ('https', 'http'):
        message = f'webhook URL "{url}" is not an http(s) URL with a host'
    elif parts.scheme == 'http' and not _loopback(host):
        message = f'webhook URL "{url}" sends suppressed addresses unencrypted to "{host}"'
    else:
        return
    yield ctx.problem(
        'webhook-url',
        message,
        ('feedback', 'webhook', 'url'),
        expected='an https URL such as "https://crm.example.com/hooks/suppression" (http only to a loopback address)',
        value=None if credentials else url,
    )


def _files(ctx: CheckContext) -> Iterator[tuple[Path, str]]:
    feedback = ctx.deployment.feedback
    yield ('feedback', 'signing_key_file'), feedback.signing_key_file
    for index, old in enumerate(feedback.old_signing_key_files):
        yield ('feedback', 'old_signing_key_files', index), old
    yield ('feedback', 'retention', 'hash_key_file'), feedback.retention.hash_key_file
    if feedback.unsubscribe is not None:
        yield ('feedback', 'unsubscribe', 'tls_certificate'), feedback.unsubscribe.tls_certificate
        yield ('feedback', 'unsubscribe', 'tls_key'), feedback.unsubscribe.tls_key
    if feedback.webhook is not None:
        yield ('feedback', 'webhook', 'secret_file'), feedback.webhook.secret_file


KEY_NOT_SHOWN = 'the value of a key file field is not shown: it may be the key itself'


def feedback_file_path(ctx: CheckContext) -> Iterator[Problem]:
    """Key and certificate files: absolute, normalised, and each key used for one purpose only."""
    feedback = ctx.deployment.feedback
    keys = {feedback.signing_key_file: 'signing_key_file', feedback.retention.hash_key_file: 'retention.hash_key_file'}
    for path, value in _files(ctx):
        # a key pasted where its file belongs may start with "/" (base64): only the certificate's path is shown
        shown = value if path[-1] == 'tls_certificate' and value.startswith('/') else None
        if not value.startswith('/') or posixpath.normpath(value) != value:
            quoted = (
                f'"{value}"' if shown else f'the value ({NOT_SHOWN if not value.startswith("/") else KEY_NOT_SHOWN})'
            )
            message = f"{quoted} is not an absolute, normalised path; the host services do not know the controller's "
            message += 'working directory'
            expected = 'an absolute path such as "/etc/mailinfra/secrets/feedback-signing-key"'
        elif path[1] == 'old_signing_key_files' and value in keys:
            message = (
                f'this old key file is also {keys[value]}; an old key only verifies, it must differ from current keys'
            )
            expected = 'the file of a previous signing key'
        elif path[1:] == ('retention', 'hash_key_file') and value == feedback.signing_key_file:
            message = 'the hash key is the signing key; rotating the signing key would then lose every hashed address'
            expected = 'a key file of its own, never rotated'
        else:
            continue
        yield ctx.problem('feedback-file-path', message, path, expected=expected, value=shown)


def powermta_gate_auth(ctx: CheckContext) -> Iterator[Problem]:
    """The suppression gate in front of PowerMTA relays no SMTP AUTH: a PowerMTA stream with users cannot use it."""
    if not ctx.deployment.feedback.suppression.powermta_gate:
        return
    powermta = {host for host, mta in ctx.facts.host_mta.items() if mta == 'powermta'}
    for name, stream in ctx.deployment.streams.items():
        users = stream.injection.sasl_users
        if users and powermta.intersection(ctx.facts.streams[name].hosts):
            yield ctx.problem(
                'powermta-gate-auth',
                f'stream "{name}" has SMTP AUTH users on PowerMTA, but the suppression gate in front of PowerMTA does '
                'not relay AUTH (PowerMTA would see every session unauthenticated)',
                ('streams', name, 'injection', 'sasl_users'),
                expected='no sasl_users on PowerMTA streams while feedback.suppression.powermta_gate is true, or '
                'powermta_gate: false',
                value=', '.join(users),
            )


def powermta_gate_networks(ctx: CheckContext) -> Iterator[Problem]:
    """The gate accepts a stream's port only from its injection networks: a PowerMTA stream without one would take
    no mail at all (and before the gate checked clients, it relayed for anyone)."""
    if not ctx.deployment.feedback.suppression.powermta_gate:
        return
    powermta = {host for host, mta in ctx.facts.host_mta.items() if mta == 'powermta'}
    for name, stream in ctx.deployment.streams.items():
        if not stream.injection.networks and powermta.intersection(ctx.facts.streams[name].hosts):
            yield ctx.problem(
                'powermta-gate-networks',
                f'stream "{name}" has no injection networks on PowerMTA: the suppression gate accepts a port only '
                "from its stream's networks, so no client could inject",
                ('streams', name, 'injection', 'networks'),
                expected='the client networks of the stream, e.g. [10.0.0.0/24]',
                value='[]',
            )


CHECKS = (
    Check(
        'powermta-gate-networks',
        'error',
        'Each PowerMTA stream behind the suppression gate has injection networks.',
        powermta_gate_networks,
    ),
    Check(
        'powermta-gate-auth',
        'error',
        'The suppression gate in front of PowerMTA is not combined with SMTP AUTH users.',
        powermta_gate_auth,
    ),
    Check(
        'feedback-unknown-stream',
        'error',
        'feedback.streams and complaint links name streams of the spec.',
        feedback_unknown_stream,
    ),
    Check(
        'complaint-link-transactional',
        'warning',
        'A complaint link that stops transactional mail.',
        complaint_link_transactional,
    ),
    Check('verp-return-path', 'error', 'VERP domains are aligned return-path domains with MX.', verp_return_path),
    Check('verp-capacity', 'error', 'VERP return paths of each stream fit in 64 octets.', verp_capacity),
    Check(
        'return-path-reserved-local-part',
        'error',
        "No address of ours in a return-path domain starts with a stream's VERP prefix and separator.",
        return_path_reserved_local_part,
    ),
    Check('unsubscribe-hostname', 'error', 'The unsubscribe host name is publishable and free.', unsubscribe_hostname),
    Check('unsubscribe-port', 'error', 'The unsubscribe port is free on the inbound hosts.', unsubscribe_port),
    Check(
        'inbound-powermta',
        'warning',
        'An inbound host (MX of the return-path domains) runs PowerMTA, whose inbound is not rendered.',
        inbound_powermta,
    ),
    Check('webhook-url', 'error', 'The webhook URL is https (http only to loopback), no credentials.', webhook_url),
    Check('feedback-file-path', 'error', 'Feedback key and certificate files: absolute, distinct.', feedback_file_path),
)
