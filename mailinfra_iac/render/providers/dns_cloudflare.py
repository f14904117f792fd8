"""Cloudflare: one record per value (resources keyed by value) in an existing zone; long TXT values as quoted
255-byte strings."""

from __future__ import annotations

from .base import DnsProvider, Plugin, Token, zone_id_arguments

PLUGIN = Plugin(
    'cloudflare',
    'cloudflare/cloudflare',
    '~> 5.14.0',
    Token('api_token', 'cloudflare_api_token', 'Cloudflare API token with DNS edit rights on the zones.'),
)

PROVIDER = DnsProvider('cloudflare', PLUGIN, 'quoted', zone_id_arguments(PLUGIN), keyed_by_value=True)
