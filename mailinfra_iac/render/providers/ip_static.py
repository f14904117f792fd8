"""Existing machines and addresses: nothing to create; the module passes the addresses on and lists the
reverse DNS to request by hand (output ``ptr_requests``)."""

from __future__ import annotations

from .base import IpProvider

PROVIDER = IpProvider('static', 'static', None)
