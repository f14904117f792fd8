"""PowerMTA support: the structural checker of ``/etc/pmta/config`` (see ``docs/powermta.md``).

The role variables and the configuration template live in ``render/rolevars/powermta.py`` and
``roles/powermta/templates/etc/pmta/config.j2``.
"""

from __future__ import annotations

from .checker import ConfigProblem, check, check_text, parse, parse_duration, parse_rate

__all__ = ['ConfigProblem', 'check', 'check_text', 'parse', 'parse_duration', 'parse_rate']
