"""Turn spec data into a model: pydantic errors become located, readable problems."""

from __future__ import annotations

import datetime as dt
import difflib
import json
import re
import types
import typing
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from .loader import Source
from .model import Deployment
from .problems import Path, Problem, SpecInvalid


def _unwrap(annotation: Any) -> list[Any]:
    """The concrete types inside Optional/Union/Annotated."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [inner for arg in typing.get_args(annotation) for inner in _unwrap(arg)]
    return [annotation]


def _model_at(path: Path) -> type[BaseModel] | None:
    """The model class that validates the mapping at ``path``, following field annotations."""
    candidates: list[Any] = [Deployment]
    for part in path:
        following: list[Any] = []
        for candidate in candidates:
            for kind in _unwrap(candidate):
                origin = typing.get_origin(kind)
                if isinstance(kind, type) and issubclass(kind, BaseModel) and isinstance(part, str):
                    field = kind.model_fields.get(part)
                    if field is not None:
                        following.append(field.annotation)
                elif origin is list and isinstance(part, int):
                    following.append(typing.get_args(kind)[0])
                elif origin is dict:
                    following.append(typing.get_args(kind)[1])
        candidates = following
    for candidate in candidates:
        for kind in _unwrap(candidate):
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                return kind
    return None


def _data_path(data: Any, loc: tuple[str | int, ...]) -> Path:
    """Drop pydantic's internal loc parts (union branch names and the like) that are not in the data."""
    path: list[str | int] = []
    current = data
    for part in loc:
        if (isinstance(current, dict) and part in current) or (
            isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current)
        ):
            path.append(part)
            current = current[part]  # type: ignore[index]
        elif isinstance(current, dict) and isinstance(part, str) and _model_at(tuple(path)) is not None:
            model = _model_at(tuple(path))
            if model is not None and part in model.model_fields:
                path.append(part)  # a missing field
                current = None
    return tuple(path)


def yaml_text(value: Any, limit: int = 60) -> str:
    """A value as the spec would write it (null, true, "text", [1, 2], {a: 1}), shortened past ``limit``."""
    if value is None:
        text = 'null'
    elif isinstance(value, bool):
        text = 'true' if value else 'false'
    elif isinstance(value, int | float):
        text = str(value)
    elif isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, dt.date):
        text = value.isoformat()
    else:
        try:
            text = yaml.safe_dump(value, default_flow_style=True, width=1 << 20).strip().removesuffix('...').strip()
        except yaml.YAMLError:
            text = 'a value'
    return text if len(text) <= limit else text[: limit - 3] + '...'


_TYPES = {
    'dict_type': 'a mapping',
    'model_type': 'a mapping',
    'model_attributes_type': 'a mapping',
    'list_type': 'a list',
    'tuple_type': 'a list',
    'set_type': 'a list',
    'string_type': 'text (a string)',
    'string_unicode': 'text (a string)',
    'int_type': 'a whole number',
    'int_parsing': 'a whole number',
    'int_from_float': 'a whole number',
    'float_type': 'a number',
    'float_parsing': 'a number',
    'bool_type': 'true or false',
    'bool_parsing': 'true or false',
    'date_type': 'a date such as 2026-11-28',
    'date_parsing': 'a date such as 2026-11-28',
    'date_from_datetime_parsing': 'a date such as 2026-11-28',
    'date_from_datetime_inexact': 'a date such as 2026-11-28 (without a time)',
    'datetime_type': 'a date and time such as 2026-11-28T10:00:00Z',
    'datetime_parsing': 'a date and time such as 2026-11-28T10:00:00Z',
}
"""pydantic's type errors, said in YAML terms."""

_BOUNDS = {
    'greater_than_equal': ('ge', 'at least'),
    'greater_than': ('gt', 'more than'),
    'less_than_equal': ('le', 'at most'),
    'less_than': ('lt', 'less than'),
}


def _items(value: Any, count: Any) -> str:
    unit = 'character' if isinstance(value, str) else 'entry'
    return f'{count} {unit}' if count == 1 else f'{count} {unit}s'.replace('entrys', 'entries')


def _describe(error: ErrorDetails, path: Path, data: Any) -> tuple[str, str]:
    """Message and expectation of a pydantic error in YAML terms: no Python types, reprs or class names."""
    kind = error['type']
    context: dict[str, Any] = dict(error.get('ctx') or {})
    given = error.get('input')
    if kind == 'missing':
        name = str(path[-1]) if path else ''
        model = _model_at(path[:-1]) if path else None
        field_info = model.model_fields.get(name) if model is not None else None
        description = (field_info.description if field_info is not None else None) or ''
        return f'missing required field "{name}"', f'"{name}": {description}'.rstrip(': ')
    if kind == 'extra_forbidden':
        field = str(error['loc'][-1])
        model = _model_at(path)
        known = sorted(model.model_fields) if model else []
        message = f'unknown field "{field}"'
        close = difflib.get_close_matches(field, known, n=1)
        if close:
            message += f' (did you mean "{close[0]}"?)'
        return message, 'one of: ' + ', '.join(known) if known else 'no extra fields'
    if kind in _TYPES:
        expected = _TYPES[kind]
        model = _model_at(path) if expected == 'a mapping' else None
        if model is not None:
            expected += ' with the keys ' + ', '.join(model.model_fields)
        return f'invalid value {yaml_text(given)}', expected
    if kind in _BOUNDS:
        key, words = _BOUNDS[kind]
        return f'invalid value {yaml_text(given)}', f'a number of {words} {context.get(key)}'
    if kind in ('too_short', 'string_too_short'):
        return f'{yaml_text(given)} is too short', f'at least {_items(given, context.get("min_length", 1))}'

    if kind in ('too_long', 'string_too_long'):
        return f'{yaml_text(given)} is too long', f'at most {_items(given, context.get("max_length"))}'
    if kind in ('literal_error', 'enum'):
        expected = re.sub(r"'((?:[^'\\]|\\.)*)'", r'"\1"', str(context.get('expected', '')))
        return f'invalid value {yaml_text(given)}', expected
    message = error['msg'].removeprefix('Value error, ').removeprefix('Assertion failed, ')
    if not isinstance(given, str):
        message = message.replace(f'"{given}"', yaml_text(given))  # validators quote str(value)
    message, _, expected = message.partition(', expected ')
    if message.startswith('Input should be '):
        expected, message = message.removeprefix('Input should be '), f'invalid value {yaml_text(given)}'
    return message, expected


def to_problems(error: ValidationError, source: Source) -> list[Problem]:
    problems = []
    for item in error.errors(include_url=False):
        loc = tuple(item['loc'])
        path = _data_path(source.data, loc)
        if item['type'] == 'extra_forbidden':
            path = (*path, loc[-1]) if path[-1:] != loc[-1:] else path
            line, column = source.locate_key(path)
        else:
            line, column = source.locate(path)
        message, expected = _describe(item, path if item['type'] != 'extra_forbidden' else path[:-1], source.data)
        # an unknown field's value is not what is wrong, and may be a secret under a wrong name (token: for token_file)
        value = None if item['type'] in ('missing', 'extra_forbidden') else item.get('input')
        if isinstance(value, dict | list):
            value = None
        problems.append(
            Problem(
                check='schema-' + item['type'].replace('_', '-'),
                message=message,
                path=path,
                expected=expected,
                value=value,
                file=source.file,
                line=line,
                column=column,
            )
        )
    return problems


def build_model(source: Source) -> Deployment:
    """Validate parsed data against the schema, raising :class:`SpecInvalid` with every problem."""
    try:
        return Deployment.model_validate(source.data)
    except ValidationError as error:
        raise SpecInvalid(to_problems(error, source), source.file) from None
