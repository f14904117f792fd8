"""mailinfra-iac: dedicated email-sending infrastructure from one validated spec."""

from .api import Spec, keystore_dkim, load_spec, parse_spec, render, render_files, validate
from .problems import MailinfraError, Problem, SpecInvalid

__version__ = '0.1.0'

__all__ = [
    'MailinfraError',
    'Problem',
    'Spec',
    'SpecInvalid',
    'keystore_dkim',
    'load_spec',
    'parse_spec',
    'render',
    'render_files',
    'validate',
]
