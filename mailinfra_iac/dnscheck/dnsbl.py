"""``mailinfra dnsbl check`` on the controller: which subjects and zones, then the agent's checker.

The subjects come from the spec (``facts.dnsbl``) and/or are given on the command line; the zones are
the spec's selection (catalogue names and ``custom_zones``), or the catalogue's default set without a
spec. Queries, decoding, zone liveness and metrics are ``mailinfra_agent.dnsbl``'s: the same code the
monitoring host's timer runs, so the operator's CLI and the alerts never disagree.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mailinfra_agent import dnsbl as agent_dnsbl
from mailinfra_agent.contract.secrets import SecretFileError, read_secret_file

from ..catalogue.dnsbl import custom_zone
from ..facts.dnsbl import DnsblSubjects
from ..model import Deployment
from ..model.monitoring import CustomZone
from ..problems import MailinfraError

DQS_KEY_ENV = 'MAILINFRA_DQS_KEY'
# The command prints the checker's warnings itself (report.warnings); no second copy through logging's last resort.
logging.getLogger('mailinfra_agent.dnsbl').addHandler(logging.NullHandler())
DEFAULT_NAMESERVERS = ('127.0.0.1',)


@dataclass(frozen=True)
class DnsblPlan:
    """What one run asks: subjects, zones and resolvers."""

    ips: tuple[str, ...]
    domains: tuple[str, ...]
    zones: tuple[agent_dnsbl.Zone, ...]
    nameservers: tuple[str, ...]
    unresolved: tuple[str, ...] = ()
    """Allocated IPs of the spec without a known address: not checked."""


def _custom(zone: CustomZone) -> agent_dnsbl.Zone:
    try:
        return custom_zone(zone)
    except ValueError as error:
        raise MailinfraError(f'custom zone {zone.zone}: {error}') from None


def select_zones(deployment: Deployment | None, only: Sequence[str] = ()) -> tuple[agent_dnsbl.Zone, ...]:
    """The spec's zones (catalogue selection + custom zones), or the catalogue's defaults; ``only`` restricts.

    A retired or unknown name is a clear error (the spec checks refuse them too).
    """
    catalogue = agent_dnsbl.load_catalogue()
    zones: dict[str, agent_dnsbl.Zone] = {}
    names: Sequence[str] | None = deployment.monitoring.dnsbl_zone_names() if deployment is not None else None
    if names is None:
        zones.update((zone.zone, zone) for zone in catalogue.default_zones())
    custom = {
        agent_dnsbl.zone_key(zone.zone): zone
        for zone in (deployment.monitoring.dnsbl.custom_zones if deployment else [])
    }
    for name in names or ():
        key = agent_dnsbl.zone_key(name)
        if key in custom:
            continue
        zone = catalogue.get(key)
        note = catalogue.refusal(key)
        if note is not None:
            raise MailinfraError(f'DNSBL zone {name} must not be queried: {note}')
        if zone is None:
            raise MailinfraError(
                f'DNSBL zone {name} is not in the catalogue; add it under monitoring.dnsbl.custom_zones'
            )
        zones[zone.zone] = zone
    for key, custom_spec in custom.items():
        zones[key] = _custom(custom_spec)
    if only:
        wanted = [agent_dnsbl.zone_key(name) for name in only]
        for name in wanted:
            if name in zones:
                continue
            note = catalogue.refusal(name)
            if note is not None:
                raise MailinfraError(f'--zone {name}: must not be queried: {note}')
            zone = catalogue.get(name)
            if zone is None:
                known = ', '.join(agent_dnsbl.closest_first(name, [*zones, *(z.zone for z in catalogue.zones)]))
                raise MailinfraError(f'--zone {name}: not in the catalogue nor in the spec; known zones: {known}')
            zones[zone.zone] = zone
        return tuple(zones[name] for name in dict.fromkeys(wanted))
    return tuple(zones[name] for name in sorted(zones))


def plan(
    deployment: Deployment | None,
    subjects: DnsblSubjects | None,
    *,
    ips: Sequence[str] = (),
    domains: Sequence[str] = (),
    zones: Sequence[str] = (),
    nameservers: Sequence[str] = (),
) -> DnsblPlan:
    """Subjects of the spec (if any) plus the ad-hoc ones, deduplicated; zones and resolvers as above."""
    spec_ips = subjects.ips if subjects else ()
    spec_domains = subjects.domains if subjects else ()
    servers = tuple(nameservers) or (
        tuple(deployment.monitoring.dnsbl.nameservers) if deployment is not None else DEFAULT_NAMESERVERS
    )
    return DnsblPlan(
        ips=tuple(dict.fromkeys([*spec_ips, *(ip.strip() for ip in ips)])),
        domains=tuple(dict.fromkeys([*spec_domains, *(d.strip().lower().rstrip('.') for d in domains)])),
        zones=select_zones(deployment, zones),
        nameservers=servers,
        unresolved=subjects.unresolved if subjects else (),
    )


def dqs_key(path: str | None) -> str | None:
    """The Spamhaus DQS key from ``path`` (a 0600 file) or ``$MAILINFRA_DQS_KEY``; never printed."""
    if path is not None:
        try:
            return read_secret_file(path)
        except SecretFileError as error:
            raise MailinfraError(f'DQS key: {error}') from None
    value = os.environ.get(DQS_KEY_ENV, '').strip()
    return value or None


def run(
    planned: DnsblPlan,
    *,
    key: str | None,
    timeout: float,
    concurrency: int,
    progress: Callable[[int, int], None] | None = None,
) -> agent_dnsbl.Report:
    """Check every subject against every zone that applies, through the agent's checker."""
    try:
        subjects = agent_dnsbl.subjects_from(ips=planned.ips, domains=planned.domains)
    except ValueError as error:
        raise MailinfraError(f'bad subject: {error}') from None
    try:
        return agent_dnsbl.check(
            subjects,
            planned.zones,
            list(planned.nameservers),
            concurrency=concurrency,
            timeout=timeout,
            dqs_key=key,
            progress=progress,
        )
    except ValueError as error:  # a nameserver that is not an address
        raise MailinfraError(str(error)) from None


def public_resolver_warnings(nameservers: Sequence[str]) -> tuple[str, ...]:
    """A loud warning for each nameserver that is a well-known public resolver (Spamhaus and others refuse them)."""
    return tuple(agent_dnsbl.public_resolvers_in(list(nameservers)))


def write_textfile(report: agent_dnsbl.Report, path: str) -> None:
    """The run's metrics (BRIEF12 names) written atomically by the agent's writer.

    The CLI keeps no history, so "listed since" is this run's start: the first time this command saw it.
    """
    from mailinfra_agent.dnsbl.metrics import MetricsError
    from mailinfra_agent.dnsbl.metrics import write_textfile as write

    since = {(result.subject, result.zone): int(report.started) for result in report.listed}
    try:
        write(report, path, since)
    except (MetricsError, OSError) as error:
        raise MailinfraError(f'metrics not written: {error}') from None
