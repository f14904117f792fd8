"""Table, CSV, JSON and HTML: deterministic bytes, CSV and JSON agree, and every text is escaped in the HTML."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date

import pytest
import regex

from mailinfra_agent.store import Database
from mailinfra_iac.feedback_report import COUNTS, DIMENSIONS, RATES, as_csv, as_html, as_json, as_table, build_report
from mailinfra_iac.feedback_report.aggregate import Counts, Group, Reason, Report
from mailinfra_iac.feedback_report.formats import _INVISIBLE, CSV_COLUMNS, visible
from mailinfra_iac.feedback_report.html import chart_days, line_chart, thresholds
from mailinfra_iac.model.monitoring import RateThresholds

from .conftest import SCRIPT


def test_every_format_is_deterministic(sqlite_db: Database) -> None:
    for render in (as_table, as_csv, as_json, as_html):
        assert render(build_report(sqlite_db)) == render(build_report(sqlite_db))


def test_json_has_a_stable_key_order(sqlite_db: Database) -> None:
    data = json.loads(as_json(build_report(sqlite_db)))
    assert list(data) == ['period', 'rate_definitions', 'total', 'groups', 'top_reasons']
    assert list(data['groups'][0]) == [*DIMENSIONS, *COUNTS, *RATES, 'top_reasons']
    assert data['period'] == {'first_day': '2026-11-01', 'last_day': '2026-11-04'}
    assert data['rate_definitions']['complaint_rate'] == 'complaints / sent'


def test_csv_and_json_round_trip(sqlite_db: Database) -> None:
    report = build_report(sqlite_db)
    groups = json.loads(as_json(report))['groups']
    rows = list(csv.DictReader(io.StringIO(as_csv(report))))
    assert len(rows) == len(groups) == len(report.groups)
    for row, group in zip(rows, groups, strict=True):
        assert list(row) == list(CSV_COLUMNS)
        back = {
            **{name: row[name] or None for name in DIMENSIONS},
            **{name: int(row[name]) for name in COUNTS},
            **{name: float(row[name]) if row[name] else None for name in RATES},
            'top_reasons': json.loads(row['top_reasons']),
        }
        assert back == group


def test_table_lists_groups_total_and_reasons(sqlite_db: Database) -> None:
    text = as_table(build_report(sqlite_db))
    lines = text.splitlines()
    assert lines[0] == 'Feedback report 2026-11-01 .. 2026-11-04 (days in UTC)'
    group_a = next(line for line in lines if line.startswith('2026-11-02  marketing'))
    assert re.search(r'\b6\s+4\s+1\s+2\s+1\s+40\.00%\s+2\s+33\.33%\s+3\s+21\.43%\s+1\s+54\.55%', group_a)
    group_b = next(line for line in lines if 'yahoo' in line)
    assert re.search(r'yahoo\s+-\s+0\s+0\s+0\s+0\s+0\s+-\s+2\s+-', group_b)
    assert next(line for line in lines if line.startswith('total'))
    assert '550 5.1.1 <address>: user unknown' in text


def test_html_escapes_every_text(sqlite_db: Database) -> None:
    page = as_html(build_report(sqlite_db))
    assert SCRIPT not in page
    assert '<td class="text wrap">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; 450 4.2.0 greylisted</td>' in page
    assert '&lt;address&gt;' in page
    # only our own two inline scripts
    assert page.count('<script>') == 2


def test_html_escapes_names_in_charts() -> None:
    svg = line_chart('c"1', 'rate <b>', ['2026-11-02'], {'"><img src=x>': {'2026-11-02': 0.01}}, ())
    assert '<img' not in svg and '<b>' not in svg
    assert 'data-name="&quot;&gt;&lt;img src=x&gt;"' in svg


def test_html_is_self_contained(sqlite_db: Database) -> None:
    page = as_html(build_report(sqlite_db))
    assert not re.search(r'(?:src|href)\s*=', page)
    assert 'http://' not in page.replace('http://www.w3.org/2000/svg', '')
    assert 'https://' not in page
    assert "default-src 'none'" in page


def test_thresholds_drawn_with_and_without_a_spec(sqlite_db: Database) -> None:
    report = build_report(sqlite_db)
    plain = as_html(report)
    assert plain.count('class="threshold limit"') == 2
    assert plain.count('class="threshold spec"') == 0
    spec = RateThresholds(bounce_warning=0.03, bounce_critical=0.07)
    marked = as_html(report, spec)
    assert marked.count('class="threshold spec"') == 8  # 2 bounce + 2 complaint lines, on ISP and segment charts
    assert 'spec warning 3 %' in marked and 'spec critical 7 %' in marked
    assert {t.value for t in thresholds(spec)['complaint_rate']} == {0.003, 0.001}


@pytest.mark.parametrize(
    ('kind', 'chars'),
    [
        ('control, format, separator', '\x1b\x85\u200b\u202e\u2028\ufeff'),
        ('combining grapheme joiner', '\u034f'),
        ('variation selectors', '\ufe00\ufe0f\U000e0100\U000e01ef'),
        ('Mongolian free variation selectors, Khmer inherent vowels', '\u180b\u180d\u17b4\u17b5'),
        ('Hangul fillers', '\u3164\u115f\uffa0'),
        ('unassigned', '\u2065\U000e0fff\U0010fffe'),
        ('private use', '\ue000\U000f0000'),
        ('lone surrogates (surrogateescape)', '\ud800\udfff'),
        ('blank Braille pattern', '\u2800'),
    ],
)
def test_visible_shows_what_would_not_be_seen(kind: str, chars: str) -> None:
    for char in chars:
        assert visible(f'a{char}b') == f'a[U+{ord(char):04X}]b', kind


def test_visible_keeps_printable_text() -> None:
    for text in ('550 5.1.1 <address>: user unknown', 'Grüße, 用户 nicht gefunden', 'a\xa0b\u3000c', '\u2801'):
        assert visible(text) == text


def test_the_invisible_list_is_unicodes_default_ignorable_code_points() -> None:
    """Checked against an independent table: the regex module's Default_Ignorable_Code_Point property."""
    ignorable = regex.compile(r'\p{Default_Ignorable_Code_Point}')
    ours = {code for code in range(0x110000) if _INVISIBLE.match(chr(code))}
    theirs = {code for code in range(0x110000) if ignorable.match(chr(code))}
    assert ours == theirs | {0x2800}


def test_the_table_shows_hidden_characters_of_a_reasons_status_and_category() -> None:
    """The reasons' status and category were printed raw (only the text went through visible())."""
    reason = Reason('bounced\x1b[2J', 'bad\u034f\x1b]0;owned\x07', '550 unknown')
    group = Group('2026-11-01', 'marketing', None, None, None, Counts(), ((reason, 1),))
    text = as_table(Report('2026-11-01', '2026-11-01', (group,), ((reason, 1),)))
    assert not [char for char in text if char != '\n' and not char.isprintable()]
    assert 'bounced[U+001B][2J  bad[U+034F][U+001B]]0;owned[U+0007]' in text


def test_empty_report() -> None:
    empty = Report(None, None, ())
    assert json.loads(as_json(empty))['groups'] == []
    assert as_csv(empty) == ','.join(CSV_COLUMNS) + '\n'
    page = as_html(empty)
    assert 'No events in this period.' in page
    assert page.count('>no data</text>') == 4


def test_charts_span_every_day_of_the_period(sqlite_db: Database) -> None:
    report = build_report(sqlite_db, date(2026, 10, 30), date(2026, 11, 5))
    assert chart_days(report) == [f'2026-10-{d}' for d in (30, 31)] + [f'2026-11-0{d}' for d in range(1, 6)]
    page = as_html(report)
    # days without events are on the axis too
    assert '>10-30</text>' in page and '>11-05</text>' in page
    assert chart_days(Report('2020-01-01', '2026-01-01', ())) == []
