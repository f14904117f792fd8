"""``mailinfra__*``: deployment facts every MTA role reads (streams, ISP limits, bounce handling, DKIM references)."""

from __future__ import annotations

from typing import Any

from ...catalogue.isps import DEFAULT_LIMITS
from ...facts import EffectiveIsp, Limits, StreamFact
from ...facts.isps import DEFAULTS
from ...facts.naming import ed25519_selector
from ...model import Deployment, IspProfile
from ..base import RenderContext


def _isp_profile(profile: IspProfile) -> dict[str, Any]:
    return {
        'display_name': profile.display_name,
        'recipient_domains': list(profile.recipient_domains),
        'mx_patterns': list(profile.mx_patterns),
        'limits': Limits.resolve(profile.limits.over(DEFAULT_LIMITS)).as_dict(),
        'backoff_rules': [rule.model_dump() for rule in profile.backoff_rules],
    }


def _stream_isp(isp: EffectiveIsp, base: IspProfile | None) -> dict[str, Any]:
    """A provider as it applies to one stream: its limits, plus whatever the stream changed."""
    entry: dict[str, Any] = {'limits': isp.limits.as_dict()}
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


def dkim_keys_by_domain(context: RenderContext) -> dict[str, list[dict[str, Any]]]:
    """``dkim_keys`` grouped by sending domain (spec order), computed once per render."""

    def group() -> dict[str, list[dict[str, Any]]]:
        grouped: dict[str, list[dict[str, Any]]] = {}
        for key in dkim_keys(context.deployment):
            grouped.setdefault(key['domain'], []).append(key)
        return grouped

    return context.memoize('dkim_keys_by_domain', group)


class CoreVars:
    """Variables shared by the MTA roles."""

    name = 'mailinfra'

    def group_vars(self, context: RenderContext) -> dict[str, Any]:
        deployment, facts = context.deployment, context.facts
        monitoring = deployment.monitoring
        return {
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
            'mailinfra__default_limits': DEFAULTS.as_dict(),
            'mailinfra__streams': {stream.name: _stream(stream, facts.isps) for stream in facts.streams.values()},
            'mailinfra__monitoring': {
                'dnsbl_zones': monitoring.dnsbl_zone_names(),
                'dnsbl_interval': monitoring.dnsbl_check_interval(),
                'queue': monitoring.queue.model_dump(exclude={'streams'}),
                'alerts': [alert.model_dump() for alert in monitoring.alerts],
                'postmaster_programmes': list(monitoring.postmaster_programmes),
            },
        }

    def host_vars(self, context: RenderContext, host: str) -> dict[str, Any]:
        return {
            'mailinfra__mta': context.facts.host_mta[host],
            'mailinfra__host_streams': [
                _host_stream(context, stream, host) for stream in context.facts.streams_of_host(host)
            ],
        }
