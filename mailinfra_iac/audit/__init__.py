"""Bulk-sender audit: the published Gmail, Yahoo and Microsoft requirements for senders of more than 5,000 mails a
day, judged on the DNS as served (``mailinfra dns check``'s checks), the rendered MTA configuration and the spec.

    from mailinfra_iac import api
    from mailinfra_iac.audit import audit
    from mailinfra_iac.dnscheck import run_dns_checks
    spec = api.load_spec('examples/newsletter-publisher.yml')
    files = {path: out.content for path, out in api.render_files(spec, renderers=['mta']).items()}
    report = audit(spec, run_dns_checks(spec, ['192.0.2.53']), files)

Requirements and their sources: :data:`REQUIREMENTS`, :data:`SOURCES`.
"""

from .engine import STATUSES, AuditReport, Finding, Status, Volume, audit, volumes
from .requirements import BULK_PER_DAY, REQUIREMENTS, SOURCES, Requirement, Source

__all__ = [
    'BULK_PER_DAY',
    'REQUIREMENTS',
    'SOURCES',
    'STATUSES',
    'AuditReport',
    'Finding',
    'Requirement',
    'Source',
    'Status',
    'Volume',
    'audit',
    'volumes',
]
