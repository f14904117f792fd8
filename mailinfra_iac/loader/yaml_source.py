"""YAML loading that remembers where every value came from.

libyaml (PyYAML's C parser) composes the node tree; we build plain Python data from
it ourselves so that each key and value keeps its line and column, duplicate keys are
errors, and only YAML 1.2-style booleans are booleans ("no" stays the string "no").
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

import yaml

from ..problems import Path, Problem, SpecInvalid

try:
    _BaseLoader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _BaseLoader = yaml.SafeLoader


class _Loader(_BaseLoader):
    """Safe loader with YAML 1.2-like implicit types: no yes/no/on/off booleans, no sexagesimals."""


_Loader.yaml_implicit_resolvers = {}
for _tag, _regexp, _first in (
    ('tag:yaml.org,2002:bool', r'^(?:true|True|TRUE|false|False|FALSE)$', 'tTfF'),
    ('tag:yaml.org,2002:int', r'^[-+]?(?:0|[1-9][0-9_]*|0x[0-9a-fA-F_]+|0o[0-7_]+)$', '-+0123456789'),
    ('tag:yaml.org,2002:float', r'^[-+]?(?:[0-9][0-9_]*)?\.[0-9_]+(?:[eE][-+]?[0-9]+)?$', '-+.0123456789'),
    ('tag:yaml.org,2002:null', r'^(?:~|null|Null|NULL|)$', ['~', 'n', 'N', '']),
    ('tag:yaml.org,2002:merge', r'^(?:<<)$', ['<']),
):
    _Loader.add_implicit_resolver(_tag, re.compile(_regexp), list(_first))

_SCALARS = yaml.SafeLoader  # constructs scalar values from resolved nodes


@dataclass
class Source:
    """Parsed YAML data and the position of each node, keyed by data path."""

    data: Any
    file: str | None = None
    positions: dict[Path, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: Path) -> tuple[int | None, int | None]:
        """Line and column (1-based) of the value at ``path``, or of its nearest ancestor."""
        for end in range(len(path), -1, -1):
            position = self.positions.get(path[:end])
            if position is not None:
                return position
        return None, None

    def locate_key(self, path: Path) -> tuple[int | None, int | None]:
        """Position of the mapping key that names ``path`` (falls back to the value)."""
        position = self.key_positions.get(path)
        return position if position is not None else self.locate(path)

    def problem(self, check: str, message: str, path: Path, **kwargs: Any) -> Problem:
        line, column = self.locate(path)
        return Problem(check=check, message=message, path=path, file=self.file, line=line, column=column, **kwargs)


class _Builder:
    def __init__(self, source: Source) -> None:
        self.source = source
        self.problems: list[Problem] = []
        self._scalars = _SCALARS('')

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.source.positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
        try:
            return self._scalars.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as error:
            line, column = node.start_mark.line + 1, node.start_mark.column + 1
            self.problems.append(
                Problem(
                    'yaml-value',
                    f'cannot read value: {error.problem}',
                    path,
                    file=self.source.file,
                    line=line,
                    column=column,
                    value=node.value,
                    expected='a plain YAML scalar',
                )
            )
            return None

    def _pairs(self, node: yaml.MappingNode) -> list[tuple[yaml.Node, yaml.Node]]:
        pairs: list[tuple[yaml.Node, yaml.Node]] = []
        merged: list[tuple[yaml.Node, yaml.Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag == 'tag:yaml.org,2002:merge':
                sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                for source in sources:
                    if isinstance(source, yaml.MappingNode):
                        merged.extend(self._pairs(source))
            else:
                pairs.append((key_node, value_node))
        own = {str(key.value) for key, _ in pairs}
        return [pair for pair in merged if str(pair[0].value) not in own] + pairs

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        for key_node, value_node in self._pairs(node):
            key = self.build(key_node, (*path, '<key>'))
            self.source.positions.pop((*path, '<key>'), None)
            key_position = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if not isinstance(key, str | int) or isinstance(key, bool):
                self.problems.append(
                    Problem(
                        'yaml-key',
                        f'mapping key {key!r} is not a string',
                        path,
                        file=self.source.file,
                        line=key_position[0],
                        column=key_position[1],
                        value=key,
                        expected='a string key',
                    )
                )
                continue
            if key in result:
                first = self.source.key_positions[(*path, key)]
                self.problems.append(
                    Problem(
                        'yaml-duplicate-key',
                        f'duplicate key "{key}" (first defined on line {first[0]})',
                        (*path, key),
                        file=self.source.file,
                        line=key_position[0],
                        column=key_position[1],
                        value=key,
                        expected='each key once per mapping',
                    )
                )
                continue
            self.source.key_positions[(*path, key)] = key_position
            result[key] = self.build(value_node, (*path, key))
        return result


def parse_source(text: str, file: str | None = None) -> Source:
    """Parse YAML text; raise :class:`SpecInvalid` for syntax errors, duplicate keys or an empty document."""
    source = Source(data=None, file=file)
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        message = ' '.join(part for part in (error.context, error.problem) if part)
        raise SpecInvalid(
            [
                Problem(
                    'yaml-syntax',
                    f'YAML syntax error: {message}',
                    (),
                    file=file,
                    line=line,
                    column=column,
                    expected='well-formed YAML',
                )
            ],
            file,
        ) from None
    except yaml.YAMLError as error:
        raise SpecInvalid(
            [Problem('yaml-syntax', f'YAML error: {error}', (), file=file, expected='well-formed YAML')], file
        ) from None
    if node is None:
        raise SpecInvalid(
            [
                Problem(
                    'spec-empty',
                    'the spec is empty',
                    (),
                    file=file,
                    line=1,
                    column=1,
                    expected='a mapping with version, client, dns, hosts, pools, streams and sending_domains',
                )
            ],
            file,
        )
    builder = _Builder(source)
    source.data = builder.build(node, ())
    if not isinstance(source.data, dict):
        builder.problems.append(
            source.problem(
                'spec-not-a-mapping',
                f'the document is a {type(source.data).__name__}',
                (),
                value=source.data,
                expected='a mapping with version, client, dns, hosts, ...',
            )
        )
    if builder.problems:
        raise SpecInvalid(builder.problems, file)
    return source


def load_source(path: str | os.PathLike[str]) -> Source:
    """Read and parse a spec file."""
    name = str(path)
    try:
        text = FsPath(path).read_text(encoding='utf-8')
    except FileNotFoundError:
        raise SpecInvalid(
            [Problem('spec-unreadable', 'no such file', (), file=name, expected='a path to a YAML spec')], name
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise SpecInvalid(
            [
                Problem(
                    'spec-unreadable',
                    f'cannot read the file: {reason}',
                    (),
                    file=name,
                    expected='a readable UTF-8 YAML file',
                )
            ],
            name,
        ) from None
    return parse_source(text, name)
