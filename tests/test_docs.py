"""Docs that are generated must be current; every model field must be described."""

from __future__ import annotations

from pydantic import BaseModel

from mailinfra_iac.model import Deployment
from mailinfra_iac.model.reference import _models, reference_markdown

from .conftest import ROOT


def test_spec_reference_is_current() -> None:
    assert (ROOT / 'docs' / 'spec.md').read_text() == reference_markdown(), (
        'docs/spec.md is stale: python -m mailinfra_iac.model.reference > docs/spec.md'
    )


def test_every_field_is_described() -> None:
    models: dict[str, type[BaseModel]] = {}
    _models(Deployment, models)
    missing = [
        f'{name}.{field}'
        for name, model in models.items()
        for field, info in model.model_fields.items()
        if not info.description
    ]
    assert missing == []


def test_readme_library_example_runs() -> None:
    readme = (ROOT / 'README.md').read_text()
    start = readme.index('```python\n') + len('```python\n')
    code = readme[start : readme.index('```', start)]
    namespace: dict[str, object] = {}
    exec(compile(code, 'README.md', 'exec'), namespace)
