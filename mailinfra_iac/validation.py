"""Turn spec data into a model: pydantic errors become located, readable problems."""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

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


def _describe(error: ErrorDetails, path: Path, data: Any) -> tuple[str, str]:
    kind = error['type']
    message = error['msg']
    if message.startswith('Value error, '):
        message = message[len('Value error, ') :]
    expected = ''
    if kind == 'missing':
        message = f'missing required field "{path[-1]}"' if path else 'missing required field'
        model = _model_at(path[:-1]) if path else None
        field_info = model.model_fields.get(str(path[-1])) if model is not None else None
        expected = (field_info.description if field_info is not None else None) or 'a value'
    elif kind == 'extra_forbidden':
        field = str(error['loc'][-1])
        model = _model_at(path)
        known = sorted(model.model_fields) if model else []
        message = f'unknown field "{field}"'
        close = difflib.get_close_matches(field, known, n=1)
        if close:
            message += f' (did you mean "{close[0]}"?)'
        expected = 'one of: ' + ', '.join(known) if known else 'no extra fields'
    elif kind == 'literal_error' or message.startswith('Input should be '):
        expected = message.removeprefix('Input should be ')
        message = f'invalid value {error["input"]!r}'
    elif 'expected' in message:
        message, _, expected = message.partition(', expected ')
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
        value = None if item['type'] in ('missing',) else item.get('input')
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
