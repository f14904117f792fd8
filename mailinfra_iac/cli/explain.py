"""``mailinfra explain``: a readable summary of a spec, or the same as JSON (shape in docs/cli.md)."""

from __future__ import annotations

from typing import Any

from ..api import Spec
from ..model import format_duration


def explain_text(spec: Spec) -> str:
    deployment, facts = spec.deployment, spec.facts
    lines = [
        f'Client {deployment.client.display_name or deployment.client.name} ({deployment.client.name})',
        f'MTA: {facts.mta.chosen} (recommended {facts.mta.recommended}, about {facts.mta.daily_volume:,} mails/day)',
    ]
    lines += [f'  - {reason}' for reason in facts.mta.reasons]
    lines.append('')
    lines.append('Hosts')
    for name, host in deployment.hosts.items():
        where = host.address or 'allocated by Terraform'
        runs = f'MTA {facts.host_mta[name]}; pools {", ".join(host.pools) or "-"}' if name in facts.host_mta else ''
        if host.roles != ['mta']:
            runs += ('; ' if runs else '') + f'roles {", ".join(host.roles)}'
        lines.append(
            f'  {name}: {host.fqdn} [{host.provider}{", " + host.region if host.region else ""}] {where}; {runs}'
        )
    lines.append('')
    for stream in facts.streams.values():
        retry = stream.retry
        lines.append(f'Stream {stream.name} ({stream.kind}): {stream.use_case}')
        lines.append(
            f'  volume {stream.volume.monthly:,}/month, peak {stream.volume.peak_hourly:,}/hour; '
            f'domains {", ".join(stream.domains)}; injection port {stream.injection.port}'
        )
        lines.append(
            f'  retry {format_duration(retry.min_backoff)}..{format_duration(retry.max_backoff)}, '
            f'give up after {format_duration(retry.queue_lifetime)}'
        )
        lines.append(f'  pool {stream.pool}: {len(stream.ips)} IP(s)')
        for ip in stream.ips:
            warm = f', warm-up since {ip.warmup_started}' if ip.warmup_started else ''
            lines.append(f'    {ip.address or "(allocated)":<15} {ip.ptr} on {ip.host}{warm}')
        lines.append('  per-ISP limits per IP (connections, messages/connection, messages/hour):')
        for isp in stream.isps.values():
            limits = isp.limits
            lines.append(
                f'    {isp.display_name:<28} {limits.max_connections:>4} {limits.messages_per_connection:>6} '
                f'{limits.messages_per_hour:>8}'
            )
        lines.append('')
    lines.append('Sending domains')
    for domain in deployment.sending_domains:
        lines.append(
            f'  {domain.domain}: return-path {domain.bounce_domain}; DKIM {domain.dkim.algorithm} '
            f'{", ".join(domain.dkim.selectors)}; DMARC p={domain.dmarc.p}; SPF {domain.spf.all}'
        )
    if spec.problems:
        lines.append('')
        lines.append('Findings')
        lines += [f'  - {problem}' for problem in spec.problems]
    return '\n'.join(lines) + '\n'


def explain_json(spec: Spec) -> dict[str, Any]:
    """What :func:`explain_text` shows, as data. Durations are in seconds; absent values are ``null``."""
    deployment, facts = spec.deployment, spec.facts
    return {
        'client': {'name': deployment.client.name, 'display_name': deployment.client.display_name},
        'mta': {
            'chosen': facts.mta.chosen,
            'recommended': facts.mta.recommended,
            'daily_volume': facts.mta.daily_volume,
            'reasons': list(facts.mta.reasons),
        },
        'hosts': [
            {
                'name': name,
                'fqdn': host.fqdn,
                'provider': host.provider,
                'region': host.region,
                'address': host.address,
                'roles': list(host.roles),
                'mta': facts.host_mta.get(name),
                'pools': list(host.pools),
            }
            for name, host in deployment.hosts.items()
        ],
        'streams': [
            {
                'name': stream.name,
                'kind': stream.kind,
                'use_case': stream.use_case,
                'volume': {'monthly': stream.volume.monthly, 'peak_hourly': stream.volume.peak_hourly},
                'domains': list(stream.domains),
                'injection_port': stream.injection.port,
                'retry': {
                    'min_backoff': stream.retry.min_backoff,
                    'max_backoff': stream.retry.max_backoff,
                    'queue_lifetime': stream.retry.queue_lifetime,
                },
                'pool': stream.pool,
                'ips': [
                    {
                        'address': ip.address,
                        'ptr': ip.ptr,
                        'host': ip.host,
                        'warmup_started': ip.warmup_started.isoformat() if ip.warmup_started else None,
                    }
                    for ip in stream.ips
                ],
                'isps': [
                    {
                        'name': isp.name,
                        'display_name': isp.display_name,
                        'max_connections': isp.limits.max_connections,
                        'messages_per_connection': isp.limits.messages_per_connection,
                        'messages_per_hour': isp.limits.messages_per_hour,
                    }
                    for isp in stream.isps.values()
                ],
            }
            for stream in facts.streams.values()
        ],
        'sending_domains': [
            {
                'domain': domain.domain,
                'bounce_domain': domain.bounce_domain,
                'dkim': {'algorithm': domain.dkim.algorithm, 'selectors': list(domain.dkim.selectors)},
                'dmarc': {'p': domain.dmarc.p},
                'spf': {'all': domain.spf.all},
            }
            for domain in deployment.sending_domains
        ],
        'problems': [problem.as_dict() for problem in spec.problems],
    }
