"""Generate the spec reference (docs/spec.md) from the model's field descriptions."""

from __future__ import annotations

import inspect
import types
import typing
from importlib import resources
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from .base import format_duration
from .deployment import Deployment
from .isp import IspProfile

_FRIENDLY = {
    '_slug': 'name',
    '_dns_name': 'dns-name',
    '_host_name': 'host-name',
    'parse_email': 'email',
    '_ipv4': 'ipv4',
    '_network': 'cidr',
    'parse_duration': 'duration',
    'mx_pattern': 'mx-pattern',
    'sasl_user': 'sasl-user',
}


def _type_name(annotation: Any) -> str:
    """A readable, deterministic name for a field type."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        for meta in annotation.__metadata__:
            function = getattr(meta, 'func', None)
            if function is not None and function.__name__ in _FRIENDLY:
                return _FRIENDLY[function.__name__]
        return _type_name(args[0])
    if origin is typing.Literal:
        return ' \\| '.join(repr(arg) for arg in args)
    if origin in (typing.Union, types.UnionType):
        return ' \\| '.join(_type_name(arg) for arg in args)
    if origin is not None:
        return f'{getattr(origin, "__name__", str(origin))}[{", ".join(_type_name(arg) for arg in args)}]'
    if annotation is type(None):
        return 'null'
    return getattr(annotation, '__name__', str(annotation))


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return 'required'
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
        return f'`{value!r}`' if not isinstance(value, BaseModel) else 'see below'
    if field.default is PydanticUndefined:
        return ''
    return f'`{field.default!r}`'


def _models(model: type[BaseModel], seen: dict[str, type[BaseModel]]) -> None:
    if model.__name__ in seen:
        return
    seen[model.__name__] = model
    for field in model.model_fields.values():
        stack = [field.annotation]
        while stack:
            current = stack.pop()
            if isinstance(current, type) and issubclass(current, BaseModel):
                _models(current, seen)
            stack.extend(typing.get_args(current))


def catalogue_profiles() -> list[IspProfile]:
    """The built-in ISP profiles, read as data from the catalogue's YAML files (in name order)."""
    folder = resources.files('mailinfra_iac').joinpath('catalogue', 'isps')
    profiles = [
        IspProfile.model_validate(yaml.safe_load(entry.read_text(encoding='utf-8')))
        for entry in folder.iterdir()
        if entry.name.endswith('.yml') and not entry.name.startswith('_')  # _any.yml: rules, not a profile
    ]
    return sorted(profiles, key=lambda profile: profile.name)


def _profiles_section() -> list[str]:
    lines = [
        '## ISP profile names',
        '',
        "Names that `isp_profiles` and a stream's `isp_overrides` and `recipient_mix` accept without further "
        'description: the built-in catalogue. Another name under `isp_profiles` defines a new provider and needs '
        '`display_name` and `recipient_domains` or `mx_patterns`.',
        '',
        '| name | provider | recipient domains | MX host names |',
        '|---|---|---|---|',
    ]
    for profile in catalogue_profiles():
        domains = ', '.join(profile.recipient_domains[:4]) + (', ...' if len(profile.recipient_domains) > 4 else '')
        lines.append(f'| `{profile.name}` | {profile.display_name} | {domains} | {", ".join(profile.mx_patterns)} |')
    lines.append('')
    return lines


def reference_markdown() -> str:
    models: dict[str, type[BaseModel]] = {}
    _models(Deployment, models)
    lines = [
        '# Spec reference',
        '',
        'Generated from the model by `python -m mailinfra_iac.model.reference > docs/spec.md`; do not edit.',
        'Durations are written like `90s`, `10m`, `2h`, `4d12h`. Unknown keys are errors.',
        '',
    ]
    for name, model in models.items():
        lines += [
            f'## {name}',
            '',
            inspect.cleandoc(model.__doc__ or ''),
            '',
            '| field | type | default | description |',
            '|---|---|---|---|',
        ]
        for field_name, field in model.model_fields.items():
            description = (field.description or '').replace('|', '\\|')
            # pydantic moves a plain Annotated type's validators into field.metadata (Duration -> int)
            annotation = typing.Annotated[field.annotation, *field.metadata] if field.metadata else field.annotation
            kind = _type_name(annotation)
            default = _default(field)
            if kind == 'duration' and isinstance(field.default, int):
                default = f'`{format_duration(field.default)}`'
            lines.append(f'| `{field_name}` | `{kind}` | {default} | {description} |')
        lines.append('')
    lines += _profiles_section()
    return '\n'.join(lines)


if __name__ == '__main__':
    print(reference_markdown(), end='')
