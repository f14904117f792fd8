"""Check a deployment's DNS as authoritative servers really serve it.

The expectations come from the same record set and facts the renderers use; the servers are
asked directly (no recursive resolver in between, no cache). One module per check family:
``fcrdns``, ``spf``, ``dkim``, ``dmarc``, ``receiving`` (MX, MTA-STS, TLS-RPT); ``runner`` runs them.
Check ids and what they verify: :data:`CHECKS`.
"""

from mailinfra_agent.dns.client import Answer, DnsClient, DnspythonEngine, Server, UdpEngine, parse_server

from .expected import Expectations, expectations
from .results import CHECKS, CheckResult, Status
from .runner import CannotCheck, DnsCheckReport, check_dns, check_expectations, run_dns_checks, run_expectations

__all__ = [
    'CHECKS',
    'Answer',
    'CannotCheck',
    'CheckResult',
    'DnsCheckReport',
    'DnsClient',
    'DnspythonEngine',
    'Expectations',
    'Server',
    'Status',
    'UdpEngine',
    'check_dns',
    'check_expectations',
    'expectations',
    'parse_server',
    'run_dns_checks',
    'run_expectations',
]
