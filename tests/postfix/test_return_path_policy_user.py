"""The postfix role's checks of the return-path policy service's user (``tasks/assert.yml``), run by this venv's
ansible-playbook on localhost with mx1's inventory variables: spawn(8) refuses root and Postfix's own user, and a
user that does not exist makes every spawn fail, so each of these would hold every RCPT TO until the policy timeout.
The rendered ``main.cf`` bounds that wait itself (``timeout=10s`` in the ``check_policy_service`` braces)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mailinfra_iac import parse_spec

from ..conftest import AS_OF, ROOT
from ..powermta.helpers import run_role_tasks
from .role_files import context_of, host_variables, render_role_files

ROLE = ROOT / 'roles' / 'postfix'
EXAMPLE = ROOT / 'examples' / 'newsletter-publisher.yml'


def _variables() -> dict[str, Any]:
    context = context_of(parse_spec(EXAMPLE.read_text(), str(EXAMPLE), as_of=AS_OF))
    variables = host_variables(context, 'mx1')
    users = {user for instance in variables['postfix__instances'] for user in instance['sasl_users']}
    return {**variables, 'postfix__sasl_passwords': dict.fromkeys(users, 'a password of the test only')}


def _play(user: str | None, tmp_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    variables = _variables()
    if user is not None:
        variables['postfix__return_path_policy_user'] = user
    return run_role_tasks(
        ROLE, variables, [{'ansible.builtin.include_tasks': str(ROLE / 'tasks' / 'assert.yml')}], tmp_path, *options
    )


@pytest.mark.parametrize(
    ('user', 'words'),
    [
        ('root', 'spawn(8) refuses root and postfix'),
        ('postfix', 'spawn(8) refuses root and postfix'),
        ('', 'spawn(8) refuses root and postfix'),
        ('mailinfra-no-such-user', 'does not exist on this host'),
    ],
)
def test_the_role_refuses_a_user_spawn_cannot_run(user: str, words: str, tmp_path: Path) -> None:
    result = _play(user, tmp_path)
    assert result.returncode != 0, result.stdout
    assert words in result.stdout, result.stdout


def test_check_mode_on_a_new_host_passes(tmp_path: Path) -> None:
    """``--check`` of a new host: the agent role, which creates the user, does not create it in check mode."""
    result = _play('mailinfra-no-such-user', tmp_path, '--check')
    assert result.returncode == 0, result.stdout


def test_an_existing_user_passes(tmp_path: Path) -> None:
    result = _play('nobody', tmp_path)  # the agent's user on a host; this machine has nobody
    assert result.returncode == 0, result.stdout


def test_the_policy_wait_is_bounded() -> None:
    context = context_of(parse_spec(EXAMPLE.read_text(), str(EXAMPLE), as_of=AS_OF))
    main_cf = render_role_files(context)['mx1/etc/postfix/main.cf']
    [braces] = re.findall(r'check_policy_service \{([^}]*)\}', main_cf)
    settings = [part.strip() for part in braces.split(',')]
    assert settings == ['unix:private/mailinfra-return-path', 'timeout=10s', 'default_action=DUNNO']


def test_the_policy_and_pipe_users_follow_the_agents_user(tmp_path: Path) -> None:
    """Set only ``agent__user`` (the agent role creates that user): the policy service and the pipe run as it, not as
    a literal ``mailinfra`` the role would find missing (or, left from before, without the keys' rights)."""
    variables = {**_variables(), 'agent__user': 'nobody'}  # a user this machine has
    users = 'users {{ postfix__return_path_policy_user }} {{ postfix__feedback_pipe_user }}'
    tasks = [
        {'ansible.builtin.include_tasks': str(ROLE / 'tasks' / 'assert.yml')},
        {'ansible.builtin.debug': {'msg': users}},
    ]
    result = run_role_tasks(ROLE, variables, tasks, tmp_path)
    assert result.returncode == 0, result.stdout
    assert 'users nobody nobody' in result.stdout, result.stdout
