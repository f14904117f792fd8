"""The suppression list: policy from feedback events, the store's rows, outputs, webhook and MTA enforcement.

- :mod:`.suppressions`: the rows (scope = stream or ``'*'``, address and its keyed hash), ``is_suppressed``.
- :mod:`.policy` and :mod:`.service`: what an event means per stream policy; ``Suppressor.apply(event)``.
- :mod:`.transfer`: export CSV/JSON, import a previous provider's CSV with a per-line report.
- :mod:`.webhook`: signed POST per new suppression from a persistent outbox, exponential back-off.
- :mod:`.postfix_map`: each Postfix stream instance's ``check_recipient_access`` map, rebuilt atomically.
- :mod:`.policy_service`: a Postfix policy service for hash-only suppressions (no address to put in a map).
"""

from .policy import Decision, Policy
from .postfix_map import MapError, MapResult, map_text, write_map
from .service import Applied, Suppressor, stored_events
from .suppressions import (
    ALL_STREAMS,
    REASONS,
    Entry,
    Reason,
    SuppressionList,
    address_hash,
    address_problem,
    canonical_address,
    legacy_address,
    normalise_address,
)
from .transfer import ImportReport, export_csv, export_json, import_csv

__all__ = [
    'ALL_STREAMS',
    'REASONS',
    'Applied',
    'Decision',
    'Entry',
    'ImportReport',
    'MapError',
    'MapResult',
    'Policy',
    'Reason',
    'SuppressionList',
    'Suppressor',
    'address_hash',
    'address_problem',
    'canonical_address',
    'export_csv',
    'export_json',
    'import_csv',
    'legacy_address',
    'map_text',
    'normalise_address',
    'stored_events',
    'write_map',
]
