"""DNS drift: the public records the controller expects, compared with what a resolver answers now.

The expectations come from the monitoring host's contract (``contract.dns_expectations``); the
answers from the configured resolvers through the shared DNS client (``mailinfra_agent.dns``).
"""

from .compare import CHECKS, Outcome, compare
from .runner import DriftReport, RecordResult, check_drift
from .textfile import TextfileError, render_metrics, write_textfile

__all__ = [
    'CHECKS',
    'DriftReport',
    'Outcome',
    'RecordResult',
    'TextfileError',
    'check_drift',
    'compare',
    'render_metrics',
    'write_textfile',
]
