"""Host roles: what only MTA hosts have, and which roles a deployment needs and how often (see ``Host``)."""

from __future__ import annotations

from collections.abc import Iterator

from ..facts.hosts import hosts_with_role, inbound_hosts
from ..model import Host
from ..model.infrastructure import HostRole
from ..problems import Path, Problem
from .base import Check, CheckContext


def _role_path(name: str, host: Host, role: HostRole) -> Path:
    """Where a host's role is written: its entry in ``roles``, or the host itself when ``roles`` is the default."""
    if 'roles' in host.model_fields_set and role in host.roles:
        return ('hosts', name, 'roles', host.roles.index(role))
    return ('hosts', name)


def host_role_settings(ctx: CheckContext) -> Iterator[Problem]:
    for name, host in ctx.deployment.hosts.items():
        if 'mta' in host.roles:
            continue
        roles = ', '.join(host.roles)
        if host.pools:
            yield ctx.problem(
                'host-role-settings',
                f'host "{name}" ({roles}) has no "mta" role, so it cannot send from pools {", ".join(host.pools)}',
                ('hosts', name, 'pools'),
                expected='no "pools", or "mta" among the roles',
                value=list(host.pools),
            )
        if host.mta is not None:
            yield ctx.problem(
                'host-role-settings',
                f'host "{name}" ({roles}) has no "mta" role, so it runs no {host.mta}',
                ('hosts', name, 'mta'),
                expected='no "mta", or "mta" among the roles',
                value=host.mta,
            )


def inbound_host_role(ctx: CheckContext) -> Iterator[Problem]:
    hosts = ctx.deployment.hosts
    mta_hosts = hosts_with_role(ctx.deployment, 'mta')
    for index, name in enumerate(ctx.deployment.inbound.hosts):
        if name in hosts and 'mta' not in hosts[name].roles:
            yield ctx.problem(
                'inbound-host-role',
                f'inbound host "{name}" has no "mta" role: the MX for the return-path domains runs on an MTA host',
                ('inbound', 'hosts', index),
                expected=f'one of: {", ".join(mta_hosts)}' if mta_hosts else 'a host with the "mta" role',
                value=name,
            )


def idle_mta_host(ctx: CheckContext) -> Iterator[Problem]:
    receiving = set(inbound_hosts(ctx.deployment))
    for name, host in ctx.deployment.hosts.items():
        if 'mta' in host.roles and not host.pools and name not in receiving:
            yield ctx.problem(
                'idle-mta-host',
                f'host "{name}" has the "mta" role but serves no pool and is not an inbound host: its MTA has no work',
                _role_path(name, host, 'mta'),
                severity='warning',
                expected='"pools" for the host, the host in "inbound.hosts", or roles without "mta"',
            )


def database_host_count(ctx: CheckContext) -> Iterator[Problem]:
    hosts = hosts_with_role(ctx.deployment, 'database')
    for name in hosts[1:]:
        yield ctx.problem(
            'database-host-count',
            f'host "{name}" is a second database host: the host services share one store, on "{hosts[0]}"',
            _role_path(name, ctx.deployment.hosts[name], 'database'),
            expected='the "database" role on one host only',
            value='database',
        )


def monitoring_host_missing(ctx: CheckContext) -> Iterator[Problem]:
    alerts = ctx.deployment.monitoring.alerts
    if alerts and not hosts_with_role(ctx.deployment, 'monitoring'):
        yield ctx.problem(
            'monitoring-host-missing',
            f'{len(alerts)} alert destination(s) but no host has the "monitoring" role: Alertmanager, which '
            'delivers alerts, runs on a monitoring host',
            ('monitoring', 'alerts'),
            severity='warning',
            expected='"monitoring" among the roles of a host (an MTA host can carry it)',
        )


def dns_host_unused(ctx: CheckContext) -> Iterator[Problem]:
    served = {nameserver for zone in ctx.deployment.dns.zones for nameserver in zone.nameservers}
    for name, host in ctx.deployment.hosts.items():
        if 'dns' in host.roles and host.fqdn not in served:
            yield ctx.problem(
                'dns-host-unused',
                f'host "{name}" has the "dns" role, but no zone lists {host.fqdn} among its nameservers',
                _role_path(name, host, 'dns'),
                severity='warning',
                expected=f'{host.fqdn} in the "nameservers" of the zones it serves',
                value='dns',
            )


CHECKS = (
    Check('host-role-settings', 'error', 'Pools and an MTA only on hosts with the "mta" role.', host_role_settings),
    Check('inbound-host-role', 'error', 'Inbound (MX) hosts have the "mta" role.', inbound_host_role),
    Check('idle-mta-host', 'warning', 'An MTA host that neither sends nor receives.', idle_mta_host),
    Check('database-host-count', 'error', 'At most one host holds the shared database.', database_host_count),
    Check('monitoring-host-missing', 'warning', 'Alerts need a monitoring host.', monitoring_host_missing),
    Check('dns-host-unused', 'warning', 'A DNS host that no zone names as its nameserver.', dns_host_unused),
)
