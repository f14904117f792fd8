"""Secrets in the roles: a task handling one has ``no_log``, writes it 0600 (or 0640), never puts it in a message.

Read from the roles' YAML and the Jinja of their tasks and templates, not by running them. A secret is a variable
listed below, one of the roles' own variables built from it, a set_fact or vars entry built from one, the registered
result of a task handling one (save those listed as not), or a file copied from a controller path listed below.
"""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml
from jinja2 import meta

from .conftest import ROOT

SECRET_VARIABLES = frozenset(
    {
        'feedback__hash_key',
        'feedback__signing_key',
        'feedback__webhook_secret',
        'postfix__sasl_passwords',
        'powermta__smtp_passwords',
        'prometheus__secret_files',
    }
)
SECRET_SOURCES = frozenset({'opendkim__keys_dir', 'powermta__dkim_key_store', 'powermta__license_file'})
"""Controller paths of secret files: a task copying from them handles the secret."""
NOT_SECRET = {
    'agent__secrets_directory': 'a directory path',
    'opendkim__keys': 'selectors, key_ref paths and host paths of the keys, not the keys',
    'postfix__tls_key_file': "a host path; the key is the host's own",
    'powermta__dkim_keys': 'selectors and key_ref paths, not the keys',
    'powermta__license_path': 'a host path',
    'prometheus__secrets_directory': 'a directory path',
}
REGISTERED_NOT_SECRET = {
    '__feedback_secret_files': 'stat results of the secret files expected on the host: paths and modes, no content',
    '__postfix_sasl_digests': 'copy results of the digest files: paths and whether they changed; a digest, at most',
}
"""Results registered by a task that handles a secret yet do not hold it (else they count as secrets too)."""
SECRET_LIKE = re.compile(r'pass|secret|token|key|licen|cred|private', re.IGNORECASE)

BARE_EXPRESSIONS = frozenset({'when', 'that', 'changed_when', 'failed_when', 'until'})
"""Task keys Ansible reads as Jinja expressions without braces."""
MESSAGES = frozenset({'msg', 'fail_msg', 'success_msg'})
WRITERS = frozenset({'ansible.builtin.copy', 'ansible.builtin.template'})
SECRET_MODES = frozenset({'0600', '0640'})
NOT_ARGUMENTS = frozenset({'name', 'tags', 'no_log', 'block', 'rescue', 'always'})


class _AnyName(dict[str, Any]):
    """Ansible's filters and tests, unknown to plain Jinja: any name is one (only the variables are read here)."""

    def __contains__(self, name: object) -> bool:
        return True

    def __missing__(self, name: str) -> Any:
        return _anything

    def get(self, name: str, default: Any = None) -> Any:
        return self[name]


def _anything(*args: Any, **kwargs: Any) -> None:
    return None


_jinja = jinja2.Environment()
_jinja.filters = _AnyName()
_jinja.tests = _AnyName()


class _Loader(yaml.SafeLoader):
    """YAML as Ansible writes it: ``!unsafe`` and ``!vault`` values are plain strings here."""


_Loader.add_multi_constructor('!', lambda loader, suffix, node: loader.construct_scalar(node))


def _load(path: Path) -> Any:
    return yaml.load(path.read_text(encoding='utf-8'), Loader=_Loader)  # a SafeLoader subclass


@functools.cache
def _names_in_text(text: str, bare: bool) -> frozenset[str]:
    with warnings.catch_warnings():  # regex escapes such as '\.' in string literals, which Ansible reads alike
        warnings.simplefilter('ignore', DeprecationWarning)
        return frozenset(meta.find_undeclared_variables(_jinja.parse(f'{{{{ ({text}) }}}}' if bare else text)))


def names_in(value: Any, *, bare: bool = False) -> set[str]:
    """The variables the Jinja in ``value`` (a string, or strings nested in lists and mappings) reads."""
    if isinstance(value, str):
        return set(_names_in_text(value, bare))
    if isinstance(value, dict):
        return {name for item in value.values() for name in names_in(item, bare=bare)}
    if isinstance(value, list):
        return {name for item in value for name in names_in(item, bare=bare)}
    return set()


def role_variable_files() -> Iterator[Path]:
    for kind in ('defaults', 'vars'):
        yield from sorted(ROOT.glob(f'roles/*/{kind}/main.yml'))


def role_secrets() -> frozenset[str]:
    """The listed secrets and every role variable built from one (vars/main.yml, defaults), transitively."""
    definitions = {name: value for path in role_variable_files() for name, value in (_load(path) or {}).items()}
    secrets = set(SECRET_VARIABLES)
    while grown := {name for name, value in definitions.items() if name not in secrets and names_in(value) & secrets}:
        secrets |= grown
    return frozenset(secrets)


def task_files() -> list[Path]:
    return sorted(
        [*ROOT.glob('roles/*/tasks/*.yml'), *ROOT.glob('roles/*/handlers/*.yml'), *ROOT.glob('playbooks/*.yml')]
    )


def items(path: Path) -> Iterator[tuple[dict[str, Any], bool]]:
    """Every play, block and task of a task file or playbook, with whether an enclosing block sets ``no_log``."""

    def walk(entries: Any, no_log: bool) -> Iterator[tuple[dict[str, Any], bool]]:
        for item in entries or []:
            if not isinstance(item, dict):
                continue
            inherited = no_log or item.get('no_log') is True
            for key in ('block', 'rescue', 'always', 'tasks', 'pre_tasks', 'post_tasks', 'handlers'):
                yield from walk(item.get(key), inherited)
            yield item, no_log

    yield from walk(_load(path), False)


def tasks(path: Path) -> Iterator[tuple[dict[str, Any], bool]]:
    """Every task of a task file or playbook, with whether an enclosing block sets ``no_log``."""
    for item, no_log in items(path):
        if not {'block', 'hosts', 'import_playbook'} & item.keys():
            yield item, no_log


def module_of(task: dict[str, Any]) -> tuple[str, Any]:
    for key, value in task.items():
        if key.startswith(('ansible.builtin.', 'community.', 'ansible.posix.')):
            return key, value
    return '', None


def template_reads(task: dict[str, Any], path: Path) -> set[str]:
    """What a template task's source file reads (the role's templates/ directory)."""
    module, arguments = module_of(task)
    if module != 'ansible.builtin.template' or not isinstance(arguments, dict) or '{{' in arguments['src']:
        return set()
    source = path.parents[1] / 'templates' / arguments['src']
    return names_in(source.read_text(encoding='utf-8')) if source.is_file() else set()


def reads(task: dict[str, Any]) -> set[str]:
    return {
        name
        for key, value in task.items()
        if key not in NOT_ARGUMENTS
        for name in names_in(value, bare=key in BARE_EXPRESSIONS)
    }


def copies_secret_file(task: dict[str, Any]) -> bool:
    module, arguments = module_of(task)
    return module in WRITERS | {'ansible.builtin.slurp'} and bool(names_in(arguments) & SECRET_SOURCES)


def handles(path: Path, task: dict[str, Any], secrets: frozenset[str]) -> bool:
    """Whether a task reads a secret, in its arguments or its template, or copies a secret file."""
    return bool((reads(task) | template_reads(task, path)) & secrets) or copies_secret_file(task)


def derived(path: Path, item: dict[str, Any], secrets: frozenset[str]) -> set[str]:
    """The variables a play, block or task sets from a secret: its vars, its set_fact, its registered result."""
    module, arguments = module_of(item)
    facts = arguments if module == 'ansible.builtin.set_fact' and isinstance(arguments, dict) else {}
    names = {name for name, value in {**(item.get('vars') or {}), **facts}.items() if names_in(value) & secrets}
    if isinstance(item.get('register'), str) and handles(path, item, secrets):
        names.add(item['register'])
    return names - REGISTERED_NOT_SECRET.keys()


def secret_variables() -> frozenset[str]:
    """The roles' secrets (:func:`role_secrets`) and what the tasks set from one, transitively."""
    secrets = role_secrets()
    while (
        grown := {name for path in task_files() for item, _ in items(path) for name in derived(path, item, secrets)}
        - secrets
    ):
        secrets |= grown
    return secrets


def where(path: Path, task: dict[str, Any]) -> str:
    return f'{path.relative_to(ROOT)}: "{task.get("name")}"'


def test_every_secret_looking_role_variable_is_classified() -> None:
    documented = set()
    for path in [*role_variable_files(), *ROOT.glob('roles/*/meta/argument_specs.yml')]:
        data = _load(path) or {}
        if path.name == 'argument_specs.yml':
            documented |= {name for spec in data['argument_specs'].values() for name in spec.get('options', {})}
        else:
            documented |= {name for name in data if not name.startswith('__')}
    looking = {name for name in documented if SECRET_LIKE.search(name)}
    unclassified = looking - SECRET_VARIABLES - SECRET_SOURCES - NOT_SECRET.keys()
    assert unclassified == set(), 'add each to SECRET_VARIABLES, SECRET_SOURCES or NOT_SECRET (with why)'
    assert (SECRET_VARIABLES | SECRET_SOURCES | NOT_SECRET.keys()) <= documented  # no stale entries


def all_tasks() -> Iterator[tuple[Path, dict[str, Any], bool]]:
    """(file, task, whether no_log hides it: its own or its block's) of every task file and playbook."""
    for path in task_files():
        for task, block_no_log in tasks(path):
            yield path, task, block_no_log or task.get('no_log') is True


def test_secrets_are_found_in_the_roles() -> None:
    secrets = secret_variables()
    assert '__feedback_secrets' in secrets  # built from the feedback keys in roles/feedback/vars/main.yml
    handling = {where(path, task) for path, task, _ in all_tasks() if handles(path, task, secrets)}
    assert 'roles/opendkim/tasks/keys.yml: "Copy the private keys"' in handling
    assert 'roles/powermta/tasks/license.yml: "Install the PowerMTA licence"' in handling
    assert 'roles/feedback/tasks/store.yml: "Write the secrets given as variables"' in handling
    registered = {task.get('register') for path, task, _ in all_tasks() if handles(path, task, secrets)}
    assert registered >= REGISTERED_NOT_SECRET.keys()  # no stale entries


def offending(rule: Callable[[Path, dict[str, Any], bool, frozenset[str]], object]) -> list[str]:
    """The tasks for which ``rule(file, task, hidden by no_log, secrets)`` is true."""
    secrets = secret_variables()
    return [where(path, task) for path, task, hidden in all_tasks() if rule(path, task, hidden, secrets)]


def test_tasks_handling_a_secret_have_no_log() -> None:
    assert (
        offending(lambda _, task, hidden, secrets: (reads(task) & secrets or copies_secret_file(task)) and not hidden)
        == []
    )


def test_a_secret_is_never_in_a_message() -> None:
    # ansible-core 2.19 prints a failed task's message even with no_log: "[ERROR]: Task failed: Action failed: MSG"
    def rule(_: Path, task: dict[str, Any], hidden: bool, secrets: frozenset[str]) -> bool:
        arguments = module_of(task)[1]
        return isinstance(arguments, dict) and any(names_in(arguments.get(key)) & secrets for key in MESSAGES)

    assert offending(rule) == []


def test_secret_files_are_written_private() -> None:
    def rule(path: Path, task: dict[str, Any], hidden: bool, secrets: frozenset[str]) -> bool:
        module, arguments = module_of(task)
        if module not in WRITERS or not isinstance(arguments, dict):
            return False
        handles = names_in(arguments) & secrets or template_reads(task, path) & secrets or copies_secret_file(task)
        return bool(handles) and str(arguments.get('mode')) not in SECRET_MODES

    assert offending(rule) == []


def test_templates_holding_a_secret_show_no_diff() -> None:
    # --diff prints a template's new text; no_log, or a diff switched off while it holds the secret, hides it.
    def rule(path: Path, task: dict[str, Any], hidden: bool, secrets: frozenset[str]) -> bool:
        diff = task.get('diff', True)
        off = diff is False or (isinstance(diff, str) and '{{' in diff)  # false, or an expression (when it holds one)
        return bool(template_reads(task, path) & secrets) and not (hidden or off)

    assert offending(rule) == []


BROKEN = {
    'no_log': (
        test_tasks_handling_a_secret_have_no_log,
        '- name: Use the password\n  ansible.builtin.command: "login {{ postfix__sasl_passwords[\'app\'] }}"\n',
    ),
    'message': (
        test_a_secret_is_never_in_a_message,
        '- name: Use the password\n'
        '  no_log: true\n'
        '  ansible.builtin.assert:\n'
        '    that: ["postfix__sasl_passwords[\'app\'] | length > 11"]\n'
        '    fail_msg: "{{ postfix__sasl_passwords[\'app\'] }} is short"\n',
    ),
    'mode': (
        test_secret_files_are_written_private,
        '- name: Write the password\n'
        '  no_log: true\n'
        '  ansible.builtin.template: {src: password.j2, dest: /etc/password, mode: "0644"}\n',
    ),
    'diff': (
        test_templates_holding_a_secret_show_no_diff,
        '- name: Write the password\n'
        '  diff: true\n'
        '  ansible.builtin.template: {src: password.j2, dest: /etc/password, mode: "0600"}\n',
    ),
    'set_fact': (
        test_a_secret_is_never_in_a_message,
        '- name: Keep the password\n'
        '  no_log: true\n'
        '  ansible.builtin.set_fact: {demo_password: "{{ postfix__sasl_passwords[\'app\'] }}"}\n'
        '- name: Show it\n'
        '  no_log: true\n'
        '  ansible.builtin.debug: {msg: "{{ demo_password }}"}\n',
    ),
    'block vars': (
        test_tasks_handling_a_secret_have_no_log,
        '- name: Passwords\n'
        '  vars: {demo_password: "{{ postfix__sasl_passwords[\'app\'] }}"}\n'
        '  block:\n'
        '    - name: Use it\n'
        '      ansible.builtin.command: "login {{ demo_password }}"\n',
    ),
    'register': (
        test_a_secret_is_never_in_a_message,
        '- name: Read the licence\n'
        '  no_log: true\n'
        '  ansible.builtin.slurp: {src: "{{ powermta__license_file }}"}\n'
        '  register: demo_licence\n'
        '- name: Show it\n'
        '  no_log: true\n'
        '  ansible.builtin.debug: {msg: "{{ demo_licence.content | b64decode }}"}\n',
    ),
}
"""A task breaking each rule, or a secret passed on by set_fact, vars or register before it breaks one."""


@pytest.mark.parametrize(('rule', 'text'), BROKEN.values(), ids=BROKEN.keys())
def test_the_rules_catch_a_broken_task(rule: Any, text: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    role = tmp_path / 'roles' / 'demo'
    for directory in ('tasks', 'templates'):
        (role / directory).mkdir(parents=True)
    (role / 'tasks' / 'main.yml').write_text(text, encoding='utf-8')
    (role / 'templates' / 'password.j2').write_text("{{ postfix__sasl_passwords['app'] }}\n", encoding='utf-8')
    monkeypatch.setattr(f'{__name__}.task_files', lambda: [role / 'tasks' / 'main.yml'])
    monkeypatch.setattr(f'{__name__}.ROOT', tmp_path)
    monkeypatch.setattr(f'{__name__}.role_variable_files', lambda: iter([]))
    with pytest.raises(AssertionError):
        rule()
