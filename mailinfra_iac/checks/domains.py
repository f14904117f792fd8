"""Domains: no duplicates, streams only use declared domains, every published name in a managed zone and
within DNS limits, a tracking CNAME alone at its name."""

from __future__ import annotations

from collections.abc import Iterator

from ..facts.naming import ed25519_selector, organisation
from ..facts.records import types_at
from ..problems import Path, Problem
from .base import Check, CheckContext
from .names import forward_zones, in_zones

MAX_NAME = 253
"""Characters of a name without its final dot: 255 octets on the wire (RFC 1035 section 2.3.4)."""
MAX_LABEL = 63


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
    zones = set(forward_zones(ctx))  # records are never placed in reverse (in-addr.arpa) zones, only PTRs
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


def fbl_address_outside_zones(ctx: CheckContext) -> Iterator[Problem]:
    """The feedback-loop address's MX is ours to publish only inside a managed zone."""
    address = ctx.deployment.inbound.fbl_address
    if address is None:
        return
    domain = address.rpartition('@')[2]
    zones = forward_zones(ctx)
    if not in_zones(domain, zones):
        yield ctx.problem(
            'fbl-address-outside-zones',
            f'the feedback-loop address "{address}" is at "{domain}", outside the managed zones: no MX, MTA-STS or '
            'TLS-RPT records are published for it, so feedback-loop reports reach the inbound hosts only if the '
            "operator points that domain's MX at them (the bounce MX takes this one address)",
            ('inbound', 'fbl_address'),
            severity='warning',
            expected='an address at a return-path domain or another name inside the managed zones: ' + ', '.join(zones),
            value=address,
        )


def fbl_address_domain(ctx: CheckContext) -> Iterator[Problem]:
    """The feedback-loop address's domain gets MX records at the bounce MX, which takes only that address: it must
    not be a domain whose other mail matters (a sending domain, or an organisational domain of the client)."""
    address = ctx.deployment.inbound.fbl_address
    if address is None:
        return
    domain = address.rpartition('@')[2].lower().rstrip('.')
    if not in_zones(domain, forward_zones(ctx)):
        return  # no MX of ours (fbl-address-outside-zones)
    if domain in {item.bounce_domain.lower().rstrip('.') for item in ctx.deployment.sending_domains}:
        return  # a return-path domain has its MX at the bounce MX anyway
    sending = {item.domain.lower().rstrip('.') for item in ctx.deployment.sending_domains}
    client = {name.lower().rstrip('.') for name in ctx.deployment.client.domains}
    if domain in sending or domain in client:
        what = 'a sending (From) domain' if domain in sending else 'an organisational domain of the client'
        yield ctx.problem(
            'fbl-address-domain',
            f'the feedback-loop address "{address}" is at "{domain}", {what}: its MX records would point at the '
            'bounce MX, which takes only that address and refuses all other mail to the domain (replies, the '
            "client's own mailboxes, DMARC and TLS reports)",
            ('inbound', 'fbl_address'),
            expected='an address at a return-path domain or a name of its own, e.g. fbl@bounces.' + domain,
            value=address,
        )


def tracking_hostname(ctx: CheckContext) -> Iterator[Problem]:
    """A CNAME must be the only record at its name (RFC 1034 section 3.6.2, RFC 2181 section 10.1)."""
    deployment = ctx.deployment
    tracked = {domain.tracking.hostname for domain in deployment.sending_domains if domain.tracking}
    if not tracked:
        return
    apexes = {zone.name for zone in deployment.dns.zones}
    types = types_at(deployment, ctx.facts, tracked)
    targets: dict[str, str] = {}
    for index, domain in enumerate(deployment.sending_domains):
        if domain.tracking is None:
            continue
        name, target = domain.tracking.hostname, domain.tracking.target
        others = sorted(types.get(name, set()) - {'CNAME'})
        first = targets.setdefault(name, target)
        if name in apexes:
            clash = f'is the apex of zone {name}, which holds its SOA and NS records'
        elif others:
            clash = f'also gets {", ".join(others)} records from this deployment'
        elif first != target:
            clash = f'is also the tracking host name of another sending domain, with target {first}'
        else:
            continue
        yield ctx.problem(
            'tracking-hostname',
            f'tracking host name "{name}" of {domain.domain} {clash}: a CNAME must be the only record at its '
            'name (RFC 1034 section 3.6.2), BIND and the DNS providers refuse the zone otherwise',
            ('sending_domains', index, 'tracking', 'hostname'),
            expected='a name of its own for the CNAME, e.g. "click.' + domain.domain + '"',
            value=name,
        )


def _name_problem(name: str) -> str | None:
    longest = max(name.split('.'), key=len)
    if len(longest) > MAX_LABEL:
        return f'its label "{longest}" has {len(longest)} characters, DNS allows {MAX_LABEL}'
    if '' in name.split('.'):
        return 'it has an empty label'
    if len(name) > MAX_NAME:
        return f'it has {len(name)} characters, DNS allows {MAX_NAME} (RFC 1035 section 2.3.4)'
    return None


def _derived_names(ctx: CheckContext) -> Iterator[tuple[Path, str]]:
    """(field that makes it, name) of the names derived from sending domains and the feedback-loop address."""
    deployment = ctx.deployment
    client_domains = set(deployment.client.domains)
    receiving: list[tuple[Path, str]] = []
    for index, domain in enumerate(deployment.sending_domains):
        at: Path = ('sending_domains', index)
        yield (*at, 'domain'), f'_dmarc.{domain.domain}'
        for position, selector in enumerate(domain.dkim.selectors):
            names = [selector]
            if domain.dkim.algorithm == 'rsa+ed25519':
                names.append(ed25519_selector(selector))
            for name in names:
                yield (*at, 'dkim', 'selectors', position), f'{name}._domainkey.{domain.domain}'
        own = organisation(domain.domain, client_domains)
        for field in ('rua', 'ruf'):
            for position, address in enumerate(getattr(domain.dmarc, field)):
                target = address.rpartition('@')[2]
                if organisation(target, client_domains) != own:
                    yield (*at, 'dmarc', field, position), f'{domain.domain}._report._dmarc.{target}'
        receiving.append(((*at, 'return_path' if domain.return_path else 'domain'), domain.bounce_domain))
    if deployment.inbound.fbl_address:
        receiving.append((('inbound', 'fbl_address'), deployment.inbound.fbl_address.rpartition('@')[2]))
    for path, name in receiving:
        yield path, name
        for prefix in ('_mta-sts', 'mta-sts', '_smtp._tls'):
            yield path, f'{prefix}.{name}'


def dns_name_length(ctx: CheckContext) -> Iterator[Problem]:
    zones = {zone.name for zone in ctx.deployment.dns.zones}
    seen: set[Path] = set()
    for path, name in _derived_names(ctx):
        problem = _name_problem(name)
        if problem is None or not in_zones(name, zones) or path in seen:
            continue
        seen.add(path)  # one problem per field: the first name it makes that DNS cannot hold
        yield ctx.problem(
            'dns-name-length',
            f'the records of "{name}" cannot be published: {problem}',
            path,
            expected=f'names this field makes of at most {MAX_NAME} characters, labels of at most {MAX_LABEL}: '
            'a shorter name or selector',
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
    Check(
        'fbl-address-domain',
        'error',
        "The feedback-loop address is not at a sending domain or the client's domain (its MX would take their mail).",
        fbl_address_domain,
    ),
    Check(
        'fbl-address-outside-zones',
        'warning',
        'A feedback-loop address whose MX the operator must arrange.',
        fbl_address_outside_zones,
    ),
    Check('tracking-hostname', 'error', 'A tracking CNAME alone at its name, not a zone apex.', tracking_hostname),
    Check('dns-name-length', 'error', 'Names derived from the spec within DNS length limits.', dns_name_length),
)
