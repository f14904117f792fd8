"""PowerMTA on the host: the structural checker of ``/etc/pmta/config`` (see ``docs/powermta.md``).

The controller renders that file from ``mailinfra_iac/render/rolevars/powermta.py`` and
``roles/powermta/templates/etc/pmta/config.j2``; the role validates it with ``mailinfra-agent powermta-check``.
"""

from __future__ import annotations

from .checker import ConfigProblem, check, check_text, parse, parse_duration, parse_rate

__all__ = ['ConfigProblem', 'check', 'check_text', 'parse', 'parse_duration', 'parse_rate']
