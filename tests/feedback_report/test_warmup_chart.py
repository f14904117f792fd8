"""The warm-up charts of the HTML report: planned cap against deliveries, per warming IP of the spec."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailinfra_agent.contract import Store
from mailinfra_agent.store import connect, migrate
from mailinfra_agent.store.events import insert_events
from mailinfra_iac.api import parse_spec
from mailinfra_iac.cli.main import main
from mailinfra_iac.facts.warmup import warmup_plan
from mailinfra_iac.feedback_report import as_html, build_report
from mailinfra_iac.feedback_report.html import chart_days
from mailinfra_iac.feedback_report.warmup_chart import count_chart, warmup_section

from ..conftest import AS_OF, BASE
from ..facts.test_warmup import WARMING
from .conftest import ev

IP = '192.0.2.20'


def day(number: int) -> float:
    return datetime(2026, 11, number, 12, tzinfo=UTC).timestamp()


@pytest.fixture
def store_file(tmp_path: Path) -> Path:
    """Deliveries of the warming IP: 40 on 2 November, 150 on 3 November, 10 on 4 November; one other IP."""
    path = tmp_path / 'feedback.db'
    with connect(Store('sqlite', path=str(path))) as db:
        migrate(db)
        events = [ev('delivery', 'sent', day(2), sending_ip=IP) for _ in range(40)]
        events += [ev('delivery', 'sent', day(3), sending_ip=IP) for _ in range(150)]
        events += [ev('delivery', 'sent', day(4), sending_ip=IP) for _ in range(10)]
        events += [ev('delivery', 'sent', day(3), sending_ip='192.0.2.21')]
        insert_events(db, events)
    return path


def html_of(store_file: Path, spec_text: str) -> str:
    spec = parse_spec(spec_text, 'spec.yml', as_of=AS_OF)
    with connect(Store('sqlite', path=str(store_file))) as db:
        report = build_report(db)
    plan = warmup_plan(spec.deployment, spec.facts.streams)
    return as_html(report, sections=warmup_section(plan, report, chart_days(report)))


def test_a_warming_ip_gets_its_cap_and_deliveries_drawn(store_file: Path) -> None:
    html = html_of(store_file, WARMING)
    figure = html[html.index(f'<figure class="chart" id="warmup-{IP}"') :]
    figure = figure[: figure.index('</figure>')]
    assert 'data-series="2"' in figure
    titles = re.findall(r'<title>([^<]+)</title>', figure)
    assert titles == [
        'cap 2026-11-02: 100',
        'cap 2026-11-03: 200',
        'cap 2026-11-04: 400',
        'delivered 2026-11-02: 40',
        'delivered 2026-11-03: 150',
        'delivered 2026-11-04: 10',
    ]
    assert '<h2>Warm-up</h2>' in html and 'Curve conservative (KumoMTA' in html
    assert html.index('<h2>Warm-up</h2>') < html.index('<h2>Top diagnostic reasons</h2>')
    assert 'warmup-192.0.2.21' not in html  # not warming


def test_no_warming_ip_in_the_period_says_so(store_file: Path) -> None:
    later = WARMING.replace('warmup_started: 2026-11-01', 'warmup_started: 2026-12-01')
    html = html_of(store_file, later)
    assert '<p>No IP of the spec warms up during these days.</p>' in html
    assert 'id="warmup-' not in html


def test_without_sections_the_report_is_unchanged(store_file: Path) -> None:
    with connect(Store('sqlite', path=str(store_file))) as db:
        report = build_report(db)
    assert as_html(report) == as_html(report, sections=[])
    assert 'Warm-up' not in as_html(report)


def test_count_chart_without_points_says_no_data() -> None:
    chart = count_chart('c', 'Title <b>', ['2026-11-02'], {'cap': {}})
    assert 'data-series="0"' in chart and '>no data</text>' in chart and 'Title &lt;b&gt;' in chart


def test_feedback_report_command_draws_the_warmup_with_a_spec(
    capsys: pytest.CaptureFixture[str], store_file: Path, tmp_path: Path
) -> None:
    spec = tmp_path / 'spec.yml'
    spec.write_text(WARMING)
    code = main(['feedback', 'report', '--store', f'sqlite:{store_file}', '--format', 'html', '--spec', str(spec)])
    out = capsys.readouterr().out
    assert code == 0 and f'id="warmup-{IP}"' in out
    spec.write_text(BASE)  # no warming IP: no section
    code = main(['feedback', 'report', '--store', f'sqlite:{store_file}', '--format', 'html', '--spec', str(spec)])
    out = capsys.readouterr().out
    assert code == 0 and 'Warm-up' not in out
