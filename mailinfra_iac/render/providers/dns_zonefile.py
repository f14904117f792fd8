"""A zone we only write as a BIND zone file (the ``dns`` renderer): no Terraform."""

from __future__ import annotations

from .base import DnsProvider

PROVIDER = DnsProvider('zonefile', None, None)
