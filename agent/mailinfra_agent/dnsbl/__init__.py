"""Blocklist (DNSBL/RHSBL/URIBL) checks: the catalogue (data), exact decoding, and the checker.

A shared leaf: the controller's CLI uses it too, so it imports neither the contract, the store nor the
command line (the history and the ``mailinfra-agent dnsbl`` command live outside it).
"""

from .catalogue import (
    Catalogue,
    CatalogueError,
    ErrorCode,
    Retired,
    ScoreRange,
    Zone,
    closest_first,
    custom_zone,
    load_catalogue,
    zone_key,
)
from .check import (
    KEY_PLACEHOLDER,
    PUBLIC_RESOLVERS,
    Report,
    Result,
    ZoneStatus,
    applies,
    check,
    check_async,
    public_resolvers_in,
    redact,
)
from .decode import Code, Decoded, decode
from .query import (
    Subject,
    SubjectError,
    domain_subject,
    domain_subjects,
    ip_subject,
    query_prefix,
    registered_domain,
    subjects_from,
)

__all__ = [
    'KEY_PLACEHOLDER',
    'PUBLIC_RESOLVERS',
    'Catalogue',
    'CatalogueError',
    'Code',
    'Decoded',
    'ErrorCode',
    'Report',
    'Result',
    'Retired',
    'ScoreRange',
    'Subject',
    'SubjectError',
    'Zone',
    'ZoneStatus',
    'applies',
    'check',
    'check_async',
    'closest_first',
    'custom_zone',
    'decode',
    'domain_subject',
    'domain_subjects',
    'ip_subject',
    'load_catalogue',
    'public_resolvers_in',
    'query_prefix',
    'redact',
    'registered_domain',
    'subjects_from',
    'zone_key',
]
