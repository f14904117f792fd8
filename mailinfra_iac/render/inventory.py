"""The Ansible inventory: groups by MTA, stream and pool; the variables our roles read.

Every variable is documented in docs/inventory.md. Only references to DKIM keys are written
(key path relative to the key store on the controller), never key material.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..catalogue.isps import DEFAULT_LIMITS
from ..checks.authentication import ed25519_selector
from ..facts import EffectiveIsp, StreamFact
from ..model import Deployment, IspLimits, IspProfile
from .base import GENERATED_MARK, OutputFile, RenderContext
from .serialise import to_yaml

SMTP_PORT = 25


def _limits(limits: IspLimits) -> dict[str, Any]:
    return {key: value for key, value in limits.model_dump().items() if value is not None}


def _isp_profile(profile: IspProfile) -> dict[str, Any]:
    return {
        'display_name': profile.display_name,
        'recipient_domains': list(profile.recipient_domains),
        'mx_patterns': list(profile.mx_patterns),
        'limits': _limits(profile.limits.over(DEFAULT_LIMITS)),
        'backoff_rules': [rule.model_dump() for rule in profile.backoff_rules],
    }


def _stream_isp(isp: EffectiveIsp, base: IspProfile | None) -> dict[str, Any]:
    """A provider as it applies to one stream: its limits, plus whatever the stream changed."""
    entry: dict[str, Any] = {'limits': _limits(isp.limits)}
    if base is None or tuple(base.recipient_domains) != isp.recipient_domains:
        entry['recipient_domains'] = list(isp.recipient_domains)
    if base is None or tuple(base.mx_patterns) != isp.mx_patterns:
        entry['mx_patterns'] = list(isp.mx_patterns)
    if base is None or tuple(base.backoff_rules) != isp.backoff_rules:
        entry['backoff_rules'] = [rule.model_dump() for rule in isp.backoff_rules]
    return entry


def _stream(stream: StreamFact, profiles: dict[str, IspProfile]) -> dict[str, Any]:
    """A stream's configuration, written once in group_vars/all.yml (hosts hold only their IPs)."""
    return {
        'kind': stream.kind,
        'use_case': stream.use_case,
        'pool': stream.pool,
        'domains': list(stream.domains),
        'injection': {
            'port': stream.injection.port,
            'networks': list(stream.injection.networks),
            'sasl_users': list(stream.injection.sasl_users),
        },
        'retry': {
            'min_backoff': stream.retry.min_backoff,
            'max_backoff': stream.retry.max_backoff,
            'queue_lifetime': stream.retry.queue_lifetime,
        },
        'isps': {name: _stream_isp(isp, profiles.get(name)) for name, isp in stream.isps.items()},
        'bounce_categories': {
            name: {
                'retry': category.retry,
                'retry_after': list(category.retry_after),
                'expire_after': category.expire_after,
                'suppress_after': category.suppress_after,
            }
            for name, category in stream.categories.items()
        },
        'reply_rules': [rule.model_dump() for rule in stream.reply_rules],
    }


def _host_stream(context: RenderContext, stream: StreamFact, host: str) -> dict[str, Any]:
    return {
        'name': stream.name,
        'ips': [
            {
                'id': ip.id,
                'address': context.address_of(ip.id, ip.address),
                'ptr': ip.ptr,
                'helo': ip.helo,
                'warmup_started': ip.warmup_started.isoformat() if ip.warmup_started else None,
            }
            for ip in stream.ips
            if ip.host == host
        ],
    }


def dkim_keys(deployment: Deployment) -> list[dict[str, Any]]:
    """References to the DKIM keys (paths relative to the controller's key store), signing key first."""
    client = deployment.client.name
    keys = []
    for domain in deployment.sending_domains:
        for position, selector in enumerate(domain.dkim.selectors):
            entries = [(selector, 'rsa', domain.dkim.rsa_bits)]
            if domain.dkim.algorithm == 'rsa+ed25519':
                entries.append((ed25519_selector(selector), 'ed25519', 256))
            for name, algorithm, bits in entries:
                keys.append(
                    {
                        'domain': domain.domain,
                        'selector': name,
                        'algorithm': algorithm,
                        'bits': bits,
                        'signing': position == 0,
                        'key_ref': f'{client}/{domain.domain}/{name}.{algorithm}.key',
                    }
                )
    return keys


def _firewall(context: RenderContext, host: str, streams: list[StreamFact]) -> list[dict[str, Any]]:
    rules = []
    for stream in streams:
        rules.append(
            {
                'name': f'inject-{stream.name}',
                'port': stream.injection.port,
                'proto': 'tcp',
                'sources': list(stream.injection.networks),
            }
        )
    inbound = context.deployment.inbound.hosts or list(context.deployment.hosts)
    if host in inbound:
        rules.append({'name': 'smtp-inbound', 'port': SMTP_PORT, 'proto': 'tcp', 'sources': []})
    return rules


class InventoryRenderer:
    """Writes ``inventory/hosts.yml``, ``group_vars/all.yml`` and one ``host_vars`` file per host."""

    name = 'inventory'
    description = 'Ansible inventory: groups by MTA, stream and pool, and the role variables.'

    def render(self, context: RenderContext) -> Iterator[OutputFile]:
        deployment, facts = context.deployment, context.facts
        header = f'{GENERATED_MARK}\nSpec: {context.spec_name}. Variables: docs/inventory.md.'
        mta_groups: dict[str, dict[str, Any]] = {'mta_postfix': {}, 'mta_powermta': {}}
        for name, host in deployment.hosts.items():
            entry: dict[str, Any] = {'ansible_user': host.ssh_user}
            if host.address is not None:
                entry['ansible_host'] = host.address
            else:
                address = context.addresses.get(f'host_{name}')
                entry['ansible_host'] = address if address is not None else host.fqdn
            mta_groups[f'mta_{facts.host_mta[name]}'][name] = entry
        children: dict[str, Any] = {
            'mta': {'children': {group: {'hosts': hosts} for group, hosts in mta_groups.items()}},
            'inbound_mx': {'hosts': {host: {} for host in (deployment.inbound.hosts or list(deployment.hosts))}},
        }
        for stream in facts.streams.values():
            children[f'stream_{stream.name}'] = {'hosts': {host: {} for host in stream.hosts}}
        for pool, hosts in facts.pool_hosts.items():
            children[f'pool_{pool}'] = {'hosts': {host: {} for host in hosts}}
        yield OutputFile('inventory/hosts.yml', to_yaml({'all': {'children': children}}, header))

        monitoring = deployment.monitoring
        group_vars = {
            'mailinfra__client': {
                'name': deployment.client.name,
                'display_name': deployment.client.display_name,
                'domains': list(deployment.client.domains),
                'postmaster': deployment.client.postmaster,
                'abuse': deployment.client.abuse,
            },
            'mailinfra__dkim_keys': dkim_keys(deployment),
            'mailinfra__bounce_domains': sorted({domain.bounce_domain for domain in deployment.sending_domains}),
            'mailinfra__isp_profiles': {name: _isp_profile(profile) for name, profile in facts.isps.items()},
            'mailinfra__default_limits': _limits(DEFAULT_LIMITS),
            'mailinfra__streams': {stream.name: _stream(stream, facts.isps) for stream in facts.streams.values()},
            'mailinfra__monitoring': {
                'dnsbl_zones': monitoring.dnsbl_zones,
                'dnsbl_interval': monitoring.dnsbl_interval,
                'queue': monitoring.queue.model_dump(),
                'alerts': [alert.model_dump() for alert in monitoring.alerts],
                'postmaster_programmes': list(monitoring.postmaster_programmes),
            },
        }
        yield OutputFile('inventory/group_vars/all.yml', to_yaml(group_vars, header))

        for name, host in deployment.hosts.items():
            streams = facts.streams_of_host(name)
            host_vars = {
                'mta_base__hostname': host.fqdn,
                'mta_base__mailname': host.fqdn,
                'mta_base__sending_ips': [
                    {'address': context.address_of(ip.id, ip.address), 'prefix': 32, 'ptr': ip.ptr, 'id': ip.id}
                    for ip in facts.ips_of_host(name)
                ],
                'mta_base__firewall_rules': _firewall(context, name, streams),
                'mailinfra__mta': facts.host_mta[name],
                'mailinfra__host_streams': [_host_stream(context, stream, name) for stream in streams],
            }
            yield OutputFile(f'inventory/host_vars/{name}.yml', to_yaml(host_vars, header))
