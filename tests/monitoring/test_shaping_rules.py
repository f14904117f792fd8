"""The shaping alert rules follow the spec's back-off rules: the threshold per stream x provider, the remediation
paths. Evaluated by promtool on rules rendered from an edited spec (the family's own tests: rules/shaping.yml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mailinfra_iac import parse_spec
from mailinfra_iac.render.base import RenderContext
from mailinfra_iac.render.monitoring.rules import shaping

from ..conftest import AS_OF, TEST_DKIM, edit
from .harness import PROMTOOL, monitoring_files, rules_spec_text, run, tool, write_tree

YAHOO_SUSPEND = """    injection: {port: 2525, networks: [10.0.0.0/8]}
    isp_overrides:
      yahoo:
        backoff_rules:
          - {pattern: 'TSS04', action: suspend, duration: 6d, description: deferred for complaints}
      microsoft:
        backoff_rules:
          - {pattern: 'S3150', action: suspend_ip, duration: 2h, description: Outlook.com block list}
"""
SMALL_ISP = 'isp_profiles:\n  smallisp: {display_name: Small ISP, recipient_domains: [small.example]}\n'
"""A provider the spec defines: no remediation path in the catalogue."""


def spec_text() -> str:
    return edit('    injection: {port: 2525, networks: [10.0.0.0/8]}\n', YAHOO_SUSPEND, rules_spec_text()) + SMALL_ISP


def context(text: str) -> RenderContext:
    spec = parse_spec(text, 'spec.yml', as_of=AS_OF)
    return RenderContext(spec.deployment, spec.facts, spec.name, {}, TEST_DKIM)


def test_the_longest_suspend_rule_of_the_spec_sets_the_thresholds() -> None:
    """6 days is longer than any catalogue rule: it is the longest, so the rest falls back to it (+ 10m grace),
    while catalogue providers keep their own (shorter) terms."""
    expr = shaping.too_long_expr(context(spec_text()))
    assert '(time() - mailinfra_shaping_active_since_seconds{action="suspend"}) > 519000)' in expr
    assert 'stream="transactional",isp="yahoo"' not in expr  # the fallback is its threshold
    assert 'stream="marketing",isp="yahoo"' in expr
    assert '> 519000' not in shaping.too_long_expr(context(rules_spec_text()))


def test_a_provider_without_a_catalogued_path_says_so() -> None:
    template = shaping.remediation_template(context(spec_text()))
    assert 'if eq $labels.isp "smallisp"' not in template
    assert 'smallisp' in context(spec_text()).facts.plan.streams['transactional'].isps
    assert template.endswith('{{ else }}none in the catalogue (catalogue/remediation.yml){{ end }}')


def test_suspend_ip_remediation_names_the_providers_with_their_own_rule() -> None:
    """The transactional stream's own Microsoft suspend_ip rule adds Microsoft's form; the Spamhaus rule every
    provider has points at the blocklist alerts (both streams)."""
    template = shaping.ip_remediation_template(context(spec_text()))
    blocklists = "blocklists: the delisting page is on the IP's MailinfraDnsblListed alerts"
    assert template == (
        f'{{{{ if eq $labels.stream "marketing" }}}}{blocklists}'
        f'{{{{ else if eq $labels.stream "transactional" }}}}{blocklists}; '
        'microsoft: https://go.microsoft.com/fwlink/?LinkID=614866'
        '{{ else }}no suspend_ip rule of this stream is known to the deployment{{ end }}'
    )


def _series(metric: str, isp: str, value: str) -> dict[str, str]:
    labels = f'job="mailinfra", instance="mta1:9745", host="mta1", stream="transactional", ip="192.0.2.10", isp="{isp}"'
    return {'series': f'{metric}{{{labels}, action="suspend"}}', 'values': value}


def _fires(rules: Path, eval_time: str, isp: str = 'yahoo') -> bool:
    """Whether MailinfraShapingSuspendedTooLong fires at ``eval_time`` for a suspension since time 0 (promtool must
    confirm exactly one of "fires" and "quiet", so a broken case cannot pass as quiet)."""
    outcomes = []
    for fires in (False, True):
        case: dict[str, Any] = {
            'rule_files': ['shaping.yml'],
            'evaluation_interval': '10m',
            'tests': [
                {
                    'interval': '10m',
                    'input_series': [
                        _series('mailinfra_shaping_active', isp, '1x1000'),
                        _series('mailinfra_shaping_active_since_seconds', isp, '0x1000'),
                    ],
                    'promql_expr_test': [
                        {
                            'expr': 'count by (isp) (ALERTS{alertname="MailinfraShapingSuspendedTooLong"})',
                            'eval_time': eval_time,
                            'exp_samples': [{'labels': f'{{isp="{isp}"}}', 'value': 1}] if fires else [],
                        }
                    ],
                }
            ],
        }
        (rules / 'case.test.yml').write_text(yaml.safe_dump(case))
        outcomes.append(run(tool(PROMTOOL), 'test', 'rules', 'case.test.yml', cwd=rules).returncode == 0)
    assert outcomes.count(True) == 1, f'promtool confirmed neither or both outcomes at {eval_time}'
    return outcomes[1]


def test_promtool_the_spec_threshold_holds_at_the_wire(tmp_path: Path) -> None:
    spec = parse_spec(spec_text(), 'spec.yml', as_of=AS_OF)
    rules = write_tree(monitoring_files(spec), tmp_path) / 'prometheus' / 'rules'
    assert not _fires(rules, '5d')  # within the spec rule's 6 days + grace
    assert _fires(rules, '6d20m')
