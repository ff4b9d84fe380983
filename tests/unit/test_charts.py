"""The server-drawn SVG charts of 集計 (app/views/charts.py): a long legend wraps onto
more rows instead of running off the chart, level labels when they fit, slanted when not,
and the unit above the value axis."""
import re

from app.views import charts

DAYS = [f"12/{d:02d}" for d in range(1, 32)]


def _texts(svg: str) -> list[tuple[float, float, str]]:
    return [(float(x), float(y), text) for x, y, text in
            re.findall(r'<text x="([\d.]+)" y="([\d.]+)"[^>]*>([^<]*)</text>', svg)]


def test_a_long_legend_wraps_inside_the_chart(app):
    venues = [f"市役所本庁舎 {n}階 市民課窓口" for n in range(1, 9)]
    with app.test_request_context():
        svg = str(charts.chart("t", "d", DAYS, [(v, [1] * 31) for v in venues]))
    legend = [(x, y) for x, y, text in _texts(svg) if text in venues]
    assert len(legend) == 8
    assert len({y for _x, y in legend}) == 2  # four a row
    for x, _y in legend:
        assert x + charts._text_width(venues[0]) <= charts.WIDTH
    height = float(re.search(r'viewBox="0 0 960 ([\d.]+)"', svg).group(1))
    plot_top = min(float(y) for y in re.findall(r'<line x1="76" y1="([\d.]+)"', svg))
    assert plot_top > max(y for _x, y in legend) + 6  # the plot starts below the legend
    assert height > charts.HEIGHT - charts.BOTTOM + charts.BOTTOM_LEVEL


def test_labels_level_when_they_fit_slanted_when_not(app):
    with app.test_request_context():
        level = str(charts.chart("t", "d", DAYS, [("予約", [0] * 31)], unit="（件）"))
        long = [f"2026/11/{d:02d}〜12/{d:02d}" for d in range(1, 31)]
        slanted = str(charts.chart("t", "d", long, [("予約", [0] * 30)]))
    assert "rotate(" not in level and ">12/01<" in level and ">12/03<" in level
    assert ">12/02<" not in level  # every other day of a month
    assert "rotate(" in slanted
    assert ">（件）</text>" in level and "（件）" not in slanted
    assert 'viewBox="0 0 960 344"' in level  # no room kept for slanted labels
