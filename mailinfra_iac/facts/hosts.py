"""Hosts by role: which machines run an MTA, receive mail, monitor, hold the shared store or serve DNS."""

from __future__ import annotations

from mailinfra_agent.contract import DEFAULT_EXPORTER_PORT

from ..model import Deployment
from ..model.infrastructure import HOST_ROLES, HostRole


def hosts_with_role(deployment: Deployment, role: HostRole) -> list[str]:
    """Names of the hosts that have ``role``, in spec order."""
    return [name for name, host in deployment.hosts.items() if role in host.roles]


def role_hosts(deployment: Deployment) -> dict[HostRole, list[str]]:
    """Every role (in ``HOST_ROLES`` order) -> its hosts in spec order; roles without hosts are left out."""
    hosts = {role: hosts_with_role(deployment, role) for role in HOST_ROLES}
    return {role: names for role, names in hosts.items() if names}


def inbound_hosts(deployment: Deployment) -> list[str]:
    """The MX hosts of the return-path domains: ``inbound.hosts`` as written, else every MTA host."""
    return list(deployment.inbound.hosts) or hosts_with_role(deployment, 'mta')


def database_host(deployment: Deployment) -> str | None:
    """The host of the shared PostgreSQL store, or None: each host then keeps a local SQLite store.

    Checks allow one database host at most (``database-host-count``); with several, this is the first.
    """
    hosts = hosts_with_role(deployment, 'database')
    return hosts[0] if hosts else None


NODE_EXPORTER_PORT = 9100
"""node_exporter, which roles/monitoring runs on every MTA host."""
PROMETHEUS_PORT = 9090
ALERTMANAGER_PORT = 9093
BLACKBOX_PORT = 9115
SSH_PORT = 22
"""Ansible and the operators reach every host over SSH."""
POWERMTA_MGMT_PORT = 8080
"""PowerMTA's web monitor and HTTP API (``http-mgmt-port``, roles/powermta's default; rolevars/powermta.py sets it)."""
UNBOUND_PORT = 53
"""The resolver roles/prometheus installs on a monitoring host (``prometheus__unbound_enabled``, on by default)."""


def reserved_ports(deployment: Deployment, host: str, mta: str | None = None) -> dict[int, str]:
    """Ports of ``host`` (whose MTA is ``mta``) that its own services hold (an injection listener would not start)."""
    ports = {
        SSH_PORT: 'SSH (Ansible reaches the host through it)',
        NODE_EXPORTER_PORT: 'node_exporter',
        DEFAULT_EXPORTER_PORT: 'the queue exporter',
    }
    if host in inbound_hosts(deployment):
        ports[25] = 'the bounce MX (SMTP)'
    if host in hosts_with_role(deployment, 'monitoring'):
        ports |= {PROMETHEUS_PORT: 'Prometheus', ALERTMANAGER_PORT: 'Alertmanager', BLACKBOX_PORT: 'blackbox'}
        ports[UNBOUND_PORT] = 'unbound (the blocklist resolver)'
    if mta == 'powermta':
        ports[POWERMTA_MGMT_PORT] = "PowerMTA's web monitor (http-mgmt-port)"
    return ports


GATE_UPSTREAM_PORT = 10025
"""First candidate for PowerMTA's loopback listener behind the suppression gate."""


def known_ports(deployment: Deployment, host: str, stream_ports: list[int]) -> set[int]:
    """Ports mailinfra already uses on ``host``: its streams' injection ports, the queue exporter, and on an inbound
    host the bounce MX (25) and the unsubscribe endpoint."""
    ports = {*stream_ports, DEFAULT_EXPORTER_PORT}
    if host in inbound_hosts(deployment):
        ports.add(25)
        if deployment.feedback.unsubscribe is not None:
            ports.add(deployment.feedback.unsubscribe.port)
    return ports


def gate_upstream_port(deployment: Deployment, host: str, stream_ports: list[int]) -> int:
    """PowerMTA's loopback port behind the suppression gate: the first from ``GATE_UPSTREAM_PORT`` that no known
    port of the host (:func:`known_ports`) takes."""
    taken = known_ports(deployment, host, stream_ports)
    return next(port for port in range(GATE_UPSTREAM_PORT, 65536) if port not in taken)
