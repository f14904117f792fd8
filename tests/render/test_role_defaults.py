"""Role defaults that are themselves templates, as the controller's renderer gives them to the roles' templates
(``mta_configs.role_template_variables``): rendered with the host's variables where a template prints them."""

from __future__ import annotations

import pytest

from mailinfra_iac.render.mta_configs import RoleDefaultError, role_template_variables, template_environment

PIPE_USER = "{{ agent__user | default('mailinfra') }}"


def test_a_templated_default_follows_the_hosts_variables() -> None:
    environment = template_environment()
    variables = role_template_variables(
        environment, 'postfix', {'agent__user': 'nobody'}, {'postfix__feedback_pipe_user': PIPE_USER}
    )
    assert environment.from_string('user={{ postfix__feedback_pipe_user }}').render(variables) == 'user=nobody'


def test_a_default_that_cannot_be_rendered_names_the_variable_and_the_role() -> None:
    """A default using a variable the host does not have: a clear error, not Jinja's traceback from inside."""
    environment = template_environment()
    variables = role_template_variables(
        environment, 'postfix', {}, {'postfix__feedback_pipe_user': '{{ agent__missing }}'}
    )
    with pytest.raises(RoleDefaultError) as raised:
        environment.from_string('user={{ postfix__feedback_pipe_user }}').render(variables)
    message = str(raised.value)
    assert 'role postfix' in message
    assert 'postfix__feedback_pipe_user' in message
    assert 'agent__missing' in message
    assert 'set it in the inventory' in message
