"""docs/powermta.md lists exactly the directives the structural checker knows."""

from __future__ import annotations

import re

from mailinfra_agent.powermta.checker import DIRECTIVES

from ..conftest import ROOT


def test_the_directive_table_of_the_docs_is_the_checkers() -> None:
    text = (ROOT / 'docs' / 'powermta.md').read_text()
    section = text.split('### Directives the checker knows', 1)[1].split('\n## ', 1)[0]
    rows = re.findall(r'^\| (top|[a-z-]+) \| `([a-z-]+)` \| ', section, flags=re.MULTILINE)
    documented = {('' if block == 'top' else block, name) for block, name in rows}
    known = {(block, name) for block, table in DIRECTIVES.items() for name in table}
    assert documented == known
    assert len(rows) == len(documented), 'a directive is listed twice'
