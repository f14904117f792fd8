"""Who is watched and where: scrape and probe targets from the spec's hosts, streams and MX hosts."""

from __future__ import annotations

from dataclasses import dataclass

from ...facts.hosts import BLACKBOX_PORT, hosts_with_role, inbound_hosts
from ..base import RenderContext

AGENT_EXPORTER_PORT = 9745
SMTP_PORT = 25
BLACKBOX_ADDRESS = f'127.0.0.1:{BLACKBOX_PORT}'
"""Probes go through the blackbox exporter on the monitoring host itself."""

DNSBL_TEXTFILE = 'mailinfra_dnsbl.prom'
DNS_DRIFT_TEXTFILE = 'mailinfra_dns.prom'
DNS_DRIFT_INTERVAL = 3600
"""Seconds between two runs of the ``dns-drift`` timer on the monitoring host (roles/prometheus)."""


def target_address(context: RenderContext, host: str) -> str:
    """The management address of a host if the spec sets one, else its fqdn."""
    spec = context.deployment.hosts[host]
    return spec.address if spec.address is not None else spec.fqdn


def mta_hosts(context: RenderContext) -> list[str]:
    return hosts_with_role(context.deployment, 'mta')


def monitoring_hosts(context: RenderContext) -> list[str]:
    return hosts_with_role(context.deployment, 'monitoring')


@dataclass(frozen=True)
class Listener:
    """A TCP listener to probe: an MX (port 25) or a stream's injection listener."""

    host: str
    address: str
    port: int
    kind: str
    """``mx`` or ``injection``."""
    stream: str = ''
    starttls: bool = True
    """Whether it offers STARTTLS: a PowerMTA injection listener (and the suppression gate in its place) does not."""

    @property
    def target(self) -> str:
        return f'{self.address}:{self.port}'


def listeners(context: RenderContext) -> list[Listener]:
    """Every MX and injection listener, by host then port (an MX host is listed once however many domains)."""
    found: dict[tuple[str, int], Listener] = {}
    for host in inbound_hosts(context.deployment):
        if host in context.deployment.hosts:
            found[(host, SMTP_PORT)] = Listener(host, target_address(context, host), SMTP_PORT, 'mx')
    for stream in sorted(context.facts.streams.values(), key=lambda stream: stream.name):
        for host in stream.hosts:
            key = (host, stream.injection.port)
            if key not in found:
                starttls = context.facts.runs_postfix(host)
                found[key] = Listener(
                    host, target_address(context, host), stream.injection.port, 'injection', stream.name, starttls
                )
    return [found[key] for key in sorted(found)]
