"""What a provider module declares: its Terraform plug-in, its module under terraform/modules/, its arguments.

A provider module holds everything about one provider and nothing else; ``render/terraform.py`` builds the
root from these declarations and never names a provider itself. The arguments are computed against
:class:`Root`, the part of the root builder a provider may use (declare variables, configure plug-ins,
add data sources and host addresses).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ...facts.ips import IpFact
from ...model import Deployment, Zone
from ...problems import MailinfraError
from ..terraform_txt import TxtStyle


class TerraformRenderError(MailinfraError):
    """The spec cannot be expressed with the Terraform modules."""


class Root(Protocol):
    """The root module being built, as providers see it."""

    deployment: Deployment
    providers: dict[str, Any]
    """Terraform provider blocks by plug-in name."""
    data: dict[str, dict[str, Any]]
    """Data sources by type and name."""
    host_address: dict[str, str]
    """Host name -> expression of the address of a machine Terraform knows only by its id."""

    def variable(self, name: str, description: str, type_: str, **extra: Any) -> str:
        """Declare a root variable; returns its reference ``${var.NAME}``."""
        ...

    def use_plugin(self, plugin: Plugin | None) -> None:
        """Configure the plug-in once (its credential and settings), if it is not yet."""
        ...


@dataclass(frozen=True)
class Token:
    """The one credential of a plug-in, passed as a sensitive variable without default."""

    argument: str
    variable: str
    description: str


@dataclass(frozen=True)
class Plugin:
    """A Terraform provider plug-in: local name and pin, exactly as in the modules' versions.tf, and its block."""

    name: str
    source: str
    version: str
    token: Token | None = None
    settings: Callable[[Root], dict[str, Any]] | None = None
    """The block's other arguments (region, endpoint), computed for the deployment."""

    def config(self, root: Root) -> dict[str, Any]:
        config: dict[str, Any] = {}
        if self.token is not None:
            argument, variable, description = self.token.argument, self.token.variable, self.token.description
            config[argument] = root.variable(
                variable, description + ' Set it as TF_VAR_' + variable + '.', 'string', sensitive=True, nullable=False
            )
        if self.settings is not None:
            config.update(self.settings(root))
        return config


def no_arguments(root: Root, ips: Sequence[IpFact]) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class IpProvider:
    """Where hosts and sending IPs live (``Host.provider``); its module ``ip_<name>`` sets their reverse DNS."""

    name: str
    label: str
    """Name for people, e.g. "Hetzner"."""
    plugin: Plugin | None
    arguments: Callable[[Root, Sequence[IpFact]], dict[str, Any]] = no_arguments
    """Arguments of the module call besides ``source``, ``ips`` and ``forward_records``."""
    allocation_targets: tuple[str, ...] = ()
    """Resources in the module that allocate addresses or create servers, for a first targeted apply."""
    creates_servers: bool = False
    """The module creates the provider's hosts that have no address, and cannot adopt an address given for them."""

    @property
    def module(self) -> str:
        return f'ip_{self.name}'


@dataclass(frozen=True)
class DnsProvider:
    """Who serves a zone (``Zone.provider``); its module ``dns_<name>`` holds the zone's records."""

    name: str
    plugin: Plugin | None
    txt_style: TxtStyle | None
    """How the module wants long TXT values (:mod:`..terraform_txt`); None: no Terraform for the zone."""
    arguments: Callable[[Root, Zone], dict[str, Any]] | None = None
    """Arguments of the module call besides ``source``, ``zone`` and ``records``; None: no Terraform."""
    keyed_by_value: bool = False
    """The module keys its resources by value, so values Terraform allocates must exist before the first plan."""

    @property
    def module(self) -> str:
        return f'dns_{self.name}'

    @property
    def terraform(self) -> bool:
        return self.arguments is not None


def terraform_name(prefix: str, text: str) -> str:
    """A Terraform identifier: ``prefix`` and ``text`` lowercased, runs of other characters as ``_``."""
    return prefix + re.sub(r'[^a-z0-9]+', '_', text.lower()).strip('_')


def quoted_key(expression: str, key: str) -> str:
    return f'{expression}["{key}"]'


def listed_hosts(ips: Sequence[IpFact]) -> str:
    """The hosts of these IPs for a variable's description."""
    return ', '.join(sorted({ip.host for ip in ips if ip.host is not None})) or 'none yet'


def zone_id_arguments(plugin: Plugin) -> Callable[[Root, Zone], dict[str, Any]]:
    """For a hosted-zone API: the plug-in configured, the zone id from the spec or a variable."""

    def arguments(root: Root, zone: Zone) -> dict[str, Any]:
        root.use_plugin(plugin)
        description = f'Provider zone id of {zone.name}.'
        return {'zone_id': zone.zone_id or root.variable(terraform_name('zone_id_', zone.name), description, 'string')}

    return arguments
