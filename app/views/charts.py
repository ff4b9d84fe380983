"""Charts drawn on the server as inline SVG (no library, nothing loaded from outside):
stacked bars for counts and amounts, lines for shares. Each chart has a title and a
description for screen readers; the table beside it carries the same figures."""
from __future__ import annotations

import math

from flask_babel import gettext as _
from markupsafe import Markup, escape

WIDTH, HEIGHT = 960, 400
LEFT, RIGHT, TOP, BOTTOM = 76, 16, 56, 86
BOTTOM_LEVEL = 30  # below the plot when the category labels are level (not slanted)
LEGEND_ROW = 18  # px between the rows of the legend
# Okabe-Ito: told apart by people with the common colour-vision differences
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#999933",
           "#332288")
MAX_SERIES = len(PALETTE)


def _nice_step(top: float) -> float:
    if top <= 0:
        return 1
    raw = top / 5
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power


def _tick(value: float, percent: bool) -> str:
    if percent:
        return f"{value * 100:.0f}%"
    return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"


def _fold(series: list[tuple[str, list]]) -> list[tuple[str, list]]:
    """At most MAX_SERIES series: the largest, and the rest as その他."""
    if len(series) <= MAX_SERIES:
        return series
    ranked = sorted(series, key=lambda s: -sum(v or 0 for v in s[1]))
    kept, rest = ranked[:MAX_SERIES - 1], ranked[MAX_SERIES - 1:]
    others = [sum(s[1][i] or 0 for s in rest) for i in range(len(series[0][1]))]
    order = [s for s in series if s in kept]
    return order + [(_("Others"), others)]


def _text_width(text: str, size: float = 12) -> float:
    """About how wide ``text`` is drawn at ``size`` px: a full-width character is one em,
    anything else a little over half of one."""
    return sum(size if ord(ch) > 0x2E7F else size * 0.6 for ch in str(text))


def chart(title: str, desc: str, categories: list[str], series: list[tuple[str, list]],
          percent: bool = False, chart_id: str = "chart", unit: str = "") -> Markup:
    """Stacked bars (``percent`` False) or lines (shares, 0–100%) of ``series`` (label,
    one value per category; None for no value) over ``categories``. ``unit`` (such as
    （件）) is written above the value axis."""
    series = _fold(series) if not percent else series[:MAX_SERIES]
    n = max(len(categories), 1)
    # the legend: as many rows as it needs (long venue or clerk names), the plot below it
    legend, lx, row = [], LEFT, 0
    for index, (label, _values) in enumerate(series):
        text = str(label) or _("Total")
        width = 16 + _text_width(text) + 20
        if lx > LEFT and lx + width - 20 > WIDTH - RIGHT:
            lx, row = LEFT, row + 1
        legend.append((lx, 14 + LEGEND_ROW * row, PALETTE[index % len(PALETTE)], text))
        lx += width
    top_edge = TOP + LEGEND_ROW * row
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    band = plot_w / n
    # category labels: thinned out when there are many, slanted when they would touch
    every = max(1, math.ceil(n / 16))
    widest = max((_text_width(c) for c in categories), default=0)
    slanted = widest > band * every - 8
    height = top_edge + plot_h + (BOTTOM if slanted else BOTTOM_LEVEL)
    if percent:
        top = max([v for s in series for v in s[1] if v is not None] + [0])
        top = 1.0 if top <= 1.0 else top
    else:
        top = max([sum(s[1][i] or 0 for s in series) for i in range(len(categories))] + [0])
    step = _nice_step(top if not percent else max(top, 0.1))
    if percent:
        step = 0.2 if top <= 1.0 else step
    else:
        step = max(1, step)  # counts and yen: whole numbers on the axis
    ceiling = max(step, math.ceil(top / step) * step) if top else step * 5

    def y(value: float) -> float:
        return top_edge + plot_h - (value / ceiling) * plot_h

    out = [f'<svg class="stats-chart" viewBox="0 0 {WIDTH} {height}" role="img" '
           f'aria-labelledby="{chart_id}-title {chart_id}-desc" '
           f'xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" font-size="12">',
           f'<title id="{chart_id}-title">{escape(title)}</title>',
           f'<desc id="{chart_id}-desc">{escape(desc)}</desc>',
           f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#fff"/>']
    # grid and the y axis
    value = 0.0
    while value <= ceiling + 1e-9:
        gy = y(value)
        out.append(f'<line x1="{LEFT}" y1="{gy:.1f}" x2="{WIDTH - RIGHT}" y2="{gy:.1f}" '
                   f'stroke="#ddd" stroke-width="1"/>')
        out.append(f'<text x="{LEFT - 6}" y="{gy + 4:.1f}" text-anchor="end" fill="#333">'
                   f'{escape(_tick(value, percent))}</text>')
        value += step
    out.append(f'<line x1="{LEFT}" y1="{top_edge + plot_h}" x2="{WIDTH - RIGHT}" '
               f'y2="{top_edge + plot_h}" stroke="#333" stroke-width="1"/>')
    if unit:
        out.append(f'<text x="{LEFT - 6}" y="{top_edge - 14}" text-anchor="end" fill="#333">'
                   f'{escape(unit)}</text>')
    # the data
    if percent:
        for index, (label, values) in enumerate(series):
            colour = PALETTE[index % len(PALETTE)]
            points = [(LEFT + band * (i + 0.5), y(v)) for i, v in enumerate(values)
                      if v is not None]
            if len(points) > 1:
                path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
                out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" '
                           f'stroke-width="2"/>')
            for i, v in enumerate(values):
                if v is not None:
                    out.append(f'<circle cx="{LEFT + band * (i + 0.5):.1f}" cy="{y(v):.1f}" '
                               f'r="3" fill="{colour}"><title>{escape(categories[i])} '
                               f'{escape(label)} {escape(_tick(v, True))}</title></circle>')
    else:
        width = max(band * 0.7, 1)
        for i in range(len(categories)):
            base = 0.0
            for index, (label, values) in enumerate(series):
                v = values[i] or 0
                if not v:
                    continue
                colour = PALETTE[index % len(PALETTE)]
                top_y, bottom_y = y(base + v), y(base)
                out.append(f'<rect x="{LEFT + band * i + (band - width) / 2:.1f}" '
                           f'y="{top_y:.1f}" width="{width:.1f}" '
                           f'height="{max(bottom_y - top_y, 0.5):.1f}" fill="{colour}">'
                           f'<title>{escape(categories[i])} {escape(label)} {v:,}</title></rect>')
                base += v
    # category labels
    for i, category in enumerate(categories):
        if i % every:
            continue
        cx, cy = LEFT + band * (i + 0.5), top_edge + plot_h + 14
        if slanted:
            out.append(f'<text x="{cx:.1f}" y="{cy:.1f}" text-anchor="end" fill="#333" '
                       f'transform="rotate(-35 {cx:.1f} {cy:.1f})">{escape(category)}</text>')
        else:
            out.append(f'<text x="{cx:.1f}" y="{cy:.1f}" text-anchor="middle" '
                       f'fill="#333">{escape(category)}</text>')
    # legend
    for lx, ly, colour, text in legend:
        out.append(f'<rect x="{lx:.1f}" y="{ly}" width="12" height="12" fill="{colour}"/>')
        out.append(f'<text x="{lx + 16:.1f}" y="{ly + 10}" fill="#111">{escape(text)}</text>')
    out.append("</svg>")
    return Markup("".join(out))
