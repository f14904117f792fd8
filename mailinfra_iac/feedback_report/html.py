"""A self-contained HTML report: inline CSS, inline SVG charts drawn here in Python, no external file or CDN.

Charts: the bounce and the complaint rate per ISP over days, and per list segment over days. The complaint charts
mark Gmail's and Yahoo's line (a user-reported spam rate below 0.3 %) and their recommendation (0.1 %); with a
spec, the deployment's own default thresholds (``monitoring.rates.default``) are marked too. A Content-Security-
Policy forbids every load from outside the file. A small inline script records script errors and how many chart
series the browser laid out in attributes, which the headless-browser test reads.

Texts of the store (diagnostics from remote servers, segment names from applications) are escaped, their control
and format characters shown as ``[U+202E]`` (a bidi override would show a diagnostic or a name reversed, a
zero-width one make two names look alike), long ones wrap or end in an ellipsis inside their box.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from html import escape
from typing import TYPE_CHECKING

from .aggregate import Counts, Report, rollup
from .formats import RATE_DEFINITIONS, TABLE_COLUMNS, as_data, percent, visible

if TYPE_CHECKING:
    from ..model.monitoring import RateThresholds

__all__ = ['ISP_COMPLAINT_LIMIT', 'ISP_COMPLAINT_RECOMMENDED', 'Threshold', 'as_html', 'line_chart', 'thresholds']

ISP_COMPLAINT_LIMIT = 0.003
"""Gmail and Yahoo: keep the user-reported spam rate below 0.3 % (mta.md §6.1)."""
ISP_COMPLAINT_RECOMMENDED = 0.001
"""Gmail: aim for below 0.1 %; Postmaster Tools flags SPAM_RATE_HIGH above it (monitoring-and-feedback.md §2)."""

WIDTH, HEIGHT = 580, 280
LEFT, RIGHT, TOP, BOTTOM = 64, 120, 20, 40
PALETTE = ('#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#17becf', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22')
NONE_LABEL = '(unknown)'
LEGEND_X = WIDTH - RIGHT + 38
LEGEND_ROW = 18
FSI, PDI = '\u2068', '\u2069'
"""Unicode's first-strong isolate and its end: a right-to-left name does not reorder the text around it."""
_RIGHT_TO_LEFT = frozenset({'R', 'AL'})


@dataclass(frozen=True)
class Threshold:
    value: float
    label: str
    kind: str
    """``limit`` (ISP line), ``recommended`` or ``spec``: the line's style."""


def thresholds(spec: RateThresholds | None) -> dict[str, tuple[Threshold, ...]]:
    """The lines drawn on the bounce and the complaint charts."""
    complaint = [
        Threshold(ISP_COMPLAINT_LIMIT, 'Gmail/Yahoo limit 0.3 %', 'limit'),
        Threshold(ISP_COMPLAINT_RECOMMENDED, 'recommended 0.1 %', 'recommended'),
    ]
    bounce: list[Threshold] = []
    if spec is not None:
        bounce += [
            Threshold(spec.bounce_warning, f'spec warning {_pct(spec.bounce_warning)}', 'spec'),
            Threshold(spec.bounce_critical, f'spec critical {_pct(spec.bounce_critical)}', 'spec'),
        ]
        complaint += [
            Threshold(spec.complaint_warning, f'spec warning {_pct(spec.complaint_warning)}', 'spec'),
            Threshold(spec.complaint_critical, f'spec critical {_pct(spec.complaint_critical)}', 'spec'),
        ]
    return {'bounce_rate': tuple(bounce), 'complaint_rate': tuple(complaint)}


def _shown(text: str) -> str:
    """``text`` for HTML: escaped, its control, format and invisible characters written as ``[U+XXXX]``."""
    return escape(visible(text))


def _isolated(text: str) -> str:
    """:func:`shown`, between FSI and PDI when it holds right-to-left letters (for text run together with more)."""
    if text.isascii() or not any(unicodedata.bidirectional(char) in _RIGHT_TO_LEFT for char in text):
        return _shown(text)
    return f'{FSI}{_shown(text)}{PDI}'


def _pct(value: float) -> str:
    return f'{value * 100:g} %'


def _num(value: float) -> str:
    """Coordinates with two decimals: the same text on every platform."""
    return f'{value:.2f}'


def _nice_step(raw: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten that is at least ``raw``: round axis ticks."""
    power = 10 ** math.floor(math.log10(raw))
    return next(power * factor for factor in (1, 2, 2.5, 5, 10) if power * factor >= raw * (1 - 1e-9))


def _axis_label(value: float, top: float) -> str:
    digits = 3 if top < 0.01 else 2 if top < 0.1 else 1
    return f'{value * 100:.{digits}f} %'


def line_chart(
    chart_id: str,
    title: str,
    days: list[str],
    series: dict[str | None, dict[str, float | None]],
    lines: tuple[Threshold, ...],
    *,
    axis_label: Callable[[float, float], str] = _axis_label,
    point_label: Callable[[float], str] = percent,
    smallest_top: float = 0.001,
) -> str:
    """An SVG line chart over days (rates unless the labels say otherwise): one ``g.series`` per name with at
    least one point, and the thresholds; ``smallest_top`` keeps an all-zero chart's axis readable."""
    drawn = {name: points for name, points in series.items() if any(value is not None for value in points.values())}
    values = [value for points in drawn.values() for value in points.values() if value is not None]
    step = _nice_step(max([*values, *(line.value for line in lines), smallest_top]) * 1.05 / 4)
    top = step * 4
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    # the chart grows below the plot when the legend has more rows than the plot is high
    height = max(HEIGHT, TOP + 14 + LEGEND_ROW * len(drawn))

    def x(index: int) -> float:
        return LEFT + (plot_w / 2 if len(days) == 1 else plot_w * index / (len(days) - 1))

    def y(value: float) -> float:
        return TOP + plot_h * (1 - value / top)

    out = [
        f'<figure class="chart" id="{escape(chart_id)}" data-series="{len(drawn)}">',
        f'<figcaption>{escape(title)}</figcaption>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}"'
        f' role="img" aria-label="{escape(title)}">',
        f'<rect class="plot" x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}"/>',
    ]
    for tick in range(5):
        value = step * tick
        out.append(f'<line class="grid" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{_num(y(value))}" y2="{_num(y(value))}"/>')
        out.append(
            f'<text class="tick" x="{LEFT - 6}" y="{_num(y(value) + 4)}" text-anchor="end">'
            f'{axis_label(value, top)}</text>'
        )
    label_every = max(1, (len(days) + 9) // 10)
    for index, day in enumerate(days):
        if index % label_every == 0 or index == len(days) - 1:
            out.append(
                f'<text class="tick" x="{_num(x(index))}" y="{TOP + plot_h + 18}" text-anchor="middle">'
                f'{escape(day[5:])}</text>'
            )
    for line in lines:
        out.append(
            f'<line class="threshold {line.kind}" x1="{LEFT}" x2="{LEFT + plot_w}"'
            f' y1="{_num(y(line.value))}" y2="{_num(y(line.value))}"><title>{escape(line.label)}</title></line>'
        )
        out.append(
            f'<text class="threshold-label {line.kind}" x="{LEFT + plot_w - 4}" y="{_num(y(line.value) - 4)}"'
            f' text-anchor="end">{escape(line.label)}</text>'
        )
    if not drawn:
        out.append(
            f'<text class="empty" x="{LEFT + plot_w / 2}" y="{TOP + plot_h / 2}" text-anchor="middle">no data</text>'
        )
    for number, (name, points) in enumerate(drawn.items()):
        colour = PALETTE[number % len(PALETTE)]
        dash = '' if number < len(PALETTE) else ' stroke-dasharray="6 3"'
        label = name if name is not None else NONE_LABEL
        path: list[str] = []
        dots: list[str] = []
        pen_down = False
        for index, day in enumerate(days):
            rate = points.get(day)
            if rate is None:
                pen_down = False
                continue
            path.append(f'{"L" if pen_down else "M"}{_num(x(index))} {_num(y(rate))}')
            pen_down = True
            dots.append(
                f'<circle cx="{_num(x(index))}" cy="{_num(y(rate))}" r="3" fill="{colour}">'
                f'<title>{_isolated(label)} {escape(day)}: {point_label(rate)}</title></circle>'
            )
        legend_y = TOP + 14 + LEGEND_ROW * number
        out.append(f'<g class="series" data-name="{_shown(label)}">')
        out.append(f'<path d="{" ".join(path)}" stroke="{colour}" fill="none" stroke-width="2"{dash}/>')
        out.extend(dots)
        out.append(
            f'<line x1="{WIDTH - RIGHT + 12}" x2="{WIDTH - RIGHT + 32}" y1="{legend_y}" y2="{legend_y}"'
            f' stroke="{colour}" stroke-width="2"{dash}/>'
        )
        # HTML in the SVG: the browser cuts a long name with an ellipsis inside the legend (the name is its title)
        out.append(
            f'<foreignObject x="{LEGEND_X}" y="{legend_y - 8}" width="{WIDTH - LEGEND_X - 2}" height="16">'
            f'<div class="legend" title="{_shown(label)}">{_shown(label)}</div></foreignObject>'
        )
        out.append('</g>')
    out += ['</svg>', '</figure>']
    return '\n'.join(out)


def _rate_series(by_name: dict[str | None, dict[str, Counts]], rate: str) -> dict[str | None, dict[str, float | None]]:
    return {name: {day: getattr(counts, rate) for day, counts in days.items()} for name, days in by_name.items()}


STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:right}
th{background:#f0f0f0}td.text,th.text{text-align:left}td.text{white-space:nowrap}
td.wrap{white-space:normal;overflow-wrap:anywhere;min-width:12em}div.table{overflow-x:auto;max-width:100%}
div.charts{display:flex;flex-wrap:wrap;gap:8px 24px}figure.chart{margin:8px 0 16px 0}
figcaption{font-weight:600;margin-bottom:4px}
rect.plot{fill:#fafafa;stroke:#bbb}line.grid{stroke:#e4e4e4}
text{font-size:11px;fill:#333}
div.legend{font-size:12px;line-height:16px;color:#333;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
line.threshold{stroke-width:1.5}line.limit{stroke:#c00;stroke-dasharray:8 4}
line.recommended{stroke:#e69500;stroke-dasharray:4 4}line.spec{stroke:#555;stroke-dasharray:2 3}
text.threshold-label{font-size:10px}text.limit{fill:#c00}text.recommended{fill:#b37400}text.spec{fill:#555}
dl.defs dt{font-family:monospace;float:left;clear:left;width:11em}dl.defs dd{font-family:monospace}
"""

ERROR_HOOK = """
(function(){var root=document.documentElement;var errors=[];
function note(text){errors.push(String(text));root.setAttribute('data-errors',String(errors.length));
root.setAttribute('data-error-text',errors.join('\\n'));}
window.addEventListener('error',function(event){note(event.message||'resource error');},true);
window.addEventListener('unhandledrejection',function(event){note(event.reason);});
var original=console.error;console.error=function(){note(Array.prototype.join.call(arguments,' '));
return original.apply(console,arguments);};root.setAttribute('data-errors','0');})();
"""

CHECK_DRAWN = """
(function(){var complete=0;var figures=document.querySelectorAll('figure.chart');
figures.forEach(function(figure){var laidOut=0;figure.querySelectorAll('g.series').forEach(function(group){
var box=group.getBoundingClientRect();if(box.width>0&&box.height>0){laidOut+=1;}});
figure.setAttribute('data-drawn-series',String(laidOut));
if(laidOut===Number(figure.getAttribute('data-series'))){complete+=1;}});
document.body.setAttribute('data-charts',String(figures.length));
document.body.setAttribute('data-charts-drawn',String(complete));})();
"""

CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'"


def _table(headers: list[str], rows: list[list[str]], text_columns: int, wrap: int | None = None) -> str:
    """A table in a box that scrolls sideways when it is wider than the page; column ``wrap`` breaks long texts."""
    out = ['<div class="table"><table>', '<tr>']
    out += [
        f'<th class="text">{escape(h)}</th>' if i < text_columns else f'<th>{escape(h)}</th>'
        for i, h in enumerate(headers)
    ]
    out.append('</tr>')
    for row in rows:
        cells = [
            f'<td class="{"text wrap" if i == wrap else "text"}">{_shown(cell)}</td>'
            if i < text_columns
            else f'<td>{_shown(cell)}</td>'
            for i, cell in enumerate(row)
        ]
        out.append('<tr>' + ''.join(cells) + '</tr>')
    out.append('</table></div>')
    return '\n'.join(out)


def _summary(by_name: dict[str | None, dict[str, Counts]], what: str) -> str:
    rows = []
    for name, days in by_name.items():
        total = sum(days.values(), Counts())
        rows.append(
            [
                name if name is not None else NONE_LABEL,
                str(total.sent),
                str(total.bounced),
                percent(total.bounce_rate),
                str(total.complaints),
                percent(total.complaint_rate),
                str(total.deferred),
                percent(total.deferral_rate),
                percent(total.delivery_rate),
            ]
        )
    if not rows:
        return '<p>No events in this period.</p>'
    headers = [what, 'sent', 'bounced', 'bounce rate', 'complaints', 'complaint rate', 'deferred', 'deferral rate']
    return _table([*headers, 'delivery rate'], rows, 1)


MAX_CHART_DAYS = 366


def chart_days(report: Report) -> list[str]:
    """Every day of the period, those without events too (up to a year; beyond, the days with events)."""
    if report.first_day is None or report.last_day is None:
        return report.days
    first, last = date.fromisoformat(report.first_day), date.fromisoformat(report.last_day)
    span = (last - first).days + 1
    if span > MAX_CHART_DAYS:
        return report.days
    return [(first + timedelta(days=offset)).isoformat() for offset in range(span)]


def as_html(
    report: Report, spec: RateThresholds | None = None, title: str = 'Feedback report', sections: Sequence[str] = ()
) -> str:
    """The report as one HTML document (UTF-8), the same bytes for the same report and thresholds.

    ``sections``: more HTML (e.g. ``warmup_chart.warmup_section``), placed before the top reasons.
    """
    period = f'{report.first_day or "-"} to {report.last_day or "-"}'
    days = chart_days(report)
    marks = thresholds(spec)
    by_isp = rollup(report, 'isp')
    by_segment = rollup(report, 'segment')
    charts = [
        line_chart(
            'isp-bounce', 'Bounce rate per ISP', days, _rate_series(by_isp, 'bounce_rate'), marks['bounce_rate']
        ),
        line_chart(
            'isp-complaint',
            'Complaint rate per ISP',
            days,
            _rate_series(by_isp, 'complaint_rate'),
            marks['complaint_rate'],
        ),
        line_chart(
            'segment-bounce',
            'Bounce rate per list segment',
            days,
            _rate_series(by_segment, 'bounce_rate'),
            marks['bounce_rate'],
        ),
        line_chart(
            'segment-complaint',
            'Complaint rate per list segment',
            days,
            _rate_series(by_segment, 'complaint_rate'),
            marks['complaint_rate'],
        ),
    ]
    data = as_data(report)
    group_rows = [
        [
            '-' if row[name] is None else percent(row[name]) if name.endswith('_rate') else str(row[name])
            for name, _title in TABLE_COLUMNS
        ]
        for row in data['groups']
    ]
    reasons = [
        [item['status'], item['category'] or '-', item['reason'], str(item['count'])] for item in data['top_reasons']
    ]
    total = report.total
    out = [
        '<!DOCTYPE html>',
        '<html lang="en">',
        '<head>',
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        f'<title>{escape(title)} {escape(period)}</title>',
        f'<script>{ERROR_HOOK}</script>',
        f'<style>{STYLE}</style>',
        '</head>',
        '<body>',
        f'<h1>{escape(title)}: {escape(period)}</h1>',
        f'<p>Days in UTC. {total.sent} delivered, {total.bounced} bounced ({percent(total.bounce_rate)}),'
        f' {total.complaints} complaints ({percent(total.complaint_rate)}), {total.deferred} deferrals'
        f' ({percent(total.deferral_rate)}), {total.expired} expired.</p>',
        '<h2>Rates per ISP</h2>',
        '<div class="charts">',
        *charts[:2],
        '</div>',
        _summary(by_isp, 'ISP'),
        '<h2>Rates per list segment</h2>',
        '<div class="charts">',
        *charts[2:],
        '</div>',
        _summary(by_segment, 'segment'),
        *sections,
        '<h2>Top diagnostic reasons</h2>',
        _table(['status', 'category', 'reason', 'count'], reasons, 3, wrap=2) if reasons else '<p>None.</p>',
        '<h2>Every day, stream, sending IP, ISP and segment</h2>',
        _table([t for _n, t in TABLE_COLUMNS], group_rows, 5) if group_rows else '<p>No events in this period.</p>',
        '<h2>Definitions</h2>',
        '<dl class="defs">',
        *(f'<dt>{escape(name)}</dt><dd>{escape(formula)}</dd>' for name, formula in RATE_DEFINITIONS.items()),
        '</dl>',
        f'<script>{CHECK_DRAWN}</script>',
        '</body>',
        '</html>',
    ]
    return '\n'.join(out) + '\n'
