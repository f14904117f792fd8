"""The warm-up charts of the HTML report: per warming IP, its planned daily cap against what it delivered.

The cap is the spec's calendar (``facts.warmup.warmup_plan``), the deliveries the report's ``sent`` count of that
sending IP per day. Report days are UTC days, the caps those of the warm-up time zone's days: near midnight a
delivery may count on the neighbouring day. A host holds an IP on a day over its rate lines, so its real cap may be
below the planned one; the chart shows the plan.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from .aggregate import Report, rollup
from .html import line_chart

if TYPE_CHECKING:
    from ..facts.warmup import WarmupPlan


def count_chart(chart_id: str, title: str, days: list[str], series: dict[str, dict[str, int]]) -> str:
    """An SVG line chart of counts over days: one ``g.series`` per name with at least one point."""
    counts: dict[str | None, dict[str, float | None]] = {name: dict(points) for name, points in series.items()}
    return line_chart(
        chart_id,
        title,
        days,
        counts,
        (),
        axis_label=lambda value, _top: f'{value:,.0f}',
        point_label=lambda value: f'{value:,.0f}',
        smallest_top=1,
    )


def warmup_section(plan: WarmupPlan, report: Report, days: list[str]) -> list[str]:
    """The report's warm-up section: one chart per IP warming during the report's days (none: a sentence)."""
    shown = set(days)
    caps: dict[str, dict[str, int]] = {}
    for day in plan.days:
        if day.date.isoformat() in shown:
            caps.setdefault(day.ip, {})[day.date.isoformat()] = day.cap
    sent = rollup(report, 'sending_ip')
    charts = [
        count_chart(
            f'warmup-{ip}',
            f'Warm-up of {ip}: daily cap and deliveries',
            days,
            {'cap': cap_days, 'delivered': {day: counts.sent for day, counts in sent.get(ip, {}).items()}},
        )
        for ip, cap_days in sorted(caps.items())
    ]
    intro = (
        f'<p>Curve {escape(plan.curve)} ({escape(plan.source)}); caps per day in {escape(plan.time_zone)}, '
        'deliveries per UTC day. A day over the rate lines holds the IP on the host, so its cap may be lower.</p>'
    )
    if not charts:
        return ['<h2>Warm-up</h2>', '<p>No IP of the spec warms up during these days.</p>']
    return ['<h2>Warm-up</h2>', intro, '<div class="charts">', *charts, '</div>']
