"""The library API for scripts: load a spec, inspect its model and facts, render it.

from mailinfra_iac import load_spec, render
spec = load_spec('examples/saas-transactional.yml')
for ip in spec.facts.ips:
    print(ip.address, ip.ptr, ip.pool)
render(spec, 'out/acme')
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

# for applications that send through the streams: signed return path, List-Unsubscribe and id headers (docs/feedback.md)
from mailinfra_agent.feedback.headers import MESSAGE_POLICY as MESSAGE_POLICY
from mailinfra_agent.feedback.headers import envelope_sender as envelope_sender
from mailinfra_agent.feedback.headers import id_header as id_header
from mailinfra_agent.feedback.headers import list_unsubscribe_headers as list_unsubscribe_headers
from mailinfra_agent.feedback.signing import read_key_file as read_key_file

from .batch import gc_paused
from .checks import CheckContext, CheckRegistry, default_registry
from .checks.addresses import terraform_address_problems
from .dkim import KeyStore
from .dkim.source import DkimSource, KeyStoreDkimSource
from .facts import Facts, derive
from .loader import Source, load_source, parse_source
from .model import Deployment
from .problems import Problem, SpecInvalid, sort_problems
from .render import OutputFile, RenderContext, RendererRegistry
from .render import default_registry as default_renderers
from .render.output import write_tree


@dataclass(frozen=True)
class Spec:
    """A valid deployment with its derived facts and the warnings and advice it raised."""

    deployment: Deployment
    facts: Facts
    problems: list[Problem] = field(default_factory=list)
    source: Source | None = None

    @property
    def name(self) -> str:
        return Path(self.source.file).name if self.source and self.source.file else 'spec.yml'


def _check(source: Source, deployment: Deployment, as_of: dt.date | None, checks: CheckRegistry | None) -> Spec:
    facts = derive(deployment, as_of)
    problems = sort_problems((checks or default_registry()).run(CheckContext(deployment, facts, source)))
    if any(problem.severity == 'error' for problem in problems):
        raise SpecInvalid(problems, source.file)
    source.root = None  # every problem is located by now; let the YAML node tree go
    return Spec(deployment, facts, problems, source)


def spec_from_source(source: Source, *, as_of: dt.date | None = None, checks: CheckRegistry | None = None) -> Spec:
    from .validation import build_model

    with gc_paused():
        return _check(source, build_model(source), as_of, checks)


def load_spec(
    path: str | os.PathLike[str], *, as_of: dt.date | None = None, checks: CheckRegistry | None = None
) -> Spec:
    """Read, validate and check a spec file. Raises :class:`SpecInvalid` listing every error."""
    with gc_paused():
        return spec_from_source(load_source(path), as_of=as_of, checks=checks)


def parse_spec(
    text: str, file: str | None = None, *, as_of: dt.date | None = None, checks: CheckRegistry | None = None
) -> Spec:
    """Like :func:`load_spec`, from YAML text."""
    with gc_paused():
        return spec_from_source(parse_source(text, file), as_of=as_of, checks=checks)


def validate(path: str | os.PathLike[str], *, as_of: dt.date | None = None) -> list[Problem]:
    """Every problem of a spec file (errors, warnings, advice); never raises for a bad spec."""
    try:
        return load_spec(path, as_of=as_of).problems
    except SpecInvalid as invalid:
        return invalid.problems


def render_files(
    spec: Spec,
    *,
    renderers: Iterable[str] | None = None,
    registry: RendererRegistry | None = None,
    addresses: dict[str, str] | None = None,
    dkim: DkimSource | None = None,
) -> dict[str, OutputFile]:
    """Render in memory: relative path -> file. ``dkim`` supplies the public keys for DNS records.

    ``addresses``: the ones Terraform allocated, IP id (or ``host_NAME``) -> IPv4 address, as in the
    ``ip_addresses`` output; each one given is checked as ``mailinfra render --terraform-output`` checks it
    (:class:`SpecInvalid`), those not given stay placeholders.
    """
    if addresses:
        given = [
            problem
            for problem in terraform_address_problems(spec.deployment, spec.facts, addresses, 'addresses')
            if problem.path[-1] in addresses
        ]
        if given:
            raise SpecInvalid(given, 'addresses')
    context = RenderContext(spec.deployment, spec.facts, spec.name, addresses or {}, dkim)
    with gc_paused():
        files = (registry or default_renderers()).render(context, renderers)
        # Free the renderers' shared results while the collector is paused: its next collection would walk them all.
        context.release()
    return files


def render(
    spec: Spec,
    out_dir: str | os.PathLike[str],
    *,
    renderers: Iterable[str] | None = None,
    registry: RendererRegistry | None = None,
    addresses: dict[str, str] | None = None,
    dkim: DkimSource | None = None,
    force: bool = False,
) -> Path:
    """Render every (or the named) renderer into ``out_dir``, replacing it atomically."""
    files = render_files(spec, renderers=renderers, registry=registry, addresses=addresses, dkim=dkim)
    return write_tree(files, out_dir, force=force)


def keystore_dkim(spec: Spec, keys_dir: str | os.PathLike[str] | None = None) -> DkimSource:
    """DKIM public keys from the key store (``$MAILINFRA_KEYS_DIR`` or ``~/.local/share/mailinfra/keys``)."""
    return KeyStoreDkimSource(KeyStore(Path(keys_dir) if keys_dir is not None else None), spec.deployment.client.name)
