"""Golden files of the Postfix and OpenDKIM roles' configuration for the Postfix examples."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailinfra_iac.render.rolevars.base import Template

from .role_files import EXAMPLES, GOLDEN, rendered


@pytest.mark.parametrize('example', EXAMPLES, ids=[example.stem for example in EXAMPLES])
def test_golden(example: Path) -> None:
    expected_dir = GOLDEN / example.stem
    expected = {
        str(path.relative_to(expected_dir)): path.read_text()
        for path in sorted(expected_dir.rglob('*'))
        if path.is_file()
    }
    actual = rendered(example)
    assert sorted(actual) == sorted(expected), 'set of files changed; run python -m tests.postfix.role_files --update'
    for path, content in actual.items():
        assert content == expected[path], f'{example.stem}/{path} differs from the golden file'


def test_golden_files_are_there() -> None:
    files = {str(path.relative_to(GOLDEN)) for path in GOLDEN.rglob('*') if path.is_file()}
    assert 'newsletter-publisher/mx2/postfix-marketing/main.cf' in files
    assert 'newsletter-publisher/mx2/opendkim/opendkim-ed25519.conf' in files
    assert 'saas-transactional/mta1/postfix/inbound_aliases' in files


def test_role_files_reach_mta_configs_once_templates_carry_variables() -> None:
    """Until ``Template`` has ``variables`` the files stay out of ``mta/``; afterwards they go in unchanged."""
    from mailinfra_iac.render.rolevars.opendkim import RoleTemplate

    file = RoleTemplate('postfix/templates/etc/postfix/main.cf.j2', 'postfix/main.cf', {'x': 1})
    fields = set(Template.__dataclass_fields__)
    if 'variables' in fields:
        template = file.as_template()
        assert template is not None
        assert (template.role_template, template.output) == (file.role_template, file.output)
        assert template.variables == {'x': 1}  # type: ignore[attr-defined]
    else:
        assert file.as_template() is None
