"""Reading specs: YAML with the position of every node."""

from .yaml_source import Source, load_source, parse_source

__all__ = ['Source', 'load_source', 'parse_source']
