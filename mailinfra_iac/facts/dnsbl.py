"""What the blocklist monitor checks: every sending IP and every domain a receiver or a URIBL sees.

Domains are lower-cased and deduplicated here; reducing them to the registered domain is the agent's
job at query time (it has the public-suffix list). Allocated addresses are unknown until Terraform
has run: they are listed by id in ``unresolved`` unless ``addresses`` (Terraform outputs) names them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from ..model import Deployment
from . import Facts


@dataclass(frozen=True)
class DnsblSubjects:
    """Sorted, deduplicated subjects of the blocklist checks."""

    ips: tuple[str, ...]
    """Every known sending address (IPv4 before IPv6, numeric order)."""
    domains: tuple[str, ...]
    """From domains, return-path (bounce) domains, tracking and unsubscribe host names and
    ``monitoring.dnsbl.link_domains``."""
    unresolved: tuple[str, ...] = ()
    """Ids of sending IPs whose address the provider allocates and nobody has told us yet."""


def _domain(name: str) -> str:
    return name.strip().rstrip('.').lower()


def dnsbl_subjects(deployment: Deployment, facts: Facts, addresses: Mapping[str, str] | None = None) -> DnsblSubjects:
    """The subjects of ``deployment``; ``addresses`` maps allocated IP ids to their addresses (Terraform outputs)."""
    known = addresses or {}
    ips: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
    unresolved: set[str] = set()
    for ip in facts.ips:
        address = ip.address or known.get(ip.id)
        if address is None:
            unresolved.add(ip.id)
        else:
            ips.add(ipaddress.ip_address(address))
    domains: set[str] = set()
    for sending in deployment.sending_domains:
        domains.add(_domain(sending.domain))
        domains.add(_domain(sending.bounce_domain))
        if sending.tracking is not None:
            domains.add(_domain(sending.tracking.hostname))
    for stream in facts.streams.values():
        domains.update(_domain(name) for name in stream.domains)
    if deployment.feedback.unsubscribe is not None:  # a link in every message, like the tracking host
        domains.add(_domain(deployment.feedback.unsubscribe.hostname))
    domains.update(_domain(name) for name in deployment.monitoring.dnsbl.link_domains)
    domains.discard('')
    return DnsblSubjects(
        ips=tuple(str(a) for a in sorted(ips, key=lambda a: (a.version, int(a)))),
        domains=tuple(sorted(domains)),
        unresolved=tuple(sorted(unresolved)),
    )
