"""Deterministic generator of a large, synthetic but valid deployment spec (YAML text).

Scale 1 gives exactly 1,000 sending IPs (explicit and allocated), 500 sending domains and
60 hosts; scale N gives N times as many of each. Per-stream and per-host sizes stay the
same at every scale: a bigger spec has more brands, streams, pools, sites and zones, not
bigger pools.

The shape follows the examples: one client (a large sender with many brands), each brand
with its own DNS zone, ten sending domains and one to four streams (transactional,
marketing, cold outreach, notifications), one pool per stream, pools of 1 to ~40 IPs
served by one to four hosts, hosts grouped in provider sites with their own zones.
Every name is in a reserved or made-up namespace (``.example``) and every sending
address is in 198.18.0.0/15 (RFC 2544 benchmarking), with a few from the RFC 5737
documentation range 203.0.113.0/24; management addresses of static hosts come from
192.0.2.0/24 and 198.51.100.0/24. This is only data: nothing is sent, nothing resolved.

    python benchmarks/render/synth.py --scale 1 > /tmp/spec.yml
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import random
import sys
from dataclasses import dataclass, field

IPS_PER_SCALE = 1000
DOMAINS_PER_SCALE = 500
HOSTS_PER_SCALE = 60
BRANDS_PER_SCALE = 50
DOMAINS_PER_BRAND = DOMAINS_PER_SCALE // BRANDS_PER_SCALE  # 10
CLIENT = 'synthmail'
CLIENT_ZONE = 'synthmail.example'
AS_OF = dt.date(2026, 11, 28)
"""The "today" the spec is written for (warm-up dates are relative to it); pass it as ``as_of``."""

_SYLLABLES = (
    'nor',
    'vel',
    'tra',
    'qui',
    'mon',
    'zen',
    'lum',
    'cor',
    'bri',
    'fal',
    'dex',
    'ori',
    'sol',
    'pax',
    'kin',
    'ray',
    'mar',
    'tel',
    'gal',
    'ven',
    'ster',
    'ly',
    'ka',
    'no',
    'ta',
    'ri',
    'vo',
    'sa',
)
_SUBDOMAINS = ('news', 'mail', 'offers', 'info', 'updates', 'alerts', 'billing', 'events', 'promo', 'hello')
_SITES = (
    ('hetzner', 'fsn1', 'ccx33'),
    ('hetzner', 'nbg1', 'ccx23'),
    ('hetzner', 'hel1', 'ccx33'),
    ('vultr', 'ams', 'vc2-4c-8gb'),
    ('static', 'dc1', None),
    ('ovh', 'gra', 'b3-16'),
    ('aws', 'eu-central-1', 'c7i.xlarge'),
    ('linode', 'fr-par', 'g6-dedicated-4'),
    ('static', 'dc2', None),
    ('hetzner', 'ash', 'ccx33'),
    ('vultr', 'fra', 'vc2-4c-8gb'),
    ('hetzner', 'sin', 'ccx33'),  # not a second AWS region: one deployment uses one (check host-provisioning)
)
_KINDS = {
    # kind: (abbreviation, IPs per pool range, peak mails per IP per hour, hosts per pool)
    'transactional': ('tx', (2, 8), (40, 900), (1, 2)),
    'marketing': ('mk', (6, 34), (300, 2800), (1, 4)),
    'cold_outreach': ('co', (1, 3), (10, 120), (1, 1)),
    'notifications': ('nt', (2, 10), (100, 1500), (1, 2)),
}
_CATALOGUE_ISPS = ('gmail', 'microsoft', 'yahoo', 'apple', 'gmx_webde', 't_online', 'orange')
_DNSBL = ('zen.spamhaus.org', 'dbl.spamhaus.org', 'bl.spamcop.net', 'psbl.surriel.com', 'bl.mailspike.net')


@dataclass
class _Host:
    name: str
    site: str
    provider: str
    region: str
    size: str | None
    address: str | None
    subnet: int
    pools: list[str] = field(default_factory=list)
    load: int = 0
    next_octet: int = 10
    mta: str | None = None


@dataclass
class _Pool:
    name: str
    brand: str
    kind: str
    size: int
    hosts: list[str] = field(default_factory=list)
    allocate: int = 0


def _brand_names(rng: random.Random, count: int) -> list[str]:
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < count:
        name = ''.join(rng.choice(_SYLLABLES) for _ in range(rng.choice((2, 2, 3))))
        if name in seen:
            name = f'{name}{len(names)}'
        seen.add(name)
        names.append(name)
    return names


def _fit(raw: list[int], total: int) -> list[int]:
    """Scale ``raw`` sizes (each >= 1) so they add up to exactly ``total``, keeping their proportions."""
    factor = total / sum(raw)
    sizes = [max(1, int(size * factor)) for size in raw]
    order = sorted(range(len(raw)), key=lambda i: (-raw[i], i))
    step = 0
    while sum(sizes) != total:
        index = order[step % len(order)]
        if sum(sizes) < total:
            sizes[index] += 1
        elif sizes[index] > 1:
            sizes[index] -= 1
        step += 1
    return sizes


def counts(scale: int) -> dict[str, int]:
    """What a spec of ``scale`` holds."""
    return {'ips': IPS_PER_SCALE * scale, 'domains': DOMAINS_PER_SCALE * scale, 'hosts': HOSTS_PER_SCALE * scale}


def generate(scale: int = 1, seed: int = 5737) -> str:  # noqa: C901 - one linear recipe
    """The YAML text of a valid spec of ``scale``; the same arguments always give the same text."""
    if scale < 1:
        raise ValueError('scale must be at least 1')
    rng = random.Random(f'{seed}/{scale}')
    brands = _brand_names(rng, BRANDS_PER_SCALE * scale)

    # Sites (provider + region), each with its own delegated zone under the client zone.
    sites = []
    for index in range(4 + 2 * scale):
        provider, region, size = _SITES[index % len(_SITES)]
        label = region if index < len(_SITES) else f'{region}-{index // len(_SITES) + 1}'
        sites.append((label, provider, region, size))

    # Hosts, spread over the sites; each gets its own /25 of sending addresses in 198.18.0.0/15
    # (never routed, like the RFC 5737 ranges; validation accepts a spec whose addresses are all such).
    hosts: list[_Host] = []
    mgmt = iter([f'192.0.2.{n}' for n in range(2, 255)] + [f'198.51.100.{n}' for n in range(2, 255)])
    for index in range(HOSTS_PER_SCALE * scale):
        label, provider, region, size = sites[index % len(sites)]
        host = _Host(
            name=f'mta{index + 1:04d}',
            site=label,
            provider=provider,
            region=region,
            size=size,
            address=next(mgmt) if provider == 'static' else None,
            subnet=index,
        )
        if rng.random() < 0.12:
            host.mta = rng.choice(('postfix', 'powermta'))
        hosts.append(host)

    # Streams per brand; one pool per stream.
    pools: list[_Pool] = []
    for brand in brands:
        kinds = ['transactional']
        if rng.random() < 0.85:
            kinds.append('marketing')
        if rng.random() < 0.25:
            kinds.append('cold_outreach')
        if rng.random() < 0.3:
            kinds.append('notifications')
        for kind in kinds:
            low, high = _KINDS[kind][1]
            pools.append(_Pool(f'{brand}_{kind}', brand, kind, rng.randint(low, high)))
    for pool, fitted in zip(pools, _fit([pool.size for pool in pools], IPS_PER_SCALE * scale), strict=True):
        pool.size = fitted

    # Place every pool on the least-loaded hosts (deterministic), so every host carries a few pools.
    for pool in sorted(pools, key=lambda p: (-p.size, p.name)):
        low, high = _KINDS[pool.kind][3]
        wanted = max(low, min(high, round(pool.size / rng.uniform(8, 18))))
        chosen = sorted(hosts, key=lambda h: (h.load, h.name))[:wanted]
        pool.hosts = [host.name for host in chosen]
        for host in chosen:
            host.pools.append(pool.name)
            host.load += -(-pool.size // wanted)
    by_host = {host.name: host for host in hosts}
    for pool in pools:
        on_vms = all(by_host[name].provider != 'static' for name in pool.hosts)
        if on_vms and pool.kind in ('marketing', 'notifications') and rng.random() < 0.18:
            pool.allocate = min(256, pool.size if rng.random() < 0.5 else max(1, pool.size // 3))

    # Zones: the client zone, one per site, one per brand, and reverse zones of the static hosts.
    zones: list[str] = []
    zones.append(f'    - {{name: {CLIENT_ZONE}, provider: cloudflare, zone_id: {rng.getrandbits(128):032x}}}')
    for label, *_ in sites:
        zones.append(
            f'    - {{name: {label}.mta.{CLIENT_ZONE}, provider: route53, zone_id: Z{rng.getrandbits(80):020X}}}'
        )
    for brand in brands:
        provider = rng.choice(('cloudflare', 'cloudflare', 'route53', 'zonefile'))
        if provider == 'cloudflare':
            zones.append(f'    - {{name: {brand}.example, provider: cloudflare, zone_id: {rng.getrandbits(128):032x}}}')
        elif provider == 'route53':
            zones.append(f'    - {{name: {brand}.example, provider: route53, zone_id: Z{rng.getrandbits(80):020X}}}')
        else:
            zones.append(
                f'    - {{name: {brand}.example, provider: zonefile, '
                'nameservers: [ns1.dnshost.example, ns2.dnshost.example]}'
            )

    def subnet(host: _Host) -> ipaddress.IPv4Network:
        # a /25 each: 198.18.0.0/15 holds 1,024 of them (scale 17)
        return ipaddress.IPv4Network((int(ipaddress.IPv4Address('198.18.0.0')) + 128 * host.subnet, 25))

    reverse_zones: set[tuple[str, ...]] = set()
    for host in hosts:
        if host.provider == 'static':
            octets = str(subnet(host).network_address).split('.')
            if tuple(octets[:3]) in reverse_zones:
                continue  # two hosts' /25s share one /24 zone
            reverse_zones.add(tuple(octets[:3]))
            zones.append(
                f'    - {{name: {octets[2]}.{octets[1]}.{octets[0]}.in-addr.arpa, provider: rfc2136, '
                'server: 198.51.100.53}'
            )

    doc_addresses = iter(f'203.0.113.{n}' for n in range(10, 255))
    out: list[str] = []
    w = out.append
    w(
        f'# Synthetic benchmark spec, scale {scale}: {counts(scale)["ips"]} sending IPs, {counts(scale)["domains"]} '
        f'sending domains, {counts(scale)["hosts"]} hosts.'
    )
    w('# Generated by benchmarks/render/synth.py; made-up names (.example) and addresses (198.18.0.0/15,')
    w('# RFC 5737). Only data: nothing is sent.')
    w('version: 1')
    w('')
    w('client:')
    w(f'  name: {CLIENT}')
    w('  display_name: SynthMail Holding (benchmark)')
    w(f'  domains: [{CLIENT_ZONE}, ' + ', '.join(f'{brand}.example' for brand in brands) + ']')
    w(f'  postmaster: postmaster@{CLIENT_ZONE}')
    w(f'  abuse: abuse@{CLIENT_ZONE}')
    w('')
    w('mta: auto')
    w('')
    w('dns:')
    w('  ttl: 3600')
    w('  zones:')
    out.extend(zones)
    w('')
    w('hosts:')
    for host in hosts:
        w(f'  {host.name}:')
        w(f'    fqdn: {host.name}.{host.site}.mta.{CLIENT_ZONE}')
        w(f'    provider: {host.provider}')
        if host.address is not None:
            w(f'    address: {host.address}')
            w('    ssh_user: deploy')
        else:
            w(f'    region: {host.region}')
            w(f'    size: {host.size}')
        if host.mta is not None:
            w(f'    mta: {host.mta}')
        w(f'    pools: [{", ".join(host.pools)}]')
        if host is hosts[0]:
            w('    roles: [mta, monitoring]')  # the alerts below need a monitoring host
    w('')
    w('pools:')
    for pool in pools:
        abbr = _KINDS[pool.kind][0]
        w(f'  {pool.name}:')
        if rng.random() < 0.4:
            w(f'    description: {pool.kind.replace("_", " ")} IPs of {pool.brand}, {pool.size} addresses')
        explicit = pool.size - pool.allocate
        growing = rng.random() < 0.15
        fresh = rng.random() < 0.05
        base = AS_OF - dt.timedelta(days=rng.randint(90, 700))
        if explicit:
            w('    ips:')
        for n in range(1, explicit + 1):
            host = by_host[pool.hosts[(n - 1) % len(pool.hosts)]]
            if rng.random() < 0.01:
                address = next(doc_addresses)
            else:
                address = str(subnet(host)[host.next_octet])
                host.next_octet += 1
            if rng.random() < 0.5:
                ptr = f'{abbr}{n}.mta.{pool.brand}.example'
            else:
                ptr = f'{pool.brand}-{abbr}{n}.{host.site}.mta.{CLIENT_ZONE}'
            parts = [f'address: {address}', f'ptr: {ptr}']
            if rng.random() < 0.05:
                parts.append(f'helo: {ptr}')
            if len(pool.hosts) > 1 or rng.random() < 0.3:
                parts.append(f'host: {host.name}')
            if fresh or (growing and n > explicit - 2):
                parts.append(f'warmup_started: {AS_OF - dt.timedelta(days=rng.randint(3, 27))}')
            elif rng.random() < 0.9:
                parts.append(f'warmup_started: {base}')
            w('      - {' + ', '.join(parts) + '}')
        if pool.allocate:
            w('    allocate:')
            w(f'      count: {pool.allocate}')
            w(f"      ptr_pattern: '{abbr}{{n}}.{pool.brand}.alloc.{CLIENT_ZONE}'")
            w(f'      warmup_started: {AS_OF - dt.timedelta(days=rng.randint(20, 200))}')
    w('')

    # Each brand's ten domains: the apex and nine sub-domains, dealt out over its streams.
    brand_streams: dict[str, list[_Pool]] = {}
    for pool in pools:
        brand_streams.setdefault(pool.brand, []).append(pool)
    stream_domains: dict[str, list[str]] = {}
    for brand in brands:
        names = [f'{brand}.example'] + [f'{sub}.{brand}.example' for sub in rng.sample(_SUBDOMAINS, 9)]
        streams_here = brand_streams[brand]
        for index, name in enumerate(names):
            stream_domains.setdefault(streams_here[index % len(streams_here)].name, []).append(name)

    w('streams:')
    port = 2525
    brand_number = {brand: index for index, brand in enumerate(brands)}
    for pool in pools:
        brand_index = brand_number[pool.brand]
        ips_total = pool.size
        low, high = _KINDS[pool.kind][2]
        peak = ips_total * rng.randint(low, high)
        monthly = peak * rng.randint(60, 220)
        w(f'  {pool.name}:')
        w(f'    kind: {"custom" if pool.kind == "notifications" else pool.kind}')
        w(f'    use_case: {pool.kind.replace("_", " ")} mail of {pool.brand} ({ips_total} IPs)')
        w(f'    volume: {{monthly: {monthly}, peak_hourly: {peak}}}')
        w(f'    pool: {pool.name}')
        w(f'    domains: [{", ".join(stream_domains[pool.name])}]')
        networks = [f'10.{brand_index % 250}.{(brand_index // 250) * 16}.0/20']
        if rng.random() < 0.2:
            networks.append('172.16.0.0/12')
        injection = f'port: {port}, networks: [{", ".join(networks)}]'
        if rng.random() < 0.15:
            injection += f', sasl_users: [{pool.brand}-app]'
        w(f'    injection: {{{injection}}}')
        port += 1
        if pool.kind == 'marketing' and rng.random() < 0.3:
            w(f'    retry: {{queue_lifetime: {rng.choice(("1d", "36h", "2d"))}}}')
        elif pool.kind == 'transactional' and rng.random() < 0.2:
            w('    retry: {min_backoff: 1m, max_backoff: 10m, queue_lifetime: 2h}')
        if pool.kind in ('marketing', 'notifications') and rng.random() < 0.25:
            w('    isp_overrides:')
            for isp in rng.sample(_CATALOGUE_ISPS[:4], rng.randint(1, 3)):
                per_hour = rng.choice((4000, 6000, 8000, 12000))
                w(f'      {isp}: {{limits: {{max_connections: {rng.randint(3, 10)}, messages_per_hour: {per_hour}}}}}')
        if pool.kind == 'marketing' and rng.random() < 0.1:
            w('    recipient_mix: {gmail: 0.4, microsoft: 0.2, yahoo: 0.1, apple: 0.05, seznam: 0.02}')
        if pool.kind == 'cold_outreach':
            w('    bounce_policy:')
            w('      categories:')
            w('        bad-mailbox: {suppress_after: 1}')
            w('        quota-issues: {suppress_after: 1}')
    w('')

    w('sending_domains:')
    for brand in brands:
        shared = rng.random() < 0.5  # the brand's domains share one DMARC policy through a YAML anchor
        anchored = False
        for pool in brand_streams[brand]:
            for name in stream_domains[pool.name]:
                w(f'  - domain: {name}')
                roll = rng.random()
                if roll < 0.3:
                    w(f'    return_path: rp.{name}')
                elif roll < 0.5:
                    w(f'    return_path: bounce.{name}')
                selectors = 's2026q4, s2026q3' if rng.random() < 0.2 else 's2026q4'
                dkim = f'selectors: [{selectors}]'
                if rng.random() < 0.25:
                    dkim += ', algorithm: rsa+ed25519'
                if rng.random() < 0.1:
                    dkim += ', rsa_bits: 3072'
                dkim += f', rotation: {rng.choice(("90d", "180d"))}'
                w(f'    dkim: {{{dkim}}}')
                if rng.random() < 0.6:
                    spf = f'includes: [_spf.{rng.choice(("crm", "helpdesk", "billing"))}-vendor.example]'
                    if rng.random() < 0.2:
                        spf += ', mechanisms: [mx]'
                    w(f'    spf: {{{spf}, all: {rng.choice(("-all", "~all"))}}}')
                if shared and anchored:
                    w(f'    dmarc: *dmarc_{brand}')
                else:
                    rua = [f'dmarc@{brand}.example']
                    if rng.random() < 0.05:
                        rua.append(f'reports@dmarc.{CLIENT_ZONE}')
                    if rng.random() < 0.02:
                        rua.append('rua@dmarc-vendor.example')
                    policy = rng.choice(('none', 'quarantine', 'reject'))
                    dmarc = f'p: {policy}, rua: [{", ".join(rua)}]'
                    if rng.random() < 0.2:
                        dmarc += ', adkim: s'
                    anchor = ''
                    if shared and not anchored:
                        anchor, anchored = f'&dmarc_{brand} ', True
                    w(f'    dmarc: {anchor}{{{dmarc}}}')
                if pool.kind == 'marketing' and rng.random() < 0.3:
                    w(f'    tracking: {{hostname: t.{name}, target: links.tracker-cdn.example}}')
    w('')

    w('isp_profiles:')
    w('  seznam:')
    w('    display_name: Seznam.cz')
    w('    recipient_domains: [seznam.cz, email.cz, post.cz]')
    w('    mx_patterns: [.seznam.cz]')
    w('    limits: {max_connections: 3, messages_per_connection: 20, messages_per_hour: 2000}')
    w('  gmail:')
    w('    limits: {max_connections: 6}')
    w('')
    w('inbound:')
    # a fixed handful of MX hosts: inbound capacity does not grow with the number of sending domains
    w(f'  hosts: [{", ".join(host.name for host in hosts[:4])}]')
    w(f'  fbl_address: fbl@feedback.{CLIENT_ZONE}')  # its own name: an MX at the client's domain takes its mail
    w('  mta_sts: {mode: enforce, max_age: 7d}')
    w(f'  tls_rpt: {{rua: [tls-reports@{CLIENT_ZONE}]}}')
    w('')
    w('bounce_policy:')
    w('  reply_rules:')
    w("    - pattern: '^4\\d\\d .*mailbox (is )?disabled'")
    w('      category: inactive-mailbox')
    w('      action: bounce')
    w('      description: disabled mailboxes answered with 4xx by some small providers')
    w('')
    w('monitoring:')
    w(f'  dnsbl_zones: [{", ".join(_DNSBL)}]')
    w('  dnsbl_interval: 10m')
    w('  queue: {depth_warning: 100000, depth_critical: 1000000, age_warning: 1h, age_critical: 6h}')
    w(f"  smarthost: {{host: 'smtp.ops-relay.example:587', sender: alerts@{CLIENT_ZONE}}}")
    w('  alerts:')
    w(f"    - {{kind: webhook, target: 'https://alerts.{CLIENT_ZONE}/mail'}}")
    w(f'    - {{kind: email, target: deliverability@{CLIENT_ZONE}}}')
    return '\n'.join(out) + '\n'


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--scale', type=int, default=1)
    parser.add_argument('--seed', type=int, default=5737)
    args = parser.parse_args(argv)
    sys.stdout.write(generate(args.scale, args.seed))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
