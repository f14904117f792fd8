"""mailinfra-iac: dedicated email-sending infrastructure from one validated spec.

The API names are imported from ``api`` on first use (PEP 562): ``mailinfra feedback report`` and the other
commands that need no spec do not pay for the model, pydantic and the renderers (docs/architecture.md, "CLI").
"""

from __future__ import annotations

import sys
from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .problems import MailinfraError, Problem, SpecInvalid

if TYPE_CHECKING:
    from .api import Spec, keystore_dkim, load_spec, parse_spec, render, render_files, validate

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

_FROM_API = frozenset({'Spec', 'keystore_dkim', 'load_spec', 'parse_spec', 'render', 'render_files', 'validate'})


if not TYPE_CHECKING:  # type checkers see the import above, and an unknown name stays an error for them

    def __getattr__(name: str) -> Any:
        if name not in _FROM_API:
            raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
        value = getattr(import_module('.api', __name__), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | _FROM_API)


class _Package(ModuleType):
    """``mailinfra_iac.render`` stays the API function: importing the subpackage of that name does not rebind it."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == 'render' and isinstance(value, ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
