"""Domains: no duplicates, streams only use declared domains, every published name in a managed zone."""

from __future__ import annotations

from collections.abc import Iterator

from ..problems import Problem
from .base import Check, CheckContext
from .names import in_zones


def duplicate_domain(ctx: CheckContext) -> Iterator[Problem]:
    deployment = ctx.deployment
    lists: list[tuple[tuple[str | int, ...], list[str]]] = [
        (('sending_domains',), [domain.domain for domain in deployment.sending_domains]),
        (('dns', 'zones'), [zone.name for zone in deployment.dns.zones]),
        (('client', 'domains'), list(deployment.client.domains)),
    ]
    for prefix, names in lists:
        seen: set[str] = set()
        for index, name in enumerate(names):
            if name in seen:
                path = (*prefix, index, 'domain') if prefix == ('sending_domains',) else (*prefix, index)
                if prefix == ('dns', 'zones'):
                    path = (*prefix, index, 'name')
                yield ctx.problem(
                    'duplicate-domain',
                    f'"{name}" is listed twice in {".".join(map(str, prefix))}',
                    path,
                    expected='each domain once',
                    value=name,
                )
            seen.add(name)
    bounce: dict[str, str] = {}
    sending = {domain.domain for domain in deployment.sending_domains}
    for index, domain in enumerate(deployment.sending_domains):
        other = bounce.get(domain.bounce_domain)
        if other is not None or domain.bounce_domain in sending:
            owner = other or domain.bounce_domain
            yield ctx.problem(
                'duplicate-domain',
                f'return-path domain "{domain.bounce_domain}" of {domain.domain} is also used by {owner}: each '
                'sending domain needs a bounce domain of its own to keep bounces attributable',
                ('sending_domains', index, 'return_path'),
                expected='a distinct return-path domain, e.g. bounces.' + domain.domain,
                value=domain.bounce_domain,
            )
        bounce.setdefault(domain.bounce_domain, domain.domain)


def unknown_domain(ctx: CheckContext) -> Iterator[Problem]:
    declared = [domain.domain for domain in ctx.deployment.sending_domains]
    known = set(declared)
    for name, stream in ctx.deployment.streams.items():
        for index, domain in enumerate(stream.domains):
            if domain not in known:
                yield ctx.problem(
                    'unknown-domain',
                    f'stream "{name}" sends as {domain}, which is not under sending_domains (no DKIM, SPF or '
                    'DMARC would be published for it)',
                    ('streams', name, 'domains', index),
                    expected='one of: ' + ', '.join(declared),
                    value=domain,
                )


def domain_outside_zones(ctx: CheckContext) -> Iterator[Problem]:
    zones = {zone.name for zone in ctx.deployment.dns.zones}
    expected = 'a name inside one of the managed zones: ' + ', '.join(sorted(zones))
    for index, domain in enumerate(ctx.deployment.sending_domains):
        names = [('domain', domain.domain), ('return_path', domain.bounce_domain)]
        if domain.tracking is not None:
            names.append(('tracking', domain.tracking.hostname))
        for field, name in names:
            if not in_zones(name, zones):
                yield ctx.problem(
                    'domain-outside-zones',
                    f'{field.replace("_", "-")} "{name}" is not inside a managed zone, so its records cannot be '
                    'published',
                    ('sending_domains', index, field)
                    if field != 'tracking'
                    else ('sending_domains', index, 'tracking'),
                    expected=expected,
                    value=name,
                )


CHECKS = (
    Check('duplicate-domain', 'error', 'A domain listed twice, or a shared return-path domain.', duplicate_domain),
    Check('unknown-domain', 'error', 'A stream sending as an undeclared domain.', unknown_domain),
    Check(
        'domain-outside-zones',
        'error',
        'Sending, return-path or tracking names outside the zones.',
        domain_outside_zones,
    ),
)
