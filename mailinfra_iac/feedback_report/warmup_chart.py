"""The warm-up charts of the HTML report: per warming IP, its planned daily cap against what it delivered.

The cap is the spec's calendar (``facts.warmup.warmup_plan``), the deliveries the report's ``sent`` count of that
sending IP per day. Report days are UTC days, the caps those of the warm-up time zone's days: near midnight a
delivery may count on the neighbouring day. A host holds an IP on a day over its rate lines, so its real cap may be
below the planned one; the chart shows the plan.
"""

from __future__ import annotations

from html import escape

from ..facts.warmup import WarmupPlan
from .aggregate import Report, rollup
from .html import HEIGHT, LEFT, PALETTE, TOP, WIDTH, _nice_step, _num

RIGHT = 120
BOTTOM = 40


def count_chart(chart_id: str, title: str, days: list[str], series: dict[str, dict[str, int]]) -> str:
    """An SVG line chart of counts over days: one ``g.series`` per name with at least one point."""
    drawn = {name: points for name, points in series.items() if points}
    values = [value for points in drawn.values() for value in points.values()]
    step = _nice_step(max([*values, 1]) * 1.05 / 4)
    top = step * 4
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(index: int) -> float:
        return LEFT + (plot_w / 2 if len(days) == 1 else plot_w * index / (len(days) - 1))

    def y(value: float) -> float:
        return TOP + plot_h * (1 - value / top)

    out = [
        f'<figure class="chart" id="{escape(chart_id)}" data-series="{len(drawn)}">',
        f'<figcaption>{escape(title)}</figcaption>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}"'
        f' role="img" aria-label="{escape(title)}">',
        f'<rect class="plot" x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}"/>',
    ]
    for tick in range(5):
        value = step * tick
        out.append(f'<line class="grid" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{_num(y(value))}" y2="{_num(y(value))}"/>')
        out.append(f'<text class="tick" x="{LEFT - 6}" y="{_num(y(value) + 4)}" text-anchor="end">{value:,.0f}</text>')
    label_every = max(1, (len(days) + 9) // 10)
    for index, day in enumerate(days):
        if index % label_every == 0 or index == len(days) - 1:
            out.append(
                f'<text class="tick" x="{_num(x(index))}" y="{TOP + plot_h + 18}" text-anchor="middle">'
                f'{escape(day[5:])}</text>'
            )
    if not drawn:
        out.append(
            f'<text class="empty" x="{LEFT + plot_w / 2}" y="{TOP + plot_h / 2}" text-anchor="middle">no data</text>'
        )
    for number, (name, points) in enumerate(drawn.items()):
        colour = PALETTE[number % len(PALETTE)]
        path: list[str] = []
        dots: list[str] = []
        pen_down = False
        for index, day in enumerate(days):
            count = points.get(day)
            if count is None:
                pen_down = False
                continue
            path.append(f'{"L" if pen_down else "M"}{_num(x(index))} {_num(y(count))}')
            pen_down = True
            dots.append(
                f'<circle cx="{_num(x(index))}" cy="{_num(y(count))}" r="3" fill="{colour}">'
                f'<title>{escape(name)} {escape(day)}: {count:,}</title></circle>'
            )
        legend_y = TOP + 14 + 18 * number
        out.append(f'<g class="series" data-name="{escape(name)}">')
        out.append(f'<path d="{" ".join(path)}" stroke="{colour}" fill="none" stroke-width="2"/>')
        out.extend(dots)
        out.append(
            f'<line x1="{WIDTH - RIGHT + 12}" x2="{WIDTH - RIGHT + 32}" y1="{legend_y}" y2="{legend_y}"'
            f' stroke="{colour}" stroke-width="2"/>'
        )
        out.append(f'<text class="legend" x="{WIDTH - RIGHT + 38}" y="{legend_y + 4}">{escape(name)}</text>')
        out.append('</g>')
    out += ['</svg>', '</figure>']
    return '\n'.join(out)


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
