"""The report as a plain text table, CSV and JSON: the same rows, in the same order, the same bytes every time.

The table shows the control and format characters of the store's texts as ``[U+001B]`` (:func:`visible`): a
remote server's diagnostic is printed to the operator's terminal, and escape sequences in it would act there (set
the window title, clear the screen, hide or recolour lines). CSV and JSON carry the texts as they are.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from typing import Any

from .aggregate import COUNTS, DIMENSIONS, RATES, Counts, Group, Reason, Report

__all__ = ['CSV_COLUMNS', 'RATE_DEFINITIONS', 'as_csv', 'as_data', 'as_json', 'as_table', 'percent', 'visible']

RATE_DEFINITIONS = {
    'delivery_rate': 'sent / (sent + bounced + expired)',
    'bounce_rate': 'bounced / (sent + bounced)',
    'hard_bounce_rate': 'hard_bounced / (sent + bounced)',
    'complaint_rate': 'complaints / sent',
    'deferral_rate': 'deferred / (sent + deferred + bounced + expired)',
}
"""Each rate as a formula over the counts; a rate whose denominator is 0 is null."""

CSV_COLUMNS = (*DIMENSIONS, *COUNTS, *RATES, 'top_reasons')
_HIDDEN_CATEGORIES = frozenset({'Cc', 'Cf', 'Zl', 'Zp', 'Cn', 'Co', 'Cs'})
"""Control, format (bidi controls, zero-width characters), line/paragraph separators, unassigned, private use and
surrogates: the last three have no glyph of their own that every terminal or font shows."""
_INVISIBLE = re.compile(
    '[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f'
    '\u2800\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8\U0001bca0-\U0001bca3\U0001d173-\U0001d17a'
    '\U000e0000-\U000e0fff]'
)
"""Default_Ignorable_Code_Point from Unicode's DerivedCoreProperties.txt
(https://www.unicode.org/Public/UCD/latest/ucd/DerivedCoreProperties.txt; the tests check it against the regex
module's ``\\p{Default_Ignorable_Code_Point}``): shown as nothing at all whatever their category (the combining
grapheme joiner and variation selectors are marks, the Hangul fillers letters); and U+2800, the blank Braille
pattern, which looks like a space."""


def _hidden(char: str) -> bool:
    return unicodedata.category(char) in _HIDDEN_CATEGORIES or _INVISIBLE.match(char) is not None


def visible(text: str) -> str:
    """``text`` with its control, format and invisible characters written as ``[U+XXXX]``: nothing in it acts on
    a terminal or a page (escape sequences, bidi overrides) or hides (zero-width characters, variation selectors,
    fillers)."""
    if text.isprintable() and _INVISIBLE.search(text) is None:
        return text
    return ''.join(f'[U+{ord(char):04X}]' if _hidden(char) else char for char in text)


def _reasons(reasons: tuple[tuple[Reason, int], ...]) -> list[dict[str, Any]]:
    return [
        {'status': reason.status, 'category': reason.category, 'reason': reason.text, 'count': count}
        for reason, count in reasons
    ]


def _figures(counts: Counts) -> dict[str, Any]:
    return {**{name: getattr(counts, name) for name in COUNTS}, **counts.rates()}


def _group(group: Group) -> dict[str, Any]:
    return {
        **{name: getattr(group, name) for name in DIMENSIONS},
        **_figures(group.counts),
        'top_reasons': _reasons(group.top_reasons),
    }


def as_data(report: Report) -> dict[str, Any]:
    """The report as plain data, keys in a fixed order (the JSON output)."""
    return {
        'period': {'first_day': report.first_day, 'last_day': report.last_day},
        'rate_definitions': RATE_DEFINITIONS,
        'total': _figures(report.total),
        'groups': [_group(group) for group in report.groups],
        'top_reasons': _reasons(report.top_reasons),
    }


def as_json(report: Report) -> str:
    return json.dumps(as_data(report), indent=2, ensure_ascii=False) + '\n'


def as_csv(report: Report) -> str:
    """One line per group; unknown dimensions and undefined rates are empty, ``top_reasons`` is a JSON array."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator='\n')
    writer.writerow(CSV_COLUMNS)
    for group in report.groups:
        row = _group(group)
        cells = ['' if row[name] is None else row[name] for name in CSV_COLUMNS[:-1]]
        writer.writerow([*cells, json.dumps(row['top_reasons'], ensure_ascii=False, separators=(',', ':'))])
    return buffer.getvalue()


def percent(rate: float | None) -> str:
    return '-' if rate is None else f'{rate * 100:.2f}%'


TABLE_COLUMNS: tuple[tuple[str, str], ...] = (
    ('day', 'day'),
    ('stream', 'stream'),
    ('sending_ip', 'sending IP'),
    ('isp', 'ISP'),
    ('segment', 'segment'),
    ('sent', 'sent'),
    ('bounced', 'bounced'),
    ('hard_bounced', 'hard'),
    ('soft_bounced', 'soft'),
    ('policy_bounced', 'policy'),
    ('bounce_rate', 'bounce'),
    ('complaints', 'compl.'),
    ('complaint_rate', 'compl. rate'),
    ('deferred', 'deferred'),
    ('deferral_rate', 'deferral'),
    ('expired', 'expired'),
    ('delivery_rate', 'delivery'),
    ('dsn_bounces', 'DSNs'),
    ('unsubscribes', 'unsub.'),
)


def _cell(name: str, value: Any) -> str:
    if name in RATES:
        return percent(value)
    return '-' if value is None else visible(str(value))


def as_table(report: Report) -> str:
    """Aligned plain text: one line per group, a total, then the top diagnostic reasons."""
    header = [title for _name, title in TABLE_COLUMNS]
    rows = [[_cell(name, _group(group)[name]) for name, _title in TABLE_COLUMNS] for group in report.groups]
    total = _figures(report.total)
    rows.append(['total', '', '', '', ''] + [_cell(name, total[name]) for name, _title in TABLE_COLUMNS[5:]])
    widths = [max(len(line[index]) for line in [header, *rows]) for index in range(len(header))]
    numeric = [name not in DIMENSIONS for name, _title in TABLE_COLUMNS]

    def line(cells: list[str]) -> str:
        parts = [
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, right in zip(cells, widths, numeric, strict=True)
        ]
        return '  '.join(parts).rstrip()

    period = f'{report.first_day or "-"} .. {report.last_day or "-"}'
    out = [f'Feedback report {period} (days in UTC)', '', line(header), line(['-' * width for width in widths])]
    out += [line(row) for row in rows[:-1]]
    out += [line(['-' * width for width in widths]), line(rows[-1]), '']
    out.append('Top diagnostic reasons:')
    if not report.top_reasons:
        out.append('  (none)')
    for reason, count in report.top_reasons:
        status, category = visible(reason.status), visible(reason.category or '-')
        out.append(f'  {count:>8}  {status:<8}  {category:<20}  {visible(reason.text)}')
    return '\n'.join(out) + '\n'
