"""Shaping actions of the Postfix hosts: a suspension that lasts too long, and any IP taken out of rotation.

Metrics come from the agent's exporter (``mailinfra-agent shaping``, read from its store):
``mailinfra_shaping_active{stream,ip,isp,action}`` (1 while active; ``isp="*"`` for ``suspend_ip``) and
``mailinfra_shaping_active_since_seconds`` (unix time the action began).

"Too long" is longer than the longest ``suspend`` rule of that stream and provider (plus ``GRACE``): an action
lasts its rule's ``duration`` after the last match, so an older one was extended by new matches (the provider
keeps refusing) or was never undone (the service stopped, its state still says active). Providers without a
``suspend`` rule get the deployment's longest one. Both alerts carry the provider's remediation path
(``catalogue/remediation.yml``): the sender support form or delisting page to use once the cause is fixed.
"""

from __future__ import annotations

from ....catalogue.remediation import remediation
from ....facts.plan import StreamPlan
from ...base import RenderContext
from .base import Rule
from .dnsbl import _quote, _text

NAME = 'shaping'

GRACE = 600
"""Seconds past the rule's duration before an active suspension counts as too long (the engine expires actions on
its next pass; a reload may take a moment)."""
NO_SUSPEND_RULE = 86400
"""Threshold when the deployment has no ``suspend`` rule at all (a suspension can then only come from rules the
controller does not know, a newer contract on the host, say): one day."""
SINCE = 'mailinfra_shaping_active_since_seconds'
ACTIVE = 'mailinfra_shaping_active'
RELEASE = 'mailinfra-agent shaping release {{ $labels.stream }} {{ $labels.ip }}'
NOT_CATALOGUED = 'none in the catalogue (catalogue/remediation.yml)'


def _longest(plans: list[StreamPlan], action: str) -> dict[tuple[str, str], int]:
    """(stream, ISP) -> the longest duration of its rules of ``action``."""
    found: dict[tuple[str, str], int] = {}
    for plan in plans:
        for isp in [plan.default, *plan.isps.values()]:
            durations = [rule.duration for rule in isp.backoff if rule.action == action]
            if durations:
                found[(plan.name, isp.isp)] = max(durations)
    return found


def too_long_expr(context: RenderContext) -> str:
    """Age of each active ``suspend`` beyond its threshold; one ``or`` term per (stream, ISP), then the rest."""
    longest = _longest(list(context.facts.plan.streams.values()), 'suspend')
    fallback = max(longest.values(), default=NO_SUSPEND_RULE - GRACE) + GRACE
    active = f'{ACTIVE}{{action="suspend"}} == 1'
    terms = [
        f'(time() - {SINCE}{{action="suspend",stream={_quote(stream)},isp={_quote(isp)}}}) > {seconds + GRACE}'
        for (stream, isp), seconds in sorted(longest.items())
        if seconds + GRACE < fallback
    ]
    terms.append(f'(time() - {SINCE}{{action="suspend"}}) > {fallback}')
    # the last term's threshold is the highest: a series an earlier term leaves out (below its own) never passes it
    return '((' + ') or ('.join(terms) + f')) and {active}'


def _by_label(label: str, branches: list[tuple[str, str]], otherwise: str) -> str:
    """A Go template choosing a text by ``$labels.<label>``."""
    if not branches:
        return otherwise
    chain = '{{ else '.join(f'if eq $labels.{label} {_quote(value)} }}}}{text}' for value, text in branches)
    return '{{ ' + chain + '{{ else }}' + otherwise + '{{ end }}'


def _path(isp: str) -> str | None:
    found = remediation(isp)
    return f'{found.kind}: {found.url} ({found.note})' if found is not None else None


def remediation_template(context: RenderContext) -> str:
    """The remediation path of ``$labels.isp`` (the providers the deployment delivers to)."""
    names = sorted({isp for plan in context.facts.plan.streams.values() for isp in plan.isps})
    branches = [(isp, _text(path)) for isp in names if (path := _path(isp)) is not None]
    return _by_label('isp', branches, NOT_CATALOGUED)


def remediation_url_template(context: RenderContext) -> str:
    names = sorted({isp for plan in context.facts.plan.streams.values() for isp in plan.isps})
    branches = [(isp, _text(found.url)) for isp in names if (found := remediation(isp)) is not None]
    return _by_label('isp', branches, 'unknown')


def _ip_paths(plan: StreamPlan) -> list[str]:
    """Where to ask when an IP of the stream is out of rotation, one entry per kind of ``suspend_ip`` rule.

    A rule every provider of the stream has (a block list hit, ``isps/_any.yml``) points at the blocklist alerts;
    a rule only some providers have (a spec's override, say) at those providers' remediation paths."""
    every = [plan.default, *plan.isps.values()]
    holders: dict[tuple[str, int], list[str]] = {}
    for isp in every:
        for rule in isp.backoff:
            if rule.action == 'suspend_ip':
                holders.setdefault((rule.pattern, rule.duration), []).append(isp.isp)
    generic, providers = False, []
    for isps in holders.values():
        if len(isps) == len(every):
            generic = True
        else:
            providers += [isp for isp in isps if isp not in providers]
    found = remediations_of(sorted(providers))
    return (["blocklists: the delisting page is on the IP's MailinfraDnsblListed alerts"] if generic else []) + found


def remediations_of(isps: list[str]) -> list[str]:
    return [f'{isp}: {found.url}' if (found := remediation(isp)) else f'{isp}: {NOT_CATALOGUED}' for isp in isps]


def ip_remediation_template(context: RenderContext) -> str:
    branches = []
    for name, plan in sorted(context.facts.plan.streams.items()):
        paths = _ip_paths(plan)
        if paths:
            branches.append((name, _text('; '.join(paths))))
    return _by_label('stream', branches, 'no suspend_ip rule of this stream is known to the deployment')


def rules(context: RenderContext) -> list[Rule]:
    return [
        Rule(
            'MailinfraShapingSuspendedTooLong',
            too_long_expr(context),
            0,
            {'severity': 'warning'},
            {
                'summary': '{{ $labels.ip }} of stream {{ $labels.stream }} has been suspended at {{ $labels.isp }} '
                'for {{ $value | humanizeDuration }}',
                'description': 'Delivery from {{ $labels.ip }} (stream {{ $labels.stream }}) to {{ $labels.isp }} '
                'has been suspended for {{ $value | humanizeDuration }}, longer than its longest suspend rule: new '
                'matches keep extending it (the provider keeps refusing), or the shaping service stopped and never '
                'undid it. See `mailinfra-agent shaping status` on {{ $labels.host }}; once the cause is fixed, ask '
                f'the provider for mitigation, and end it by hand with `{RELEASE} {{{{ $labels.isp }}}}`.',
                'remediation': remediation_template(context),
                'remediation_url': remediation_url_template(context),
            },
        ),
        Rule(
            'MailinfraShapingIpSuspended',
            f'{ACTIVE}{{action="suspend_ip"}} == 1',
            0,
            {'severity': 'critical'},
            {
                'summary': '{{ $labels.ip }} of stream {{ $labels.stream }} is out of rotation for every provider',
                'description': 'A suspend_ip rule took {{ $labels.ip }} (stream {{ $labels.stream }}) out of '
                "rotation on {{ $labels.host }}: a receiver says the IP itself is blocked. The pool's other IPs "
                "carry its mail (the last IP's mail waits). See `mailinfra-agent shaping status`; once delisted, "
                f'end it with `{RELEASE}`.',
                'remediation': ip_remediation_template(context),
            },
        ),
    ]
