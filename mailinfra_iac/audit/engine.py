"""Judge a deployment against the bulk-sender requirements: DNS as served (the ``dns check`` results), the rendered
MTA configuration, and the spec.

Each finding is one requirement on one subject (a From domain, a sending IP, an MTA instance, a stream) with a
status, the reason, the sources of the requirement and the fix. Statuses: ``pass``; ``fail``; ``unchecked`` (a DNS
check it rests on could not run); ``not measurable`` (no data can show it yet: the spam rate, until Postmaster
Tools data is ingested); ``not applicable`` (one-click unsubscribe on a transactional stream).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..dnscheck import dmarc
from ..dnscheck.results import CheckResult
from ..dnscheck.runner import DnsCheckReport, Spec
from ..facts.naming import ed25519_selector, organisation
from ..model import SendingDomain
from .rendered import postfix_tls, powermta_tls, signing_domains, suppression_enforced
from .requirements import BULK_PER_DAY, DAYS_PER_MONTH, REQUIREMENTS, SOURCES

Status = Literal['pass', 'fail', 'unchecked', 'not measurable', 'not applicable']
STATUSES: tuple[Status, ...] = ('pass', 'fail', 'unchecked', 'not measurable', 'not applicable')

PROMOTIONAL_KINDS = ('marketing', 'cold_outreach')
"""Stream kinds that send marketing mail (one-click unsubscribe required); transactional mail is exempt and a
custom stream is judged as marketing only when its kind says so."""

SPF_CHECKS = ('spf-present', 'spf-authorises-ips', 'spf-lookups')
DKIM_CHECKS = ('dkim-present', 'dkim-key-matches', 'dkim-key-size', 'dkim-not-revoked')
DMARC_CHECKS = ('dmarc-present', 'dmarc-policy')


@dataclass(frozen=True)
class Finding:
    requirement: str
    subject: str
    status: Status
    reason: str
    fix: str = ''
    """What to do; empty when there is nothing to do (a pass, not applicable)."""

    @property
    def sources(self) -> list[str]:
        return [f'{SOURCES[key].title} <{SOURCES[key].url}>' for key in REQUIREMENTS[self.requirement].sources]

    def as_dict(self) -> dict[str, Any]:
        return {
            'requirement': self.requirement,
            'title': REQUIREMENTS[self.requirement].title,
            'subject': self.subject,
            'status': self.status,
            'reason': self.reason,
            'fix': self.fix,
            'sources': [{'title': SOURCES[key].title, 'url': SOURCES[key].url} for key in self._source_keys],
        }

    @property
    def _source_keys(self) -> tuple[str, ...]:
        return REQUIREMENTS[self.requirement].sources


@dataclass(frozen=True)
class Volume:
    """Daily volume of one primary (organisational) domain: the bulk-sender threshold counts per primary domain."""

    domain: str
    per_day: int
    streams: tuple[str, ...]
    by_provider: tuple[tuple[str, int], ...] = ()
    """Estimated mails a day to the providers that publish the threshold (gmail, microsoft), from each stream's
    recipient mix (``recipient_mix``, else the catalogue's ``default_share``)."""

    @property
    def bulk(self) -> bool:
        """The whole volume reaches the threshold: an upper bound (Gmail counts mail to its own users only, Yahoo
        gives no number), so the audit errs towards applying the requirements."""
        return self.per_day >= BULK_PER_DAY

    def as_dict(self) -> dict[str, Any]:
        return {
            'domain': self.domain,
            'per_day': self.per_day,
            'streams': list(self.streams),
            'bulk': self.bulk,
            'by_provider': dict(self.by_provider),
        }


@dataclass(frozen=True)
class AuditReport:
    findings: list[Finding]
    volumes: list[Volume]
    allow_unchecked: bool = False

    @property
    def failed(self) -> bool:
        return any(finding.status == 'fail' for finding in self.findings)

    @property
    def incomplete(self) -> bool:
        return not self.allow_unchecked and any(finding.status == 'unchecked' for finding in self.findings)

    def summary(self) -> dict[str, int]:
        counts: dict[str, int] = dict.fromkeys(STATUSES, 0)
        for finding in self.findings:
            counts[finding.status] += 1
        return counts


def _judge(results: list[CheckResult], what: str, servers: int) -> tuple[Status, str]:
    """One status from the DNS check results a requirement rests on: any fail fails, any unchecked is unchecked."""

    def shown(result: CheckResult) -> str:
        where = f' at {result.server}' if servers > 1 and result.server else ''
        return f'{result.check} {result.subject}{where}: {result.reason}'

    failed = [shown(result) for result in results if result.status == 'fail']
    if failed:
        return 'fail', '; '.join(failed)
    unchecked = [shown(result) for result in results if result.status == 'unchecked']
    if unchecked:
        return 'unchecked', '; '.join(unchecked)
    judged = [result for result in results if result.status in ('pass', 'warn')]
    if not judged:
        return 'unchecked', f'no DNS check result for {what}'
    warnings = [shown(result) for result in judged if result.status == 'warn']
    if len(judged) == 1 and not warnings:
        return 'pass', f'{what}: {judged[0].reason}'
    return 'pass', f'{what}: ' + ', '.join(sorted({result.check for result in judged})) + ' pass' + (
        f' (warnings: {"; ".join(warnings)})' if warnings else ''
    )


def _fix(requirement: str, status: Status) -> str:
    return REQUIREMENTS[requirement].fix if status in ('fail', 'unchecked') else ''


def _pick(results: list[CheckResult], checks: Iterable[str], subjects: Iterable[str]) -> list[CheckResult]:
    wanted, names = set(checks), set(subjects)
    return [result for result in results if result.check in wanted and result.subject in names]


def _used_domains(spec: Spec) -> list[SendingDomain]:
    """Sending domains some stream sends From, in spec order."""
    used = {domain for stream in spec.facts.streams.values() for domain in stream.domains}
    return [domain for domain in spec.deployment.sending_domains if domain.domain in used]


THRESHOLD_PROVIDERS = ('gmail', 'microsoft')
"""Catalogue providers whose requirements name the 5,000-a-day threshold."""


def volumes(spec: Spec) -> list[Volume]:
    """Daily volume per primary domain (streams' monthly volume / 30; a stream counts for each of its domains)."""
    client = spec.deployment.client.domains
    found: dict[str, tuple[int, list[str], dict[str, float]]] = {}
    for stream in spec.facts.streams.values():
        primaries = sorted({organisation(domain, client) for domain in stream.domains})
        for primary in primaries:
            total, streams, providers = found.get(primary, (0, [], dict.fromkeys(THRESHOLD_PROVIDERS, 0.0)))
            for name in THRESHOLD_PROVIDERS:
                isp = stream.isps.get(name)
                providers[name] += stream.volume.monthly * (isp.share if isp is not None else 0.0)
            found[primary] = (total + stream.volume.monthly, [*streams, stream.name], providers)
    return [
        Volume(
            domain,
            round(monthly / DAYS_PER_MONTH),
            tuple(streams),
            tuple((name, round(value / DAYS_PER_MONTH)) for name, value in providers.items()),
        )
        for domain, (monthly, streams, providers) in sorted(found.items())
    ]


def _authentication(spec: Spec, dns: DnsCheckReport, files: Mapping[str, bytes | str]) -> list[Finding]:
    results, servers = dns.results, len(dns.servers)
    client = spec.deployment.client.domains
    signers = signing_domains(files)
    findings = []
    for domain in _used_domains(spec):
        name, bounce = domain.domain, domain.bounce_domain
        status, reason = _judge(_pick(results, SPF_CHECKS, [bounce]), f'return-path {bounce}', servers)
        findings.append(Finding('spf', name, status, reason, _fix('spf', status)))
        spf_ok = status == 'pass'

        selector = domain.dkim.selectors[0]
        selectors = [selector] + ([ed25519_selector(selector)] if domain.dkim.algorithm == 'rsa+ed25519' else [])
        records = [f'{item}._domainkey.{name}' for item in selectors]
        signed_by = sorted(signers.get(name, set()))
        status, reason = _judge(_pick(results, DKIM_CHECKS, records), 'signing key ' + ', '.join(records), servers)
        if not signed_by:
            status, reason = 'fail', f'no rendered MTA configuration signs mail From {name}; {reason}'
        else:
            reason += f'; the MTA signs with d={", ".join(signed_by)}'
        findings.append(Finding('dkim', name, status, reason, _fix('dkim', status)))
        dkim_ok = status == 'pass'

        findings.append(_dmarc(name, _pick(results, DMARC_CHECKS, [f'_dmarc.{name}']), servers))

        findings.append(_alignment(domain, signed_by, spf_ok, dkim_ok, client))
    return findings


def _dmarc(name: str, results: list[CheckResult], servers: int) -> Finding:
    """p=none or stricter as served: ``dmarc-present`` must pass (its reason is the served record); a policy that
    differs from the spec's (``dmarc-policy`` fails) still meets the requirement and is only noted."""
    present = [result for result in results if result.check == 'dmarc-present']
    status, reason = _judge(present, f'_dmarc.{name}', servers)
    if status != 'pass':
        return Finding('dmarc', name, status, reason, _fix('dmarc', status))
    policies = []
    for result in present:
        try:
            policies.append(dmarc.parse(result.reason).get('p', '').lower())
        except dmarc.DmarcSyntaxError:
            policies.append('')
    weak = [policy or '(none)' for policy in policies if policy not in dmarc.POLICIES]
    if weak:
        return Finding(
            'dmarc',
            name,
            'fail',
            f'_dmarc.{name}: p={", ".join(weak)} is not none, quarantine or reject',
            REQUIREMENTS['dmarc'].fix,
        )
    noted = [result.reason for result in results if result.check == 'dmarc-policy' and result.status == 'fail']
    reason = f'_dmarc.{name}: p={", ".join(sorted(set(policies)))}' + (
        f' (differs from the spec, which `mailinfra dns check` fails: {"; ".join(noted)})' if noted else ''
    )
    return Finding('dmarc', name, 'pass', reason)


def _aligned(one: str, other: str, mode: str, client: Collection[str]) -> bool:
    if mode == 's':
        return one == other
    return organisation(one, client) == organisation(other, client)


def _alignment(
    domain: SendingDomain, signed_by: list[str], spf_ok: bool, dkim_ok: bool, client: Collection[str]
) -> Finding:
    name, bounce, policy = domain.domain, domain.bounce_domain, domain.dmarc
    dkim_aligned = [signer for signer in signed_by if _aligned(signer, name, policy.adkim, client)]
    spf_aligned = _aligned(bounce, name, policy.aspf, client)
    modes = f'adkim={policy.adkim}, aspf={policy.aspf}'
    parts = [
        f'DKIM d={", ".join(dkim_aligned)} aligned' + ('' if dkim_ok else ' but DKIM does not pass')
        if dkim_aligned
        else f'DKIM not aligned (signed with {", ".join(signed_by) or "nothing"})',
        f'SPF return-path {bounce} aligned' + ('' if spf_ok else ' but SPF does not pass')
        if spf_aligned
        else f'SPF return-path {bounce} not aligned',
    ]
    reason = f'{"; ".join(parts)} ({modes})'
    if (dkim_aligned and dkim_ok) or (spf_aligned and spf_ok):
        return Finding('dmarc-alignment', name, 'pass', reason)
    if dkim_aligned or spf_aligned:  # aligned, but the mechanism itself failed or was not checked
        return Finding('dmarc-alignment', name, 'fail', reason, 'fix the failing SPF/DKIM findings above')
    return Finding('dmarc-alignment', name, 'fail', reason, REQUIREMENTS['dmarc-alignment'].fix)


def _fcrdns(dns: DnsCheckReport) -> list[Finding]:
    findings = []
    by_subject: dict[str, list[CheckResult]] = {}
    for result in dns.results:
        if result.check == 'fcrdns':
            by_subject.setdefault(result.subject, []).append(result)
    for subject, results in by_subject.items():
        status, reason = _judge(results, 'PTR', len(dns.servers))
        findings.append(Finding('fcrdns', subject, status, reason, _fix('fcrdns', status)))
    if not by_subject:
        findings.append(Finding('fcrdns', 'sending IPs', 'unchecked', 'no FCrDNS result', _fix('fcrdns', 'unchecked')))
    return findings


def _tls(files: Mapping[str, bytes | str]) -> list[Finding]:
    judged = postfix_tls(files) + powermta_tls(files)
    findings = [
        Finding(
            'tls', item.subject, 'pass' if item.ok else 'fail', item.reason, '' if item.ok else REQUIREMENTS['tls'].fix
        )
        for item in judged
    ]
    if not judged:
        findings.append(
            Finding(
                'tls',
                'MTA configuration',
                'fail',
                'no rendered Postfix instance or PowerMTA configuration found',
                REQUIREMENTS['tls'].fix,
            )
        )
    return findings


def _unsubscribe(spec: Spec, files: Mapping[str, bytes | str]) -> list[Finding]:
    """Promotional streams: the one-click endpoint is configured, and unsubscribes are honoured: the stream's
    Postfix instances (or the suppression gate in front of PowerMTA) refuse suppressed recipients at injection, or
    the application learns of them from the suppression webhook."""
    endpoint = spec.deployment.feedback.unsubscribe
    webhook = spec.deployment.feedback.webhook
    enforced = suppression_enforced(files)
    fix = REQUIREMENTS['one-click-unsubscribe'].fix
    findings = []
    for stream in spec.facts.streams.values():
        subject = f'stream {stream.name}'
        if stream.kind not in PROMOTIONAL_KINDS:
            exempt = f'{stream.kind} stream: exempt'
            findings.append(Finding('one-click-unsubscribe', subject, 'not applicable', exempt))
            continue
        if endpoint is None:
            reason = f'{stream.kind} stream and no one-click endpoint: feedback.unsubscribe is not configured'
            findings.append(Finding('one-click-unsubscribe', subject, 'fail', reason, fix))
            continue
        url = f'https://{endpoint.hostname}' + ('' if endpoint.port == 443 else f':{endpoint.port}') + '/u/<token>'
        reason = f'{stream.kind} stream; one-click endpoint {url} on the inbound hosts (the application adds headers)'
        hosts = enforced.get(stream.name)
        if hosts:
            reason += f'; suppressed recipients are refused at injection on {", ".join(hosts)}'
            findings.append(Finding('one-click-unsubscribe', subject, 'pass', reason))
        elif webhook is not None:
            reason += '; no MTA instance refuses suppressed recipients: the application drops them (feedback.webhook)'
            findings.append(Finding('one-click-unsubscribe', subject, 'pass', reason))
        else:
            reason += (
                '; but nothing honours an unsubscribe: no MTA instance of the stream refuses suppressed recipients '
                '(PowerMTA only behind feedback.suppression.powermta_gate, docs/powermta.md) and no '
                'feedback.webhook tells the application'
            )
            findings.append(
                Finding(
                    'one-click-unsubscribe',
                    subject,
                    'fail',
                    reason,
                    'configure feedback.webhook so the application drops suppressed recipients within 2 days',
                )
            )
    return findings


def _spam_rate(spec: Spec) -> list[Finding]:
    return [
        Finding(
            'spam-rate',
            domain.domain,
            'not measurable',
            'Gmail sends no complaint reports: its user-reported spam rate is only in Postmaster Tools, whose data '
            'is not ingested yet; feedback-loop complaints (Yahoo, Microsoft) are not the rate Gmail judges',
            REQUIREMENTS['spam-rate'].fix,
        )
        for domain in _used_domains(spec)
    ]


def audit(
    spec: Spec, dns: DnsCheckReport, files: Mapping[str, bytes | str], *, allow_unchecked: bool | None = None
) -> AuditReport:
    """Every finding, in requirement order. ``files``: the rendered ``mta/`` tree (relative path -> content)."""
    findings = [
        *_authentication(spec, dns, files),
        *_fcrdns(dns),
        *_tls(files),
        *_unsubscribe(spec, files),
        *_spam_rate(spec),
    ]
    order = {requirement: index for index, requirement in enumerate(REQUIREMENTS)}
    findings.sort(key=lambda finding: order[finding.requirement])  # stable: subjects keep their spec order
    return AuditReport(findings, volumes(spec), dns.allow_unchecked if allow_unchecked is None else allow_unchecked)
