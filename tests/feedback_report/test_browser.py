"""The HTML report in a real browser (Debian's Chromium, headless): it renders, every chart series is laid out,
and nothing is logged on the console. The same checks catch a broken page."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailinfra_agent.store import connect_sqlite
from mailinfra_iac.feedback_report import as_html, build_report
from mailinfra_iac.feedback_report.demo import ISPS, SEGMENTS, write_demo_store

from .browser import open_page, screenshot

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def report_html(tmp_path_factory: pytest.TempPathFactory) -> str:
    directory = tmp_path_factory.mktemp('browser')
    write_demo_store(directory / 'demo.db')
    with connect_sqlite(directory / 'demo.db') as db:
        return as_html(build_report(db))


def test_report_renders_with_every_chart_drawn(report_html: str, tmp_path: Path) -> None:
    page_file = tmp_path / 'report.html'
    page_file.write_text(report_html, encoding='utf-8')
    page = open_page(page_file)
    assert page.console == []
    assert page.attributes['html']['data-errors'] == '0'
    assert page.attributes['body']['data-charts'] == '4'
    assert page.attributes['body']['data-charts-drawn'] == '4'
    expected = {'isp-bounce': ISPS, 'isp-complaint': ISPS, 'segment-bounce': SEGMENTS, 'segment-complaint': SEGMENTS}
    for chart, names in expected.items():
        assert page.attributes[chart]['data-series'] == str(len(names))
        assert page.attributes[chart]['data-drawn-series'] == str(len(names))
    assert page.dom.count('class="threshold limit"') == 2  # Gmail/Yahoo 0.3 % on both complaint charts
    assert page.dom.count('class="threshold recommended"') == 2
    png = tmp_path / 'report.png'
    screenshot(page_file, png)
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert png.stat().st_size > 20_000  # charts and tables, not a blank page


def test_script_errors_are_caught(report_html: str, tmp_path: Path) -> None:
    page_file = tmp_path / 'broken.html'
    page_file.write_text(report_html.replace('</body>', '<script>notDefined();</script></body>'), encoding='utf-8')
    page = open_page(page_file)
    assert page.attributes['html']['data-errors'] == '1'
    assert any('notDefined' in message for message in page.console)


def test_external_loads_are_refused_and_reported(report_html: str, tmp_path: Path) -> None:
    """The page may load nothing from outside (no CDN): its Content-Security-Policy blocks it, and it shows."""
    page_file = tmp_path / 'cdn.html'
    page_file.write_text(
        report_html.replace('</body>', '<img src="https://cdn.example.com/chart.png" alt=""></body>'), encoding='utf-8'
    )
    page = open_page(page_file)
    assert any('Content Security Policy' in message for message in page.console)


def test_a_chart_not_laid_out_is_caught(report_html: str, tmp_path: Path) -> None:
    page_file = tmp_path / 'hidden.html'
    hidden = report_html.replace(
        '<g class="series" data-name="gmail">', '<g class="series" data-name="gmail" display="none">'
    )
    page_file.write_text(hidden, encoding='utf-8')
    page = open_page(page_file)
    assert page.attributes['body']['data-charts-drawn'] == '2'  # both ISP charts miss gmail
    assert page.attributes['isp-bounce']['data-drawn-series'] == str(len(ISPS) - 1)
    assert page.console == []
