"""Helpers shared by the command modules."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .. import api
from ..checks.addresses import terraform_address_problems
from ..problems import MailinfraError, format_path
from ..render import default_registry


def renderer_names(text: str) -> list[str]:
    """``--only``: comma-separated renderer names, each known, in order, without repeats (a usage error if not)."""
    known = default_registry().names()
    names = list(dict.fromkeys(name.strip() for name in text.split(',')))
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        shown = ', '.join(f'"{name}"' for name in unknown) or 'none'
        raise argparse.ArgumentTypeError(
            f'unknown renderer name(s) {shown} in "{text}"; choose from: {", ".join(known)} (comma-separated)'
        )
    return names


def addresses_from(path: str | None, spec: api.Spec | None = None) -> dict[str, str]:
    """Addresses Terraform allocated: the ``ip_addresses`` output of ``terraform output -json``.

    With ``spec``, checked against it like the spec itself (every allocated address present, IPv4, globally
    routable where published, the spec's own addresses unchanged); any problem is an error naming file and key.
    """
    if path is None:
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding='utf-8'))
        output = data.get('ip_addresses', data)
        values = output.get('value', output)
        if not isinstance(values, dict):
            raise ValueError('expected {"ip_addresses": {"value": {IP_ID: ADDRESS}}} from `terraform output -json`')
    except (OSError, ValueError, AttributeError) as error:
        raise MailinfraError(f'cannot read Terraform outputs from {path}: {error}') from None
    if spec is not None:
        problems = terraform_address_problems(spec.deployment, spec.facts, values, path)
        if problems:
            lines = '\n'.join(f'  - {format_path(p.path)}: {p.message}; expected {p.expected}' for p in problems)
            raise MailinfraError(
                f'Terraform outputs in {path} do not fit the spec ({len(problems)} error(s)):\n{lines}'
            )
    bad = sorted(key for key, value in values.items() if not isinstance(value, str))
    if bad:
        raise MailinfraError(f'Terraform outputs in {path}: ip_addresses.value.{bad[0]} is not a string')
    return dict(values)
