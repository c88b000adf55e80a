"""The statistics charts read: every chart's title, tick labels and axis titles stay in its own cell, computed from
the layout (fast) and measured on the figure as plotly.js draws it in chromium."""
import os
from pathlib import Path

import pytest

from vizattn.viz.figures import CHART_BANDS, plotly_bar_charts

VIEWS = ["head.context · effective", "head.context · loop1", "head.context · loop2",
         "decode_head.spatial_scale_attention · mean over heads"]  # awkward: long names, as foreign models have


def statistics_like() -> list[dict]:
    """The Statistics tab's charts: four horizontal ones with chance ticks and x titles, then a gate's bars."""
    charts = [dict(title=t, x=VIEWS, y=[0.5, 0.25, 0.75, 0.1], horizontal=True, xtitle=a, text=["a"] * 4,
                   chance=[1.0] * 4)
              for t, a in (("Entropy", "0: all on one cell · 1: uniform"), ("Mean attended distance", "pixels from the query"),
                           ("Weight on the query's class", "share of the weight"),
                           ("Weight on the query's object", "share of the weight"))]
    charts.append(dict(title="decode_head.spatial_scale_attention: unary vs binary", x=["unary 1/(1+w)", "binary w/(1+w)"],
                       y=[0.3, 0.7], ytitle="mean share over positions"))
    charts.append(dict(title="psa: channel weights A_ch", x=list(range(64)), y=[0.5] * 64, xtitle="channel",
                       ytitle="sigmoid gate (0..1)"))
    return charts


def cells(fig) -> list[dict]:
    """Per chart, in px from the figure's top: its plot area and its title's box (as the layout places them)."""
    lay = fig.layout
    paper = lay.height - lay.margin.t - lay.margin.b
    out = []
    for i, note in enumerate(lay.annotations):
        ax = "" if i == 0 else str(i + 1)
        y0, y1 = lay[f"yaxis{ax}"].domain
        top = lay.margin.t + (1 - y1) * paper
        lines = note.text.count("<br>") + 1
        out.append(dict(plot_top=top, plot_bottom=lay.margin.t + (1 - y0) * paper, x=lay[f"xaxis{ax}"].domain,
                        title_top=top - CHART_BANDS["title"] * lines, note=note))
    return out


@pytest.mark.parametrize("columns", [1, 2, 3])
def test_titles_and_axis_titles_have_their_own_room(columns):
    charts = statistics_like()
    fig = plotly_bar_charts(charts, columns=columns, row_height=90, width=400 * columns)
    found = cells(fig)
    assert [c["note"].text.replace("<br>", " ") for c in found] == [c["title"] for c in charts]  # full titles
    for i, c in enumerate(found):
        col = i % columns
        assert col / columns < c["note"].x < (col + 1) / columns  # the title over its own cell, at its plot's top
        assert c["note"].y == fig.layout[f"yaxis{'' if i == 0 else i + 1}"].domain[1] and c["note"].yanchor == "bottom"
        assert c["title_top"] >= 0
        below = [d for d in found[i + 1:] if d["plot_top"] > c["plot_bottom"]]  # the next row
        if below:
            nxt = min(below, key=lambda d: d["plot_top"])
            room = nxt["title_top"] - c["plot_bottom"]  # between this plot and the next row's title
            assert room >= CHART_BANDS["ticks"] + (CHART_BANDS["xtitle"] if charts[i].get("xtitle") else 0)
    for a, b in zip(found, found[1:]):  # columns side by side never share x
        if a["plot_top"] == b["plot_top"]:
            assert a["x"][1] < b["x"][0]
    assert fig.layout.xaxis.title.text == "0: all on one cell · 1: uniform"  # each axis its own title
    assert fig.layout.xaxis2.title.text == "pixels from the query"


def test_long_labels_are_wrapped_whole_never_cut():
    fig = plotly_bar_charts(statistics_like()[:1], columns=1, row_height=90, width=400)
    labels = fig.data[0].y
    assert [t.replace("<br>", " ") for t in labels] == VIEWS
    assert max(len(line) for t in labels for line in t.split("<br>")) <= 400 // 3 / CHART_BANDS["ylabel_char"] + 12


CHROMIUM = "/usr/bin/chromium"


@pytest.mark.skipif(not Path(CHROMIUM).exists() and os.environ.get("CI") != "true", reason="needs Debian chromium")
@pytest.mark.parametrize("columns, width", [(1, 400), (1, 700), (2, 800), (3, 1100)])
def test_drawn_texts_stay_in_their_own_cell(columns, width, tmp_path):
    """Drawn by plotly.js at `width` px: every chart's title, tick labels and axis titles lie in its column and
    between the rows above and below, and no text of one chart overlaps another chart's plot or texts."""
    from benchmarks.browser import browser_page

    fig = plotly_bar_charts(statistics_like(), columns=columns, row_height=90, width=400 * columns)
    fig.update_layout(width=width)
    html = tmp_path / "charts.html"
    fig.write_html(html, include_plotlyjs=True, full_html=True, div_id="fig")
    with browser_page(width + 40, fig.layout.height + 40) as page:
        page.goto(html.as_uri())
        page.wait_for_function("() => document.querySelector('#fig .main-svg')")
        boxes = page.evaluate("""() => {
            const gd = document.getElementById('fig'), fl = gd._fullLayout, out = [];
            const svg = gd.querySelector('.main-svg').getBoundingClientRect();
            const box = e => { const r = e.getBoundingClientRect();
                               return [r.left - svg.left, r.top - svg.top, r.right - svg.left, r.bottom - svg.top]; };
            const n = gd.layout.annotations.length;
            for (let i = 0; i < n; i++) {
                const ax = i === 0 ? '' : String(i + 1), xa = fl['xaxis' + ax], ya = fl['yaxis' + ax];
                const texts = [];
                const add = (what, el) => { if (el && el.textContent.trim()) texts.push([what, box(el)]); };
                add('title', gd.querySelectorAll('.annotation')[i]);
                add('xtitle', gd.querySelector('.g-x' + ax + 'title text'));
                add('ytitle', gd.querySelector('.g-y' + ax + 'title text'));
                gd.querySelectorAll('.subplot.x' + ax + 'y' + ax + ' .xtick text, .subplot.x' + ax + 'y' + ax
                                    + ' .ytick text').forEach(t => add('tick', t));
                gd.querySelectorAll('.xaxislayer-above .x' + ax + 'tick text, .yaxislayer-above .y' + ax + 'tick text')
                  .forEach(t => add('tick', t));
                out.push({plot: [xa._offset, ya._offset, xa._offset + xa._length, ya._offset + ya._length], texts: texts});
            }
            return {charts: out, width: svg.width};
        }""")
        page.screenshot(path=str(tmp_path / "charts.png"))
    charts = boxes["charts"]
    col_w = boxes["width"] / columns

    def overlap(a, b, slack=1.0):
        return a[0] < b[2] - slack and b[0] < a[2] - slack and a[1] < b[3] - slack and b[1] < a[3] - slack

    for i, c in enumerate(charts):
        kinds = {k for k, _ in c["texts"]}
        assert {"title", "tick"} <= kinds, (i, kinds)
        col = i % columns
        same_row = [d for d in charts if abs(d["plot"][1] - c["plot"][1]) < 1]
        above = [d["plot"][3] for d in charts if d["plot"][3] < c["plot"][1]]
        below = [d["plot"][1] for d in charts if d["plot"][1] > c["plot"][3]]
        for kind, b in c["texts"]:
            assert col * col_w - 1 <= b[0] and b[2] <= (col + 1) * col_w + 1, (i, kind, b)  # in its column
            assert b[1] >= max(above, default=0) - 1 and b[3] <= min(below, default=1e9) + 1, (i, kind, b)
            for j, d in enumerate(charts):
                if j != i:
                    assert not overlap(b, d["plot"]), (i, kind, "over the plot of", j)
                    for other, ob in d["texts"]:
                        assert not overlap(b, ob), (i, kind, "over", j, other)
        assert len(same_row) <= columns
