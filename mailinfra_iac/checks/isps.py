"""ISP profiles: names must exist, throttles must be in range, mixes must add up."""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from ..catalogue.isps import builtin_isps
from ..model import THROTTLE_RANGES, IspOverride
from ..problems import Path, Problem
from .base import Check, CheckContext


def _overrides(ctx: CheckContext) -> Iterator[tuple[Path, str, IspOverride]]:
    for name, override in ctx.deployment.isp_profiles.items():
        yield ('isp_profiles', name), name, override
    for stream_name, stream in ctx.deployment.streams.items():
        for name, override in stream.isp_overrides.items():
            yield ('streams', stream_name, 'isp_overrides', name), name, override


def suggest(name: str, candidates: list[str]) -> str | None:
    """The candidate a misspelt or shortened profile name most likely means ("gmx" -> "gmx_webde"), never itself."""
    parts = [other for other in candidates if name in other.split('_') or other.startswith(name + '_')]
    if parts:
        return parts[0]
    close = difflib.get_close_matches(name, candidates, n=1)
    return close[0] if close else None


def unknown_isp_profile(ctx: CheckContext) -> Iterator[Problem]:
    catalogue = builtin_isps()
    known = sorted(ctx.facts.isps)
    for path, name, override in _overrides(ctx):
        if name in catalogue:
            continue
        if path[0] == 'isp_profiles' and override.display_name and (override.recipient_domains or override.mx_patterns):
            continue  # a new provider, fully described
        close = suggest(name, [other for other in known if other != name])
        hint = f' (did you mean "{close}"?)' if close else ''
        yield ctx.problem(
            'unknown-isp-profile',
            f'unknown ISP profile "{name}"{hint}',
            path,
            at_key=True,
            expected='a catalogue profile (' + ', '.join(sorted(catalogue)) + ') or, under isp_profiles, '
            'a new one with display_name and recipient_domains or mx_patterns',
            value=name,
        )
    for stream_name, stream in ctx.deployment.streams.items():
        for name in stream.recipient_mix or {}:
            if name not in known and name not in stream.isp_overrides:
                yield ctx.problem(
                    'unknown-isp-profile',
                    f'recipient_mix names unknown ISP profile "{name}"',
                    ('streams', stream_name, 'recipient_mix', name),
                    at_key=True,
                    expected='one of: ' + ', '.join(known),
                    value=name,
                )


def throttle_out_of_range(ctx: CheckContext) -> Iterator[Problem]:
    for path, _, override in _overrides(ctx):
        for field, (low, high) in THROTTLE_RANGES.items():
            value = getattr(override.limits, field)
            if value is not None and not low <= value <= high:
                yield ctx.problem(
                    'throttle-out-of-range',
                    f'{field} {value} is out of range',
                    (*path, 'limits', field),
                    expected=f'{low} to {high}',
                    value=value,
                )
    for stream_name, stream in ctx.deployment.streams.items():
        mix = stream.recipient_mix or {}
        total = sum(mix.values())
        for name, share in mix.items():
            if not 0 <= share <= 1:
                yield ctx.problem(
                    'throttle-out-of-range',
                    f'recipient share {share} of "{name}" is out of range',
                    ('streams', stream_name, 'recipient_mix', name),
                    expected='a fraction from 0 to 1',
                    value=share,
                )
        if total > 1.0001:
            yield ctx.problem(
                'throttle-out-of-range',
                f'recipient shares add up to {total:.2f}',
                ('streams', stream_name, 'recipient_mix'),
                expected='shares that add up to at most 1 (the rest is "other")',
                value=round(total, 4),
            )


def isp_domain_overlap(ctx: CheckContext) -> Iterator[Problem]:
    """A recipient domain of two providers: mail to it gets one provider's limits, the other's are silently unused."""
    for path, name, override in _overrides(ctx):
        if path[0] == 'isp_profiles':
            domains = {other: profile.recipient_domains for other, profile in ctx.facts.isps.items()}
        else:
            isps = ctx.facts.streams[str(path[1])].isps
            domains = {other: list(isp.recipient_domains) for other, isp in isps.items()}
        for index, domain in enumerate(override.recipient_domains):
            others = [other for other, listed in sorted(domains.items()) if other != name and domain in listed]
            if others:
                yield ctx.problem(
                    'isp-domain-overlap',
                    f'recipient domain {domain} of provider "{name}" belongs to "{others[0]}" too: its mail would get '
                    "one provider's limits and back-off rules, the other's would be unused",
                    (*path, 'recipient_domains', index),
                    expected=f'each recipient domain under one provider (change "{others[0]}" instead)',
                    value=domain,
                )


CHECKS = (
    Check('unknown-isp-profile', 'error', 'Overrides and mixes must name known providers.', unknown_isp_profile),
    Check('throttle-out-of-range', 'error', 'Throttle values inside their accepted ranges.', throttle_out_of_range),
    Check('isp-domain-overlap', 'error', 'A recipient domain listed under two providers.', isp_domain_overlap),
)
