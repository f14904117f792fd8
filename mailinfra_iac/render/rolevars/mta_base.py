"""``mta_base__*``: host name, sending IPs, firewall openings and loopback guards for the base role."""

from __future__ import annotations

from typing import Any

from ...facts import StreamFact
from ...facts.hosts import inbound_hosts
from ..base import RenderContext
from .powermta import gate_upstream, has_gate

SMTP_PORT = 25


def _firewall(context: RenderContext, host: str, streams: list[StreamFact]) -> list[dict[str, Any]]:
    rules = []
    for stream in streams:
        rules.append(
            {
                'name': f'inject-{stream.name}',
                'port': stream.injection.port,
                'proto': 'tcp',
                'sources': list(stream.injection.networks),
            }
        )
    inbound = inbound_hosts(context.deployment)
    if host in inbound:
        rules.append({'name': 'smtp-inbound', 'port': SMTP_PORT, 'proto': 'tcp', 'sources': []})
    return rules


GATE_GUARD = 'powermta-gate-upstream'


def _loopback_guards(context: RenderContext, host: str) -> dict[str, Any]:
    """With the suppression gate, PowerMTA's loopback listener is for the gate's user alone (the role's default
    users, the agent's): another local process could relay through it without the suppression check."""
    if not has_gate(context, host):
        return {}
    address, port = gate_upstream(context, host)
    return {'mta_base__firewall_loopback_guards': [{'name': GATE_GUARD, 'address': address, 'port': port}]}


class MtaBaseVars:
    """Variables of roles/mta_base."""

    name = 'mta_base'

    def group_vars(self, context: RenderContext) -> dict[str, Any]:
        return {}

    def host_vars(self, context: RenderContext, host: str) -> dict[str, Any]:
        spec_host = context.deployment.hosts[host]
        return {
            'mta_base__hostname': spec_host.fqdn,
            'mta_base__mailname': spec_host.fqdn,
            'mta_base__sending_ips': [
                {'address': context.address_of(ip.id, ip.address), 'prefix': 32, 'ptr': ip.ptr, 'id': ip.id}
                for ip in context.facts.ips_of_host(host)
            ],
            'mta_base__firewall_rules': _firewall(context, host, context.facts.streams_of_host(host)),
            **_loopback_guards(context, host),
        }
