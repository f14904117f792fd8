"""YAML loading that remembers where every value came from.

libyaml (PyYAML's C parser) composes the node tree; we build plain Python data from
it ourselves so that each key and value keeps its line and column, duplicate keys are
errors, and only YAML 1.2-style booleans are booleans ("no" stays the string "no").
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
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

_SCALARS = yaml.SafeLoader  # constructs scalar values that the fast paths below do not cover
_STR = 'tag:yaml.org,2002:str'


def _int(text: str) -> int:
    text = text.replace('_', '')
    sign = -1 if text.startswith('-') else 1
    digits = text.lstrip('+-')
    if digits.startswith('0x'):
        return sign * int(digits[2:], 16)
    if digits.startswith('0o'):
        return sign * int(digits[2:], 8)
    return sign * int(digits)


_FAST_SCALARS: dict[str, Callable[[str], Any]] = {
    _STR: str,
    'tag:yaml.org,2002:int': _int,
    'tag:yaml.org,2002:float': lambda text: float(text.replace('_', '')),
    'tag:yaml.org,2002:bool': lambda text: text.lower() == 'true',
    'tag:yaml.org,2002:null': lambda text: None,
}
"""Plain scalars of the implicit types we resolve, built without the constructor's overhead."""


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _pairs(node: yaml.MappingNode) -> list[tuple[yaml.Node, yaml.Node]]:
    """Key/value node pairs of a mapping with YAML merge keys ("<<") applied; own keys win, then earlier merges."""
    pairs: list[tuple[yaml.Node, yaml.Node]] = []
    merged: list[tuple[yaml.Node, yaml.Node]] = []
    for key_node, value_node in node.value:
        if key_node.tag == 'tag:yaml.org,2002:merge':
            sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for source in sources:
                if isinstance(source, yaml.MappingNode):
                    merged.extend(_pairs(source))
        else:
            pairs.append((key_node, value_node))
    if not merged:
        return pairs
    seen = {str(key.value) for key, _ in pairs}
    kept = []
    for pair in merged:
        name = str(pair[0].value)
        if name not in seen:
            seen.add(name)
            kept.append(pair)
    return kept + pairs


MAX_DEPTH = 64
"""Deepest nesting of collections a spec may have (a real spec needs about 8)."""
ALIAS_BUDGET = 10_000
"""Nodes that aliases may add beyond the document's own (at least as many again as it has)."""


def _shape_problem(root: yaml.Node, file: str | None) -> Problem | None:
    """Refuse what would make building exhaust the stack or memory: deep nesting, recursive or exploding aliases.

    One iterative pass over the node graph; aliases are shared nodes, so sizes are computed once per node.
    """
    if isinstance(root, yaml.ScalarNode):
        return None
    depth_of: dict[int, int] = {}
    size_of: dict[int, int] = {}  # collections only; a scalar counts 1
    scalars = 0
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            size_of[key] = 1 + sum(size_of.get(id(child), 1) for child in _children(node))
            continue
        if key in on_path:
            return _located(
                node, file, 'yaml-alias', 'an alias refers to a collection that contains it', 'no recursive aliases'
            )
        if key in size_of and depth_of[key] >= depth:
            continue  # an alias of a node already measured at this depth or deeper
        depth_of[key] = depth
        on_path.add(key)
        stack.append((node, depth, True))
        for child in reversed(_children(node)):
            if depth + 1 > MAX_DEPTH:
                return _located(
                    child,
                    file,
                    'yaml-too-deep',
                    f'collections nested deeper than {MAX_DEPTH} levels',
                    f'at most {MAX_DEPTH} levels',
                )
            if isinstance(child, yaml.ScalarNode):
                scalars += 1
            else:
                stack.append((child, depth + 1, False))
    distinct = len(size_of) + scalars
    budget = max(ALIAS_BUDGET, distinct)
    if size_of[id(root)] - distinct > budget:
        worst = min(
            (node for node in _collections(root) if size_of[id(node)] > budget), key=lambda node: size_of[id(node)]
        )
        return _located(
            worst,
            file,
            'yaml-alias',
            f'aliases expand this value to {size_of[id(worst)]:,} nodes, more than the {budget:,} they may add',
            'aliases that repeat a value a few times, not expand it exponentially',
        )
    return None


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [child for pair in node.value for child in pair]
    return []


def _collections(root: yaml.Node) -> list[yaml.Node]:
    """Every distinct collection node of the graph (aliases visited once)."""
    seen: set[int] = set()
    found = []
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen or isinstance(node, yaml.ScalarNode):
            continue
        seen.add(id(node))
        found.append(node)
        stack.extend(_children(node))
    return found


def _located(node: yaml.Node, file: str | None, check: str, message: str, expected: str) -> Problem:
    line, column = _mark(node)
    return Problem(check, message, (), file=file, line=line, column=column, expected=expected)


@dataclass
class Source:
    """Parsed YAML data and its node tree, which tells where each value came from."""

    data: Any
    file: str | None = None
    root: yaml.Node | None = field(default=None, repr=False)
    _keys: dict[int, dict[str, tuple[yaml.Node, yaml.Node]]] = field(default_factory=dict, repr=False, compare=False)

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name == 'root' and '_keys' in self.__dict__:
            self._keys.clear()  # dropping the tree drops its key indexes with it

    def _key_index(self, node: yaml.MappingNode) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """Key text -> (key node, value node) of a mapping, built once: locating a problem costs its depth."""
        index = self._keys.get(id(node))
        if index is None:
            index = {
                key_node.value: (key_node, value_node)
                for key_node, value_node in _pairs(node)
                if isinstance(key_node, yaml.ScalarNode)
            }
            self._keys[id(node)] = index
        return index

    def _walk(self, path: Path) -> list[tuple[yaml.Node | None, yaml.Node]]:
        """(key node, value node) for each prefix of ``path`` that exists in the document."""
        if self.root is None:
            return []
        trail: list[tuple[yaml.Node | None, yaml.Node]] = [(None, self.root)]
        node = self.root
        for part in path:
            step: tuple[yaml.Node | None, yaml.Node] | None = None
            if isinstance(node, yaml.MappingNode):
                step = self._key_index(node).get(str(part))
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
                step = (None, node.value[part])
            if step is None:
                break
            trail.append(step)
            node = step[1]
        return trail

    def locate(self, path: Path) -> tuple[int | None, int | None]:
        """Line and column (1-based) of the value at ``path``, or of its nearest ancestor."""
        trail = self._walk(path)
        return _mark(trail[-1][1]) if trail else (None, None)

    def locate_key(self, path: Path) -> tuple[int | None, int | None]:
        """Position of the mapping key that names ``path`` (falls back to the value or an ancestor)."""
        trail = self._walk(path)
        if len(trail) == len(path) + 1 and trail[-1][0] is not None:
            key_node = trail[-1][0]
            return _mark(key_node)
        return _mark(trail[-1][1]) if trail else (None, None)

    def problem(self, check: str, message: str, path: Path, **kwargs: Any) -> Problem:
        line, column = self.locate(path)
        return Problem(check=check, message=message, path=path, file=self.file, line=line, column=column, **kwargs)


class _Builder:
    """Plain data from the node tree; reports bad keys and duplicates, nothing else."""

    def __init__(self, file: str | None) -> None:
        self.file = file
        self.problems: list[Problem] = []
        self._scalars = _SCALARS('')

    def _problem(self, check: str, message: str, path: Path, node: yaml.Node, **kwargs: Any) -> None:
        line, column = _mark(node)
        self.problems.append(Problem(check, message, path, file=self.file, line=line, column=column, **kwargs))

    def build(self, node: yaml.Node, path: Path) -> Any:
        if isinstance(node, yaml.ScalarNode):
            fast = _FAST_SCALARS.get(node.tag)
            if fast is not None and (node.style is None or node.tag == _STR):
                try:
                    return fast(node.value)
                except ValueError:
                    pass  # e.g. "0x" alone: let the constructor report it
            try:
                return self._scalars.construct_object(node, deep=True)
            except (yaml.constructor.ConstructorError, ValueError) as error:
                # ValueError: an integer beyond Python's conversion limit (4300 digits)
                problem = error.problem if isinstance(error, yaml.MarkedYAMLError) else str(error).split(';')[0]
                self._problem(
                    'yaml-value',
                    f'cannot read value: {problem}',
                    path,
                    node,
                    value=node.value,
                    expected='a plain YAML scalar',
                )
                return None
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
        result: dict[Any, Any] = {}
        first_seen: dict[Any, yaml.Node] = {}
        for key_node, value_node in _pairs(node):  # type: ignore[arg-type]
            key = self.build(key_node, path)
            if not isinstance(key, str | int) or isinstance(key, bool):
                self._problem(
                    'yaml-key',
                    f'mapping key {key!r} is not a string',
                    path,
                    key_node,
                    value=key,
                    expected='a string key',
                )
                continue
            if key in first_seen:
                line = _mark(first_seen[key])[0]
                self._problem(
                    'yaml-duplicate-key',
                    f'duplicate key "{key}" (first defined on line {line})',
                    (*path, key),
                    key_node,
                    value=key,
                    expected='each key once per mapping',
                )
                continue
            first_seen[key] = key_node
            result[key] = self.build(value_node, (*path, key))
        return result


def parse_source(text: str, file: str | None = None) -> Source:
    """Parse YAML text; raise :class:`SpecInvalid` for syntax errors, duplicate keys or an empty document."""
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
    shape = _shape_problem(node, file)
    if shape is not None:
        raise SpecInvalid([shape], file)
    builder = _Builder(file)
    source = Source(builder.build(node, ()), file, node)
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
