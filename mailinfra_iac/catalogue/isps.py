"""The built-in ISP catalogue: one YAML file per provider under ``catalogue/isps/``."""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml

from ..model.isp import AnyIspRules, IspLimits, IspProfile

DEFAULT_LIMITS = IspLimits(
    max_connections=10,
    messages_per_connection=100,
    messages_per_hour=5000,
    recipients_per_message=50,
    retry_after=900,
    backoff_messages_per_hour=500,
    backoff_retry_after=1800,
    backoff_to_normal_after=3600,
    require_tls=False,
)
"""Limits for every recipient domain that no profile matches."""


@cache
def builtin_isps() -> dict[str, IspProfile]:
    """Return the catalogue, by profile name, in name order."""
    profiles = {}
    for entry in sorted(resources.files(__package__).joinpath('isps').iterdir(), key=lambda e: e.name):
        if entry.name.endswith('.yml') and not entry.name.startswith('_'):
            profile = IspProfile.model_validate(yaml.safe_load(entry.read_text(encoding='utf-8')))
            if profile.name in profiles:
                raise ValueError(f'ISP profile "{profile.name}" is defined twice in the catalogue')
            profiles[profile.name] = profile
    return dict(sorted(profiles.items()))


@cache
def any_isp_rules() -> AnyIspRules:
    """Back-off rules for every provider (``isps/_any.yml``), checked after each provider's own."""
    text = resources.files(__package__).joinpath('isps', '_any.yml').read_text(encoding='utf-8')
    return AnyIspRules.model_validate(yaml.safe_load(text))
