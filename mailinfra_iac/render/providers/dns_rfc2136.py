"""RFC 2136 dynamic updates (hashicorp/dns), signed with TSIG; long TXT values unsplit (the plug-in splits them).

One provider block per server; the first is the default, the others get an alias the zone's call names.
"""

from __future__ import annotations

from typing import Any

from ...model import Zone
from .base import DnsProvider, Plugin, Root, terraform_name

PLUGIN = Plugin('dns', 'hashicorp/dns', '~> 3.4.3')


def provider_alias(root: Root, server: str | None) -> str | None:
    """Configure hashicorp/dns for an RFC 2136 server; returns the alias to pass to the module, if any."""
    key = {
        'key_name': root.variable(
            'rfc2136_key_name',
            'TSIG key name for RFC 2136 updates, such as "mailinfra.". Null sends unsigned updates.',
            'string',
            default=None,
        ),
        'key_algorithm': root.variable(
            'rfc2136_key_algorithm', 'TSIG algorithm, such as "hmac-sha256".', 'string', default=None
        ),
        'key_secret': root.variable(
            'rfc2136_key_secret',
            'TSIG secret (base64). Set it as TF_VAR_rfc2136_key_secret.',
            'string',
            default=None,
            sensitive=True,
        ),
    }
    if server is None:
        server = root.variable('rfc2136_server', 'RFC 2136 server for the zones that name none.', 'string')
    configs: list[dict[str, Any]] = root.providers.setdefault(PLUGIN.name, [])
    for config in configs:
        if config['update']['server'] == server:
            return config.get('alias')
    alias = None if not configs else terraform_name('server_', server)
    config = {'update': {'server': server, **key}}
    if alias is not None:
        config['alias'] = alias
    configs.append(config)
    return alias


def arguments(root: Root, zone: Zone) -> dict[str, Any]:
    alias = provider_alias(root, zone.server)
    return {} if alias is None else {'providers': {'dns': f'dns.{alias}'}}


PROVIDER = DnsProvider('rfc2136', PLUGIN, 'raw', arguments)
