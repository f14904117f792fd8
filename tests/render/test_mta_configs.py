"""The roles' own templates rendered per host under ``mta/<host>/`` (Postfix and OpenDKIM included)."""

from __future__ import annotations

import pytest

from mailinfra_iac import load_spec, render_files
from mailinfra_iac.render import RenderContext
from mailinfra_iac.render.mta_configs import template_environment
from mailinfra_iac.render.rolevars import default_role_vars

from ..conftest import AS_OF, ROOT, TEST_DKIM
from ..golden_files import GOLDEN

NEWSLETTER = ROOT / 'examples' / 'newsletter-publisher.yml'


@pytest.fixture(scope='module')
def newsletter() -> dict[str, bytes]:
    spec = load_spec(NEWSLETTER.relative_to(ROOT), as_of=AS_OF)
    return {path: output.content for path, output in render_files(spec, dkim=TEST_DKIM).items()}


@pytest.mark.parametrize(
    'path',
    [
        'mta/mx1/etc/postfix/main.cf',
        'mta/mx1/etc/postfix/master.cf',
        'mta/mx1/etc/postfix/inbound_aliases',
        'mta/mx1/etc/postfix-transactional/main.cf',
        'mta/mx1/etc/postfix-cold_outreach/transport_isp',
        'mta/mx2/etc/postfix-marketing/master.cf',
        'mta/mx2/etc/postfix-marketing/transport_ip_isp',
        'mta/mx2/etc/postfix-marketing/delivery_status_filter',
        'mta/mx2/etc/postfix-marketing/sasl/smtpd.conf',
        'mta/mx1/etc/systemd/system/mailinfra-postfix-logrotate.service',
        'mta/mx1/etc/systemd/system/mailinfra-postfix-logrotate.timer',
        'mta/mx1/etc/opendkim.conf',
        'mta/mx1/etc/opendkim/KeyTable',
        'mta/mx1/etc/opendkim/SigningTable',
        'mta/mx1/etc/opendkim/TrustedHosts',
        'mta/mx2/etc/opendkim/opendkim-ed25519.conf',
        'mta/mx2/etc/opendkim/KeyTable.ed25519',
        'mta/mx2/etc/systemd/system/opendkim-ed25519.service',
    ],
)
def test_postfix_and_opendkim_files_reach_mta(newsletter: dict[str, bytes], path: str) -> None:
    assert path in newsletter


def test_every_listed_template_of_a_postfix_host_is_rendered(newsletter: dict[str, bytes]) -> None:
    spec = load_spec(NEWSLETTER.relative_to(ROOT), as_of=AS_OF)
    context = RenderContext(spec.deployment, spec.facts, spec.name, {}, TEST_DKIM)
    roles = [role for role in default_role_vars() if hasattr(role, 'templates')]
    for host in ('mx1', 'mx2'):
        listed = {f'mta/{host}/{template.output}' for role in roles for template in role.templates(context, host)}
        assert {path for path in newsletter if path.startswith(f'mta/{host}/')} == listed


def test_templates_get_the_loop_variable_and_the_role_defaults(newsletter: dict[str, bytes]) -> None:
    marketing = newsletter['mta/mx2/etc/postfix-marketing/main.cf'].decode()
    assert 'queue_directory = /var/spool/postfix-marketing' in marketing  # __postfix_instance
    assert 'message_size_limit = 26214400' in marketing  # roles/postfix/defaults/main.yml
    ed25519 = newsletter['mta/mx2/etc/opendkim/opendkim-ed25519.conf'].decode()
    assert 'SignatureAlgorithm      ed25519-sha256' in ed25519  # __opendkim_instance


@pytest.mark.parametrize('text', ['Generated; do not edit.', 'a\nb', 'x  \n\ny', '', 'a\n', ' lead'])
def test_the_comment_filter_is_ansibles(text: str) -> None:
    from ansible.plugins.filter.core import comment

    assert template_environment().filters['comment'](text) == comment(text)


def test_one_golden_tree() -> None:
    """``script/update-golden`` regenerates tests/golden; no other golden tree may hide beside it."""
    trees = sorted(path for path in (ROOT / 'tests').rglob('golden') if path.is_dir())
    assert trees == [GOLDEN]
