"""``mailinfra explain``: a readable summary of a spec."""

from __future__ import annotations

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
