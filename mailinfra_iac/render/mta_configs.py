"""MTA configuration per host, rendered from the roles' own templates with the host's inventory variables.

The role deploys exactly these files (same template, same variables), so the golden files here show what
lands on a host. Templates get flat values: the data logic is in ``render/rolevars/``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any

import jinja2
import jinja2.bccache

from ..paths import project_root
from ..problems import MailinfraError
from .base import GENERATED_MARK, OutputFile, RenderContext
from .inventory import InventoryRenderer
from .rolevars.base import applies_to
from .serialise import Shared, to_json


def _comment(text: str) -> str:
    """Ansible's ``comment`` filter in its default (plain) style, the same string operations: ``# `` before
    every line, ``#`` alone where a line is empty, between two bare ``#`` lines."""
    body = ('# ' + str(text).replace('\n', '\n# ')).replace('# \n', '#\n')
    return f'#\n{body}\n#'


def _to_nice_json(value: Any, indent: int = 4, sort_keys: bool = True, *, shared: Shared | None = None) -> str:
    """Ansible's ``to_nice_json`` filter (ansible-core 2.19): the same ``json.dumps`` arguments.

    With ``indent=2`` (what our templates use) the text comes from ``serialise.to_json`` (orjson where it writes
    the same bytes) whenever it is plain ASCII, which is then exactly what ``ensure_ascii`` would write too.
    """
    if indent == 2 and sort_keys:
        text = to_json(value, shared)
        if text.isascii():
            return text[:-1].decode()
    return json.dumps(value, indent=indent, sort_keys=sort_keys, separators=(',', ': '))


_DICT_ATTRIBUTES = frozenset(dir(dict))


class _Environment(jinja2.Environment):
    """Jinja's ``x.y`` on a plain dict without the failed attribute lookup first (same result, measured faster).

    Jinja tries ``getattr(x, 'y')`` and then ``x['y']``; on a dict the attribute lookup can only succeed for a
    name ``dict`` itself has, so for every other name the item is looked up directly. Templates do this about
    130,000 times in the 1x render benchmark (benchmarks/render), where the raised AttributeErrors cost about
    a third of the MTA renderer's time.
    """

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)


class _MemoryBytecodeCache(jinja2.BytecodeCache):
    """Compiled templates, kept for the process: Jinja compares each with its source's checksum before use.

    Jinja's key is the template's name and file, not the environment's settings: only :func:`template_environment`
    (always the same settings) may use it.

    Compiling the roles' templates was about a fifth of the MTA renderer's time in a profile of the render benchmark.
    """

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


_BYTECODE = _MemoryBytecodeCache()


class RoleDefaultError(MailinfraError):
    """A role default that is a template cannot be rendered with the host's variables."""


class _RoleDefault:
    """A role default that is itself a template (``"{{ agent__user | default('mailinfra') }}"``), rendered with the
    host's variables when a template prints it: Ansible templates a variable where it is used, so one that is
    never printed (a filter only Ansible has) is never compiled."""

    __slots__ = ('_environment', '_name', '_role', '_source', '_variables')

    def __init__(
        self, environment: jinja2.Environment, role: str, name: str, source: str, variables: dict[str, Any]
    ) -> None:
        self._environment, self._role, self._name = environment, role, name
        self._source, self._variables = source, variables

    def __str__(self) -> str:
        try:
            return self._environment.from_string(self._source).render(self._variables)
        except jinja2.TemplateError as error:
            raise RoleDefaultError(
                f'role {self._role}: the default of {self._name} ({self._source}) cannot be rendered here: {error}; '
                'set it in the inventory'
            ) from None


def role_template_variables(
    environment: jinja2.Environment, role: str, variables: dict[str, Any], role_variables: dict[str, Any]
) -> dict[str, Any]:
    """``variables`` with ``role_variables`` (the role's defaults, its loop variable) over them, as Ansible gives
    them to ``role``'s templates: a default that is a template is rendered when a template prints it."""
    merged = {**variables, **role_variables}
    for name, value in role_variables.items():
        if isinstance(value, str) and '{{' in value:
            merged[name] = _RoleDefault(environment, role, name, value, merged)
    return merged


def template_environment(shared: Shared | None = None) -> jinja2.Environment:
    """A Jinja environment close to Ansible's for our templates (strict undefined, Ansible's trim settings).

    ``shared``: the render's shared data, which ``to_nice_json`` then checks once (``serialise.to_json``)."""
    environment = _Environment(
        loader=jinja2.FileSystemLoader(str(project_root() / 'roles')),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
        bytecode_cache=_BYTECODE,
    )
    environment.filters['comment'] = _comment
    environment.filters['to_nice_json'] = functools.partial(_to_nice_json, shared=shared)
    return environment


class MtaConfigRenderer:
    """Writes ``mta/<host>/<path>`` for every template a role lists for that host."""

    name = 'mta'
    description = "MTA configuration files per host, rendered from the roles' templates."

    def __init__(self, inventory: InventoryRenderer | None = None) -> None:
        self.inventory = inventory or InventoryRenderer()

    def render(self, context: RenderContext) -> Iterator[OutputFile]:
        environment: jinja2.Environment | None = None
        group_vars = self.inventory.group_vars(context)
        for host in context.deployment.hosts:
            variables: dict[str, Any] | None = None
            for role in self.inventory.role_vars:
                templates = getattr(role, 'templates', None)
                if templates is None or not applies_to(role, context.deployment.hosts[host].roles):
                    continue
                for template in templates(context, host):
                    if environment is None:
                        environment = template_environment(context.shared)
                    if variables is None:
                        variables = {
                            **group_vars,
                            **self.inventory.host_vars(context, host),
                            'inventory_hostname': host,
                            'ansible_managed': GENERATED_MARK,
                        }
                    role_name = template.role_template.split('/', 1)[0]
                    merged = role_template_variables(environment, role_name, variables, dict(template.variables))
                    text = environment.get_template(template.role_template).render(merged)
                    yield OutputFile(f'mta/{host}/{template.output}', text.encode())
