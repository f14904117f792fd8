"""The HTML report in a real browser (Debian's Chromium, headless): it renders, every chart series is laid out,
and nothing is logged on the console. The same checks catch a broken page."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailinfra_agent.store import connect_sqlite, migrate
from mailinfra_agent.store.events import insert_events
from mailinfra_iac.feedback_report import Report, as_html, build_report
from mailinfra_iac.feedback_report.demo import ISPS, SEGMENTS, write_demo_store

from .browser import open_page, screenshot
from .conftest import DAY1, ev

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


LAYOUT = """
(function(){var root=document.documentElement;var wide=[];var outside=[];var reversed=[];
if(root.scrollWidth>window.innerWidth){wide.push(root.scrollWidth+'>'+window.innerWidth);}
document.querySelectorAll('svg').forEach(function(svg){var box=svg.getBoundingClientRect();
svg.querySelectorAll('text,div').forEach(function(item){var r=item.getBoundingClientRect();
if(r.left<box.left-0.5||r.right>box.right+0.5||r.top<box.top-0.5||r.bottom>box.bottom+0.5){outside.push(item.textContent);}});});
document.querySelectorAll('td,div.legend').forEach(function(cell){var text=cell.textContent;
if(/[\\u0590-\\u08ff]/.test(text)){return;}var node=cell.firstChild;if(!node||node.nodeType!==3){return;}
var range=document.createRange();var last=null;for(var i=0;i<node.length;i++){range.setStart(node,i);
range.setEnd(node,i+1);var r=range.getBoundingClientRect();if(r.width===0){continue;}
if(last&&Math.abs(r.top-last.top)<2&&r.left<last.left-0.5){reversed.push(text);return;}last=r;}});
root.setAttribute('data-wide',wide.join('|'));root.setAttribute('data-outside',outside.join('|'));
root.setAttribute('data-reversed',reversed.join('|'));})();
"""
"""Measures the laid-out page: wider than the window, a chart text drawn outside its chart, a left-to-right cell or
legend whose characters are not drawn left to right (a bidi override in the data)."""
SPOOF = '\u202eswen'
HEBREW = '\u05e2\u05d1\u05e8\u05d9\u05ea list'
"""A right-to-left segment name (Hebrew letters)."""
"""A segment an application named so that it is drawn as ``news``."""


def test_hostile_names_and_diagnostics_keep_the_layout(tmp_path: Path) -> None:
    """Names and diagnostics from outside: markup, quotes, bidi overrides, zero-width characters, right-to-left
    text, a 63-octet name and a diagnostic far wider than the window."""
    sent = {'stream': 'marketing', 'isp': 'gmail', 'sending_ip': '192.0.2.10'}
    segments = ['news', SPOOF, 'news\u200b', '"><script>alert(1)</script>', 'x' * 63, 'W' * 20, HEBREW]
    segments += [f'list-{number}' for number in range(12)]  # more names than the chart's height has legend rows
    events = [ev('delivery', 'sent', DAY1 + i, segment=name, **sent) for i, name in enumerate(segments)]
    events += [
        ev('delivery', 'bounced', DAY1, segment=SPOOF, category='bad-mailbox', diagnostic=diagnostic, **sent)
        for diagnostic in (
            '550 5.1.1 \u202e<script>alert("x")</script>\'"&amp; moc.elgoog',
            '550 ' + 'A' * 400,
            '550 5.7.1 blocked \u2067see\u2069 \u200f',
        )
    ]
    store = tmp_path / 'hostile.db'
    with connect_sqlite(store) as db:
        migrate(db)
        insert_events(db, events)
        page_file = tmp_path / 'hostile.html'
        page_file.write_text(as_html(build_report(db)).replace('</body>', f'<script>{LAYOUT}</script></body>'))
    page = open_page(page_file)
    assert page.console == []
    assert page.attributes['html']['data-errors'] == '0'
    assert page.attributes['body']['data-charts-drawn'] == '4'
    assert page.attributes['html']['data-wide'] == ''
    assert page.attributes['html']['data-outside'] == ''
    assert page.attributes['html']['data-reversed'] == ''
    assert '<script>alert' not in page.dom
    # the spoofing and invisible characters are shown, so the three "news" segments look different
    assert '[U+202E]swen' in page.dom and 'news[U+200B]' in page.dom
    assert not {'\u202e', '\u200b', '\u200f', '\u2067'} & set(page.dom)
    # a right-to-left name in a tooltip is isolated: the day and rate after it stay in their order
    assert f'<title>\u2068{HEBREW}\u2069 2026-11-02: 0.00%</title>' in page.dom


def test_an_empty_report_in_the_browser(tmp_path: Path) -> None:
    page_file = tmp_path / 'empty.html'
    page_file.write_text(as_html(Report(None, None, ())).replace('</body>', f'<script>{LAYOUT}</script></body>'))
    page = open_page(page_file)
    assert page.console == []
    assert page.attributes['html']['data-errors'] == '0'
    assert page.attributes['body']['data-charts'] == page.attributes['body']['data-charts-drawn'] == '4'
    assert page.attributes['html']['data-wide'] == ''
    assert '<table' not in page.dom  # no table of headers without rows
    assert page.dom.count('No events in this period.') == 3
