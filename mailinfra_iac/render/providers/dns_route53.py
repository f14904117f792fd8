"""Route 53: record sets in an existing hosted zone; long TXT values as 255-byte chunks joined with ``""``."""

from __future__ import annotations

from .base import DnsProvider, zone_id_arguments
from .ip_aws import PLUGIN

PROVIDER = DnsProvider('route53', PLUGIN, 'joined', zone_id_arguments(PLUGIN))
