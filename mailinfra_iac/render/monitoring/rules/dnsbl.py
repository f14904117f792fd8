"""Blocklists: a listing (severity from the catalogue, on the metric), a listing no answer has confirmed for a while
(kept as last seen), a zone not working here, a failed run.

Metrics come from ``mailinfra-agent dnsbl check`` on the monitoring host (textfile ``mailinfra_dnsbl.prom``).
"""

from __future__ import annotations

from dataclasses import dataclass

from mailinfra_agent.dnsbl.catalogue import load_catalogue

from ...base import RenderContext
from .base import Rule, duration

NAME = 'dnsbl'

LISTED_EXPR = (
    'label_replace(label_replace('
    'min without (subject) (mailinfra_dnsbl_listed * on (instance, subject, subject_kind, zone) group_left ()'
    ' mailinfra_dnsbl_listed_since_timestamp_seconds) or min without (subject) (mailinfra_dnsbl_listed),'
    ' "subject", "$1", "subject_group", "(.+)"), "subject_group", "", "", "")'
)
"""One alert per subject group (an IP, or a registered domain with the names below it that a wildcard lists: the
DBL's), zone and code; its ``subject`` is the group. The value is the earliest first-seen timestamp (1 while the
history has none)."""

LISTED_NAMES = (
    '{{ range $i, $s := printf "mailinfra_dnsbl_listed{instance=%q,zone=%q,code=%q,subject_group=%q}" '
    '$labels.instance $labels.zone $labels.code $labels.subject | query | sortByLabel "subject" }}'
    '{{ if $i }}, {{ end }}{{ $s.Labels.subject }}{{ end }}'
)
"""The names of the group listed with that code (the per-name series)."""

UNCONFIRMED_RUNS = 3
"""A listing kept as last seen alerts once no answer has confirmed it for this many runs of the timer."""

UNKNOWN = 'code {{ $labels.code }} (not documented here)'


def _text(text: str) -> str:
    """Literal text inside a Go template: ``{{`` (from a spec's custom zone, say) cannot open an action."""
    return text.replace('{{', '{{ "{{" }}')


def _quote(text: str) -> str:
    """A Go template string literal."""
    return '"' + text.replace('\\', '\\\\').replace('"', '\\"') + '"'


@dataclass(frozen=True)
class _Zone:
    zone: str
    decoder: str
    codes: dict[str, str]
    delisting_url: str | None


def _zones(context: RenderContext) -> list[_Zone]:
    """The selected catalogue zones (the agent's catalogue) and the spec's custom zones, by zone name."""
    monitoring = context.deployment.monitoring
    catalogue = load_catalogue()
    selected = monitoring.dnsbl_zone_names()
    names = selected if selected is not None else [zone.zone for zone in catalogue.default_zones()]
    found: dict[str, _Zone] = {}
    for name in names:
        zone = catalogue.get(name)
        # an unknown zone is a validation error (dnsbl-zone); allowlists and reputation scores are never listings
        if zone is not None and zone.section in ('listing', 'key_only'):
            found[name] = _Zone(zone.zone, zone.decoder, dict(zone.codes), zone.delisting_url)
    for custom in monitoring.dnsbl.custom_zones:
        found[custom.zone] = _Zone(custom.zone, custom.decoder, dict(custom.listings), custom.delisting_url)
    return [found[name] for name in sorted(found)]


def _by_zone(branches: list[tuple[str, str]], otherwise: str) -> str:
    """A Go template choosing a text by ``$labels.zone``."""
    if not branches:
        return otherwise
    chain = '{{ else '.join(f'if eq $labels.zone {_quote(zone)} }}}}{text}' for zone, text in branches)
    return '{{ ' + chain + '{{ else }}' + otherwise + '{{ end }}'


def meaning_template(context: RenderContext) -> str:
    """A Go template giving the documented meaning of ``$labels.code`` in ``$labels.zone``."""
    branches: list[tuple[str, str]] = []
    for zone in _zones(context):
        if zone.decoder == 'bitmask':
            bits = ', '.join(f'{bit} = {_text(meaning)}' for bit, meaning in sorted(zone.codes.items(), key=_bit))
            branches.append((zone.zone, f'bitmask answer {{{{ $labels.code }}}}; bits: {bits}'))
        else:
            codes = [
                f'if eq $labels.code {_quote(code)} }}}}{_text(text)}' for code, text in sorted(zone.codes.items())
            ]
            branches.append((zone.zone, '{{ ' + '{{ else '.join(codes) + '{{ else }}' + UNKNOWN + '{{ end }}'))
    return _by_zone(branches, UNKNOWN)


def _bit(item: tuple[str, str]) -> int:
    return int(item[0]) if item[0].isascii() and item[0].isdigit() else 0


def delisting_template(context: RenderContext) -> str:
    """A Go template giving the delisting page of ``$labels.zone``."""
    branches = [(zone.zone, zone.delisting_url) for zone in _zones(context) if zone.delisting_url]
    return _by_zone([(zone, _text(url)) for zone, url in branches if url is not None], 'unknown')


def rules(context: RenderContext) -> list[Rule]:
    interval = context.deployment.monitoring.dnsbl_check_interval()
    limit = UNCONFIRMED_RUNS * interval + interval // 2  # half a run of slack: error runs end later than answered ones
    return [
        Rule(
            'MailinfraDnsblListed',
            LISTED_EXPR,
            0,
            {},
            {
                'summary': '{{ $labels.subject }} is listed on {{ $labels.zone }}',
                'description': 'The {{ $labels.subject_kind }} {{ $labels.subject }} is listed on {{ $labels.zone }} '
                '(answer {{ $labels.code }}), {{ if gt $value 1.0 }}listed since {{ $value | humanizeTimestamp }}'
                '{{ else }}since an unknown time{{ end }}.',
                'meaning': meaning_template(context),
                'delisting_url': delisting_template(context),
                'listed_since': '{{ if gt $value 1.0 }}{{ $value | humanizeTimestamp }}{{ else }}unknown{{ end }}',
                'listed_names': LISTED_NAMES,
            },
        ),
        Rule(
            'MailinfraDnsblListingUnconfirmed',
            'mailinfra_dnsbl_last_run_timestamp_seconds - on (instance) group_right ()'
            f' mailinfra_dnsbl_listed_confirmed_timestamp_seconds > {limit}',
            0,
            {'severity': 'warning'},
            {
                'summary': 'The listing of {{ $labels.subject }} on {{ $labels.zone }} is unconfirmed for '
                '{{ $value | humanizeDuration }}',
                'description': 'The blocklist runs of the last {{ $value | humanizeDuration }} got no answer for '
                '{{ $labels.subject }} from {{ $labels.zone }} (error answers, the zone not working here, a missing '
                f'key): its listing is kept as last seen, neither confirmed nor cleared, for over {UNCONFIRMED_RUNS} '
                f'runs ({duration(UNCONFIRMED_RUNS * interval)}).',
            },
        ),
        Rule(
            'MailinfraDnsblZoneNotWorking',
            'mailinfra_dnsbl_zone_working == 0',
            0,
            {'severity': 'warning'},
            {
                'summary': 'Blocklist zone {{ $labels.zone }} is not working here',
                'description': 'The test point of {{ $labels.zone }} did not answer as documented (a refusing or '
                'public resolver, a zone needing registration or a key, or errors): its answers are not trusted, '
                'so listings there are not seen.',
            },
        ),
        Rule(
            'MailinfraDnsblCheckFailed',
            'mailinfra_dnsbl_run_success == 0',
            0,
            {'severity': 'warning'},
            {
                'summary': 'The blocklist check on {{ $labels.host }} failed',
                'description': 'The last run of mailinfra-agent dnsbl check on {{ $labels.host }} did not complete: '
                'listings may be missed.',
            },
        ),
    ]
