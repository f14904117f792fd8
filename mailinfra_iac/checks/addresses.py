"""Addresses the Internet must reach: sending IPs and MTA/DNS hosts are global, in the spec and from Terraform.

The documentation (RFC 5737) and benchmarking (RFC 2544) networks are never routed, and IANA reserves them for
examples and tests, so a spec whose addresses all lie there is an example (every example and test in this
repository is one) and is accepted. Next to a real address, such an address is a placeholder left behind, an
error. Private, loopback, CGNAT and the other special-purpose addresses are always errors.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from typing import Any

from ..facts import Facts
from ..model import Deployment
from ..model.base import address_scope
from ..problems import Path, Problem
from .base import Check, CheckContext

PUBLIC_ROLES = ('mta', 'dns')
"""Host roles whose own address is published and must be reachable (MX, HELO, NS)."""


def _published(deployment: Deployment) -> Iterator[tuple[Path, str, str]]:
    """(path, address, what) of every address that must be globally routable."""
    for pool_name, pool in deployment.pools.items():
        for index, ip in enumerate(pool.ips):
            yield ('pools', pool_name, 'ips', index, 'address'), ip.address, 'sending IP'
    for name, host in deployment.hosts.items():
        if host.address is not None and any(role in PUBLIC_ROLES for role in host.roles):
            yield ('hosts', name, 'address'), host.address, f'address of host "{name}"'


def ip_not_global(ctx: CheckContext) -> Iterator[Problem]:
    found = [(path, address, what, address_scope(address)) for path, address, what in _published(ctx.deployment)]
    real = next((address for _, address, _, scope in found if scope is None), None)
    for path, address, what, scope in found:
        if scope is None:
            continue
        kind, reason = scope
        if kind == 'local':
            yield ctx.problem(
                'ip-not-global',
                f'{what} {address} is {reason}: the Internet cannot reach it',
                path,
                expected='a globally routable IPv4 address',
                value=address,
            )
        elif real is not None:
            yield ctx.problem(
                'ip-not-global',
                f'{what} {address} is {reason}, a placeholder that never routes, next to real addresses such as {real}',
                path,
                expected='the real address (documentation addresses only in a spec that uses nothing else)',
                value=address,
            )


CHECKS = (Check('ip-not-global', 'error', 'Sending IPs and MTA/DNS host addresses are public.', ip_not_global),)


def terraform_address_problems(
    deployment: Deployment, facts: Facts, outputs: dict[str, Any], file: str
) -> list[Problem]:
    """Problems of ``terraform output -json`` addresses against the spec: every address the spec leaves to
    Terraform present, a valid IPv4 address, globally routable where it is published, used once; the ones the
    spec gives equal to the spec's; nothing the spec does not know."""
    wanted, known = _terraform_keys(deployment, facts)
    hosts = {f'host_{name}' for name in deployment.hosts}
    problems = []

    def problem(key: str, message: str, expected: str, value: Any = None) -> None:
        path = ('ip_addresses', 'value', key)
        problems.append(Problem('terraform-output', message, path, expected=expected, value=value, file=file))

    for key, (what, _) in wanted.items():
        if key not in outputs:
            problem(key, f'{what} is missing', f'"{key}" with its address (run `terraform apply` first)')
    parsed = {key: _ipv4(value) for key, value in outputs.items() if key in wanted}
    published = [address for _, address, _ in _published(deployment)]
    published += [str(address) for key, address in parsed.items() if address is not None and wanted[key][1]]
    real = any(address_scope(address) is None for address in published)
    first_use: dict[tuple[bool, str], str] = {}  # a host's own address may also be one of its sending IPs
    for key, value in outputs.items():
        if key in known:
            if value != known[key]:
                problem(key, f"{json.dumps(value)} differs from the spec's address {known[key]}", known[key], value)
        elif key not in wanted:
            problem(key, f'"{key}" is not an address of this spec', 'only the ids of this spec (stale state?)')
        elif (address := parsed[key]) is None:
            problem(
                key,
                f'{wanted[key][0]}: {json.dumps(value)} is not an IPv4 address',
                'a dotted quad such as "203.0.113.7"',
            )
        elif wanted[key][1] and (scope := address_scope(str(address))) is not None and (scope[0] == 'local' or real):
            problem(key, f'{wanted[key][0]}: {address} is {scope[1]}', 'a globally routable IPv4 address', value)
        elif (key in hosts, str(address)) in first_use:
            problem(
                key,
                f'{wanted[key][0]}: {address} is also "{first_use[key in hosts, str(address)]}"',
                'one address per IP',
                value,
            )
        else:
            first_use[key in hosts, str(address)] = key
    return problems


def _terraform_keys(deployment: Deployment, facts: Facts) -> tuple[dict[str, tuple[str, bool]], dict[str, str]]:
    """Output keys Terraform decides (key -> what, must be global) and those the spec decides (key -> address)."""
    wanted: dict[str, tuple[str, bool]] = {}
    known: dict[str, str] = {}
    for ip in facts.ips:
        if ip.address is None:
            wanted[ip.id] = (f'IP {ip.ptr} of pool "{ip.pool}"', True)
        else:
            known[ip.id] = ip.address
    for name, host in deployment.hosts.items():
        if host.address is None:
            wanted[f'host_{name}'] = (f'address of host "{name}"', any(role in PUBLIC_ROLES for role in host.roles))
        else:
            known[f'host_{name}'] = host.address
    return wanted, known


def _ipv4(value: Any) -> ipaddress.IPv4Address | None:
    try:
        return ipaddress.IPv4Address(value) if isinstance(value, str) else None
    except ValueError:
        return None
