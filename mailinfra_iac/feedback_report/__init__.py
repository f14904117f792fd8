"""``mailinfra feedback report``: daily bounce, complaint, deferral and delivery rates from the feedback store.

:mod:`.aggregate` counts in SQL (SQLite or PostgreSQL, through :mod:`mailinfra_agent.store`); :mod:`.formats`
writes a text table, CSV and JSON; :mod:`.html` a self-contained HTML report with SVG charts. See
docs/feedback-report.md.
"""

from .aggregate import COUNTS, DIMENSIONS, RATES, Counts, Group, Reason, Report, build_report, normalise_reason, rollup
from .formats import RATE_DEFINITIONS, as_csv, as_data, as_json, as_table
from .html import as_html, thresholds

__all__ = [
    'COUNTS',
    'DIMENSIONS',
    'RATES',
    'RATE_DEFINITIONS',
    'Counts',
    'Group',
    'Reason',
    'Report',
    'as_csv',
    'as_data',
    'as_html',
    'as_json',
    'as_table',
    'build_report',
    'normalise_reason',
    'rollup',
    'thresholds',
]
