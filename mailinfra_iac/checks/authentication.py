"""DKIM, SPF and DMARC checks over what the spec declares."""

from __future__ import annotations

from collections.abc import Iterator

from ..dkim.keys import MAX_RSA_BITS, MIN_RSA_BITS
from ..facts.naming import ed25519_selector, organisation
from ..facts.records import PLACEHOLDER, spf_records
from ..problems import Problem
from ..spf import LOOKUP_TERMS, MAX_ANSWER, MAX_LOOKUPS, MAX_VOID_LOOKUPS
from .base import Check, CheckContext


def dkim_key_size(ctx: CheckContext) -> Iterator[Problem]:
    for index, domain in enumerate(ctx.deployment.sending_domains):
        bits = domain.dkim.rsa_bits
        if not MIN_RSA_BITS <= bits <= MAX_RSA_BITS:
            yield ctx.problem(
                'dkim-key-size',
                f'RSA key of {bits} bits for {domain.domain}: RFC 8301 asks signers for at least {MIN_RSA_BITS}, '
                f'and verifiers need not handle more than {MAX_RSA_BITS}',
                ('sending_domains', index, 'dkim', 'rsa_bits'),
                expected=f'{MIN_RSA_BITS} to {MAX_RSA_BITS}',
                value=bits,
            )


def dkim_selector_reused(ctx: CheckContext) -> Iterator[Problem]:
    for index, domain in enumerate(ctx.deployment.sending_domains):
        seen: dict[str, str] = {}
        for position, selector in enumerate(domain.dkim.selectors):
            names = [(selector, 'RSA')]
            if domain.dkim.algorithm == 'rsa+ed25519':
                names.append((ed25519_selector(selector), 'Ed25519'))
            for name, kind in names:
                if name in seen:
                    yield ctx.problem(
                        'dkim-selector-reused',
                        f'selector "{name}" of {domain.domain} would name two keys ({seen[name]} and {kind})',
                        ('sending_domains', index, 'dkim', 'selectors', position),
                        expected='one key per selector; name a new key after its period, e.g. "s2027q1"',
                        value=selector,
                    )
                else:
                    seen[name] = f'{kind} key of "{selector}"'


def spf_cost(ctx: CheckContext, index: int) -> tuple[int, int]:
    spf = ctx.deployment.sending_domains[index].spf
    lookups = sum(item.lookups for item in spf.includes)
    for mechanism in spf.mechanisms:
        name = mechanism.lstrip('+-~?').split(':')[0].split('/')[0].lower()
        lookups += name in LOOKUP_TERMS
    return lookups, sum(item.void_lookups for item in spf.includes)


def spf_lookups(ctx: CheckContext) -> Iterator[Problem]:
    for index, domain in enumerate(ctx.deployment.sending_domains):
        lookups, _voids = spf_cost(ctx, index)
        if lookups > MAX_LOOKUPS:
            yield ctx.problem(
                'spf-too-many-lookups',
                f'SPF of {domain.domain} needs {lookups} DNS lookups; receivers return permerror above '
                f'{MAX_LOOKUPS} (RFC 7208 section 4.6.4)',
                ('sending_domains', index, 'spf'),
                expected=f'at most {MAX_LOOKUPS} lookups: drop includes or use ip4: ranges',
                value=lookups,
            )


def spf_void_lookups(ctx: CheckContext) -> Iterator[Problem]:
    for index, domain in enumerate(ctx.deployment.sending_domains):
        _, voids = spf_cost(ctx, index)
        if voids > MAX_VOID_LOOKUPS:
            yield ctx.problem(
                'spf-too-many-void-lookups',
                f'SPF of {domain.domain} has {voids} void lookups; receivers return permerror above {MAX_VOID_LOOKUPS}',
                ('sending_domains', index, 'spf', 'includes'),
                expected=f'at most {MAX_VOID_LOOKUPS} void lookups',
                value=voids,
            )


def spf_record_size(ctx: CheckContext) -> Iterator[Problem]:
    """An SPF answer over 512 bytes needs TCP or EDNS, and some verifiers fail it (checkdmarc warns too)."""
    reported: set[int] = set()
    for index, name, value in spf_records(ctx.deployment, ctx.facts):
        longest = PLACEHOLDER.sub('255.255.255.255', value)  # an address Terraform allocates, at its longest
        size = len(name) + len(longest.encode())
        if size <= MAX_ANSWER or index in reported:
            continue
        reported.add(index)
        addresses = longest.count('ip4:')
        takes = f'takes up to {size} bytes' if PLACEHOLDER.search(value) else f'takes {size} bytes'
        yield ctx.problem(
            'spf-record-size',
            f'the SPF record of {name} {takes} with its name ({addresses} ip4: terms); RFC 7208 section 3.4 '
            f'asks for at most {MAX_ANSWER} so that the answer fits in a 512-byte UDP message: over it, verifiers '
            'without EDNS retry over TCP or fail the check',
            ('sending_domains', index, 'spf'),
            severity='warning',
            expected=f'at most {MAX_ANSWER} bytes: contiguous sending addresses (they collapse into one ip4:CIDR '
            'term), fewer streams or mechanisms per domain, or an include: of a record of its own',
            value=size,
        )


def dmarc_missing_rua(ctx: CheckContext) -> Iterator[Problem]:
    for index, domain in enumerate(ctx.deployment.sending_domains):
        if not domain.dmarc.rua:
            yield ctx.problem(
                'dmarc-missing-rua',
                f'DMARC of {domain.domain} has no aggregate-report address: without rua nobody sees who sends '
                'as the domain or whether authentication passes',
                ('sending_domains', index, 'dmarc'),
                expected='"rua" with at least one address, e.g. dmarc-reports@' + domain.domain,
            )


def dmarc_external_rua(ctx: CheckContext) -> Iterator[Problem]:
    client_domains = set(ctx.deployment.client.domains)
    managed = [zone.name for zone in ctx.deployment.dns.zones if not zone.name.endswith('.arpa')]  # no TXT there
    for index, domain in enumerate(ctx.deployment.sending_domains):
        own = organisation(domain.domain, client_domains)
        for field in ('rua', 'ruf'):
            for position, address in enumerate(getattr(domain.dmarc, field)):
                target = address.rpartition('@')[2]
                if organisation(target, client_domains) == own:
                    continue
                record = f'{domain.domain}._report._dmarc.{target}'
                controlled = any(target == zone or target.endswith('.' + zone) for zone in managed)
                yield ctx.problem(
                    'dmarc-external-rua',
                    f'{field} {address} is on another domain: receivers send reports there only if '
                    f'{record} publishes "v=DMARC1"'
                    + ('; this deployment publishes it' if controlled else '; the owner of ' + target + ' must'),
                    ('sending_domains', index, 'dmarc', field, position),
                    severity='advice' if controlled else 'warning',
                    expected=f'TXT {record} "v=DMARC1"',
                    value=address,
                    record=record,
                )


CHECKS = (
    Check('dkim-key-size', 'error', 'RSA DKIM keys of 2048 to 4096 bits.', dkim_key_size),
    Check('dkim-selector-reused', 'error', 'A selector that would name two keys.', dkim_selector_reused),
    Check('spf-too-many-lookups', 'error', 'SPF over 10 DNS lookups.', spf_lookups),
    Check('spf-too-many-void-lookups', 'error', 'SPF over 2 void lookups.', spf_void_lookups),
    Check('spf-record-size', 'warning', 'SPF answers that fit in 512 bytes over UDP.', spf_record_size),
    Check('dmarc-missing-rua', 'error', 'DMARC without aggregate reports.', dmarc_missing_rua),
    Check('dmarc-external-rua', 'warning', 'Report addresses on another domain.', dmarc_external_rua),
)
