"""The dashboard's feedback panel, evaluated by promtool: hosts of a shared store count once, own stores add up."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from mailinfra_iac import parse_spec

from ..conftest import AS_OF, ROOT
from .harness import PROMTOOL, monitoring_files, run, tool

SERIES = (
    'mailinfra_deliveries_total{{job="mailinfra", instance="{host}:9745", host="{host}", store="{store}", '
    'stream="marketing", sending_ip="203.0.113.24", isp="gmail", status="sent"}}'
)


def _deliveries_expr() -> str:
    spec = parse_spec((ROOT / 'examples/high-volume-powermta.yml').read_text(), 'spec.yml', as_of=AS_OF)
    dashboard = json.loads(monitoring_files(spec)['grafana/mailinfra.json'])
    (panel,) = [panel for panel in dashboard['panels'] if panel['title'] == 'Deliveries per ISP']
    return str(panel['targets'][0]['expr']).replace('$stream', '.*')


def _case(stores: dict[str, str], expected: float, expr: str) -> dict[str, object]:
    """Each host's series grows by 60 a minute: 1 a second."""
    return {
        'interval': '1m',
        'input_series': [
            {'series': SERIES.format(host=host, store=store), 'values': '0+60x10'} for host, store in stores.items()
        ],
        'promql_expr_test': [
            {
                'expr': expr,
                'eval_time': '10m',
                'exp_samples': [{'labels': '{isp="gmail", status="sent"}', 'value': expected}],
            }
        ],
    }


def test_deliveries_per_isp_count_a_shared_store_once(tmp_path: Path) -> None:
    """Three hosts of one PostgreSQL store serve the same counts (1/s): the panel shows 1/s, not 3; two hosts with
    their own SQLite stores (their own ``store`` labels) add up to 2/s."""
    expr = _deliveries_expr()
    shared = {host: 'postgresql-0123456789ab' for host in ('pmta1', 'pmta2', 'pmta3')}
    own = {host: f'sqlite-{host}' for host in ('mta1', 'mta2')}
    (tmp_path / 'none.yml').write_text('groups: []\n')
    tests = {'rule_files': ['none.yml'], 'tests': [_case(shared, 1, expr), _case(own, 2, expr)]}
    (tmp_path / 'dashboard.test.yml').write_text(yaml.safe_dump(tests, sort_keys=False))
    result = run(tool(PROMTOOL), 'test', 'rules', 'dashboard.test.yml', cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
