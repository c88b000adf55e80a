"""Static (matplotlib) and interactive (plotly) figures of attention panels, and their export to bytes."""
from __future__ import annotations

import io
import math

import numpy as np

from vizattn import jsonsafe
from vizattn.text import html_text
from vizattn.viz.overlay import (RELATIVE, RELATIVE_CMAP, RELATIVE_SPAN, colormap, heat_overlay, is_log, is_relative,
                                  is_shared, map_top, nearly_uniform, panel_cmap, scale, scale_caption, scale_range,
                                  uniform_position)

FORMATS = ("png", "svg", "pdf")
#: every file an export can write: the figures (matplotlib), the interactive figure, the raw maps, the metadata
EXPORT_FORMATS = (*FORMATS, "html", "npz", "json")


def shared_tops(panels, clip: float = 100.0) -> list[float]:
    """Each panel's top under shared normalisation: the largest maximum (or clip-percentile) among the panels of
    its kind. Distributions (softmax rows, summing to 1) and gates (sigmoids, each in 0..1) are scaled apart: a
    gate near 1 would otherwise leave every distribution black."""
    by_kind: dict[bool, float] = {}
    for p in panels:  # a class token's patch map (part of a distribution) is scaled with the distributions
        kind = p.uniform is not None
        by_kind[kind] = max(by_kind.get(kind, -np.inf), map_top(p.grid_map, clip))
    return [by_kind[p.uniform is not None] for p in panels]


#: how a figure is drawn when the caller does not say (the CLI); the app passes what its sidebar shows
FIGURE_DEFAULTS = {"cmap": "inferno", "norm": "per-map", "alpha": 0.85, "clip": 100.0, "under": "dimmed photo"}


def panel_scales(panels, cmap: str = "inferno", norm: str = "per-map", clip: float = 100.0) -> list[dict]:
    """How each panel is coloured, as the live grid colours it: its shared top (or None), uniform level 1/N (None
    for a gate), colorbar ends in weights, colormap, where 1/N sits on the colorbar, whether the map is nearly
    uniform and what the colorbar means in words."""
    tops = shared_tops(panels, clip) if is_shared(norm) else [None] * len(panels)
    out = []
    for p, top in zip(panels, tops):
        u = p.uniform
        lo, hi = scale_range(p.grid_map, norm, top, None, clip, u)
        out.append({"top": top, "uniform": u, "range": (lo, hi), "cmap": panel_cmap(cmap, norm, u),
                    "relative": is_relative(norm, u), "log": is_log(norm) or is_relative(norm, u),
                    "uniform_at": uniform_position(p.grid_map, norm, top, None, clip, u),
                    "nearly_uniform": nearly_uniform(p.grid_map, u), "caption": scale_caption(p.grid_map, norm, u, lo, hi)})
    return out


def scale_heading(norm: str, clip: float, cmap: str, alpha: float, under: str) -> str:
    """One line under a figure's title: how every panel was drawn and what its colorbar means."""
    how = f"{norm} normalisation" + (f", saturated above the {clip:g}th percentile" if clip < 100 and norm != RELATIVE else "")
    if norm == RELATIVE:
        bars = (f"colorbars: weight ÷ uniform level 1/N ({RELATIVE_CMAP}, log, ×1/{RELATIVE_SPAN:g} … "
                f"×{RELATIVE_SPAN:g}, white at ×1); gates keep 0…1 in {cmap}")
    else:
        bars = f"colorbars: attention weight per grid cell, {cmap}; | marks the uniform level 1/N"
    return f"{how} · opacity {alpha:g} · {under} · {bars}"


def _grid_shape(n: int, columns: int) -> tuple[int, int]:
    """(rows, columns) of a grid of n cells at most `columns` wide."""
    cols = min(columns, max(1, n))
    return math.ceil(max(1, n) / cols), cols


def matplotlib_grid(image: np.ndarray, panels, titles: list[str] | None = None, cmap: str = "inferno",
                    norm: str = "per-map", alpha: float = 0.85, columns: int = 4, clip: float = 100.0,
                    under: str = "dimmed photo", title: str | None = None):
    """A grid of heat overlays, one per panel, each titled and with a colorbar in absolute weights (relative to
    uniform: in ratios to 1/N) that marks a distribution's uniform level 1/N and says under it what it means;
    `title` (lines) heads the figure. Returns a matplotlib Figure (Agg, no browser)."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import LogNorm, Normalize
    from matplotlib.figure import Figure
    from matplotlib.transforms import blended_transform_factory

    rows, cols = _grid_shape(len(panels), columns)
    h, w = image.shape[:2]
    heading = title.count("\n") + 1 if title else 0
    # any aspect ratio: cells at most 4:1 either way (an extreme image is letterboxed inside its cell)
    fig = Figure(figsize=(3.2 * cols, 3.2 * rows * min(4.0, max(0.25, h / w)) + 0.5 + 0.2 * heading), dpi=120)
    for i, (p, sc) in enumerate(zip(panels, panel_scales(panels, cmap, norm, clip))):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.imshow(heat_overlay(image, p.image_map, alpha, cmap, norm, sc["top"], None, p.pixel, p.cell_box, clip, under,
                               sc["uniform"]))
        ax.set_title((titles[i] if titles else p.title), fontsize=8)
        ax.set_axis_off()
        lo, hi = sc["range"]
        scale_norm = LogNorm(lo, hi) if sc["log"] else Normalize(lo, hi if hi > lo else lo + 1e-12)
        bar = fig.colorbar(ScalarMappable(scale_norm, sc["cmap"]), ax=ax, orientation="horizontal", fraction=0.05,
                           pad=0.03)
        bar.ax.tick_params(labelsize=6)
        if sc["relative"]:
            ratios = [1 / RELATIVE_SPAN, 1 / 4, 1, 4, RELATIVE_SPAN]
            bar.set_ticks([sc["uniform"] * r for r in ratios],
                          labels=[f"×1/{1 / r:g}" if r < 1 else "×1" if r == 1 else f"×{r:g}" for r in ratios])
            bar.ax.minorticks_off()
        if sc["uniform_at"] is not None:  # the uniform level: a line on the bar, or an arrow at the end past it
            at = sc["uniform_at"]
            where = blended_transform_factory(bar.ax.transData, bar.ax.transAxes)
            if 0 <= at <= 1:
                bar.ax.axvline(sc["uniform"], color="black", lw=1.4)
                bar.ax.axvline(sc["uniform"], color="white", lw=0.5)
                bar.ax.text(sc["uniform"], 1.15, "uniform", transform=where, ha="center", va="bottom", fontsize=6)
            else:
                bar.ax.text(0 if at < 0 else 1, 1.15, "◂ uniform (below)" if at < 0 else "uniform (above) ▸",
                            transform=bar.ax.transAxes, ha="left" if at < 0 else "right", va="bottom", fontsize=6)
        bar.set_label(sc["caption"], fontsize=6)
    if title:
        fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    return fig


def figure_bytes(fig, fmt: str) -> bytes:
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}")
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt)
    return buf.getvalue()


def _cell_axes(i: int, n: int, columns: int) -> tuple[str, dict, dict, tuple[float, float, float]]:
    """Axis suffix, x and y axis layouts and (x0, x1, y1) of cell i in a hand-written grid of subplots.

    Plotly figures are laid out directly: `make_subplots` and per-cell updates cost ~0.3 s for a 3×4 grid,
    which a click would pay every time."""
    rows, cols = _grid_shape(n, columns)
    r, c = divmod(i, cols)
    gap_x, gap_y = 0.03, 0.08 / rows
    ax = "" if i == 0 else str(i + 1)
    x0, x1 = c / cols + gap_x / 2, (c + 1) / cols - gap_x / 2
    y0, y1 = 1 - (r + 1) / rows + gap_y / 2, 1 - r / rows - gap_y
    xaxis = dict(domain=[x0, x1], anchor=f"y{ax}")
    yaxis = dict(domain=[y0, y1], anchor=f"x{ax}")
    return ax, xaxis, yaxis, (x0, x1, y1)


def _cell_title(text: str, x0: float, x1: float, y1: float) -> dict:
    return dict(text=html_text(text), x=(x0 + x1) / 2, y=y1, xref="paper", yref="paper", xanchor="center", yanchor="bottom",
                showarrow=False, font=dict(size=12))


def plotly_grid(image: np.ndarray, panels, titles: list[str] | None = None, cmap: str = "inferno",
                norm: str = "per-map", alpha: float = 0.6, columns: int = 3, title: str | None = None,
                clip: float = 100.0, under: str | None = None):
    """Interactive maps on the feature grid, hover showing the weight; the query cell is outlined.

    Colours are drawn as an image through the same matplotlib colormap as every other figure (hosts such
    as Streamlit restyle heatmap colorscales); an invisible heatmap on top carries the hover values. With
    `under` (a backdrop) each panel is the full overlay as the static figures draw it (photo, opacity, marks),
    and a line under it says what its colours mean and where the uniform level 1/N lies.
    """
    import plotly.graph_objects as go

    from vizattn.viz.overlay import data_uri

    n = len(panels)
    rows, _ = _grid_shape(n, columns)
    scales = panel_scales(panels, cmap, norm, clip)
    tops = [sc["top"] for sc in scales]
    h, w = image.shape[:2]
    data, layout, notes, shapes = [], {}, [], []
    hidden = dict(showticklabels=False, showgrid=False, zeroline=False)
    for i, p in enumerate(panels):
        ax, xaxis, yaxis, (x0, x1, y1) = _cell_axes(i, n, columns)
        layout[f"xaxis{ax}"] = {**xaxis, **hidden}
        layout[f"yaxis{ax}"] = {**yaxis, **hidden, "autorange": "reversed", "scaleanchor": f"x{ax}"}
        sc, (gh, gw) = scales[i], p.grid_map.shape
        if under is None:
            data.append(dict(type="image", z=colormap(scale(p.grid_map, norm, tops[i], None, clip, sc["uniform"]),
                                                      sc["cmap"]), hoverinfo="skip", xaxis=f"x{ax}", yaxis=f"y{ax}"))
        else:  # the image-size overlay, its pixels sized so that it covers the grid's cells exactly
            over = heat_overlay(image, p.image_map, alpha, cmap, norm, tops[i], None, p.pixel, p.cell_box, clip, under,
                                sc["uniform"])
            data.append(dict(type="image", source=data_uri(over), x0=-0.5 + gw / w / 2, y0=-0.5 + gh / h / 2,
                             dx=gw / w, dy=gh / h, hoverinfo="skip", xaxis=f"x{ax}", yaxis=f"y{ax}"))
        ratio = "<br>×%{customdata:.3g} of uniform 1/N" if sc["uniform"] else ""
        data.append(dict(type="heatmap", z=p.grid_map, opacity=0, showscale=False, xaxis=f"x{ax}", yaxis=f"y{ax}",
                         **({"customdata": p.grid_map / sc["uniform"]} if sc["uniform"] else {}),
                         hovertemplate="cell (%{y}, %{x})<br>weight %{z:.4g}" + ratio + "<extra>" + html_text(p.title)
                                       + "</extra>"))
        gy, gx = p.cell
        if under is None:
            shapes.append(dict(type="rect", x0=gx - 0.5, x1=gx + 0.5, y0=gy - 0.5, y1=gy + 0.5, xref=f"x{ax}",
                               yref=f"y{ax}", line=dict(color="cyan", width=2)))
        notes.append(_cell_title(titles[i] if titles else p.title, x0, x1, y1))
        notes.append(dict(text=html_text(sc["caption"]), x=(x0 + x1) / 2, y=yaxis["domain"][0], xref="paper",
                          yref="paper", xanchor="center", yanchor="top", showarrow=False, font=dict(size=10, color="#555")))
    top = 40 + (24 * (title.count("\n") + 1) + 6 if title else 0)
    layout.update(shapes=shapes, annotations=notes, height=300 * rows + top + 20, margin=dict(l=5, r=5, t=top, b=25))
    if title:
        layout["title"] = dict(text="<br>".join(html_text(t) for t in title.split("\n")), x=0.01, font=dict(size=14))
    return go.Figure(data=data, layout=layout)


def histogram_bars(values: np.ndarray, bins: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Bin centres and counts: a histogram sent to the browser as 50 bars instead of every value."""
    counts, edges = np.histogram(np.asarray(values, dtype=np.float64).ravel(), bins=bins)
    return (edges[:-1] + edges[1:]) / 2, counts


CHART_BANDS = dict(title=18, ticks=16, xtitle=16, gap=14, legend=26, ylabel_char=5.6, ytitle=18)  # px, at the fonts below


def _wrap(text: str, width: int) -> list[str]:
    """Text in lines of at most `width` characters (a longer word keeps its line), split at spaces."""
    lines: list[str] = []
    for word in str(text).split(" "):
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines or [""]


def plotly_bar_charts(charts: list[dict], columns: int = 3, row_height: int = 260, width: int = 900):
    """Several small bar charts as one plotly figure: one browser render per click instead of one per chart.

    Each chart is a dict with "title", "x", "y" and optionally "hover" (a hover template for its bars),
    "xtitle"/"ytitle" (axis titles), "text" (the numbers printed on the bars), "chance" (a grey tick per bar:
    what a uniform map scores) and "horizontal" (bars along x, their labels down the y axis).

    Laid out in pixels, so nothing of one chart reaches into another: each row is a band for the titles, the
    plots (`row_height` px), their tick labels and their x axis titles; each column keeps room on its left for
    its y tick labels and y axis titles. `width` is the width in px the columns are planned for (the figure
    stretches to its container; room planned in px stays enough at any wider width)."""
    import plotly.graph_objects as go

    n = len(charts)
    rows, cols = _grid_shape(n, columns)
    b = CHART_BANDS
    cell_w = width / cols
    chars = max(12, int(cell_w / 7.5))  # title characters per line at 12 px
    label_chars = max(10, int(cell_w / 3 / b["ylabel_char"]))  # a y label may take a third of its cell

    def labels_of(chart) -> list:
        if not isinstance(chart["x"][0], str):
            return np.asarray(chart["x"]).tolist()
        return ["<br>".join(html_text(t) for t in _wrap(v, label_chars)) for v in map(str, chart["x"])]

    shown = [labels_of(c) for c in charts]
    titles = [_wrap(c["title"], chars) for c in charts]
    # the room on the left of each column: its longest horizontal label (or a number's) and a y title
    left = [0.0] * cols
    for i, chart in enumerate(charts):
        longest = max((len(line) for v in shown[i] for line in str(v).split("<br>")), default=4) \
            if chart.get("horizontal") else 6
        room = 6 + b["ylabel_char"] * longest + (b["ytitle"] if chart.get("ytitle") else 0)
        left[i % cols] = max(left[i % cols], room)
    # each row's bands, top to bottom: titles, plot, tick labels (as many lines as its labels), x titles, gap
    bands = []
    for r in range(rows):
        members = range(r * cols, min(n, (r + 1) * cols))
        ticks = max(1 if charts[i].get("horizontal") else max(str(v).count("<br>") + 1 for v in shown[i])
                    for i in members)
        bands.append((b["title"] * max(len(titles[i]) for i in members), row_height, b["ticks"] * ticks,
                      b["xtitle"] if any(charts[i].get("xtitle") for i in members) else 0, b["gap"]))
    legend = any(c.get("chance") is not None for c in charts)
    top = b["legend"] if legend else 4
    paper = sum(sum(band) for band in bands)
    height = paper + top + 4

    data, layout, notes = [], {}, []
    chance_shown = False
    y = paper  # px from the paper's bottom, going down
    rows_px = []
    for band in bands:
        title_px, plot_px, tick_px, xtitle_px, gap_px = band
        rows_px.append((y - title_px, y - title_px - plot_px))  # plot top, plot bottom
        y -= sum(band)
    for i, chart in enumerate(charts):
        r, c = divmod(i, cols)
        ax = "" if i == 0 else str(i + 1)
        plot_top, plot_bottom = rows_px[r]
        x0 = (c * cell_w + left[c]) / width
        x1 = ((c + 1) * cell_w - 10) / width
        y0, y1 = plot_bottom / paper, plot_top / paper
        flip = chart.get("horizontal", False)
        labels = shown[i]
        layout[f"xaxis{ax}"] = dict(domain=[x0, x1], anchor=f"y{ax}", automargin=False, tickfont=dict(size=9),
                                    title=dict(text=html_text(chart.get("xtitle", "")), font=dict(size=10), standoff=2))
        layout[f"yaxis{ax}"] = dict(domain=[y0, y1], anchor=f"x{ax}", automargin=False, tickfont=dict(size=9),
                                    title=dict(text=html_text(chart.get("ytitle", "")), font=dict(size=10), standoff=2),
                                    **({"autorange": "reversed"} if flip else {}))
        values = np.asarray(chart["y"], np.float64).tolist()
        bar = dict(type="bar", xaxis=f"x{ax}", yaxis=f"y{ax}", name=chart["title"], showlegend=False,
                   hovertemplate=chart.get("hover", "%{y}: %{x:.4g}" if flip else "%{x}: %{y:.4g}") + "<extra></extra>",
                   **({"x": values, "y": labels, "orientation": "h"} if flip else {"x": labels, "y": values}))
        if chart.get("text") is not None:
            bar.update(text=list(chart["text"]), textposition="auto", textfont=dict(size=10))
        data.append(bar)
        if chart.get("chance") is not None:
            ticks = np.asarray(chart["chance"], np.float64).tolist()
            data.append(dict(type="scatter", mode="markers", xaxis=f"x{ax}", yaxis=f"y{ax}",
                             name="uniform map (chance)", showlegend=not chance_shown, legendgroup="chance",
                             marker=dict(symbol="line-ns-open" if flip else "line-ew-open", size=18, color="#555",
                                         line=dict(width=2)),
                             hovertemplate="a uniform map: %{" + ("x" if flip else "y") + ":.3g}<extra></extra>",
                             **({"x": ticks, "y": labels} if flip else {"x": labels, "y": ticks})))
            chance_shown = True
        notes.append(dict(text="<br>".join(html_text(t) for t in titles[i]), x=(c + 0.5) / cols, y=y1, xref="paper",
                          yref="paper", xanchor="center", yanchor="bottom", showarrow=False, font=dict(size=12)))
    layout.update(annotations=notes, height=height, margin=dict(l=0, r=0, t=top, b=4, autoexpand=False),
                  bargap=0.15, legend=dict(orientation="h", yanchor="top", y=1, yref="container", xanchor="right", x=1,
                                           font=dict(size=10)))
    return go.Figure(data=data, layout=layout)


def maps_npz(panels, meta: dict) -> bytes:
    """Raw grid maps (and image-size maps) with the metadata as JSON inside, for reuse in numpy."""
    buf = io.BytesIO()
    arrays = {}
    for i, p in enumerate(panels):
        model = (meta.get("panels") or [{}] * len(panels))[i].get("model", "")
        key = f"{i:02d}_{model}_{p.module}_{p.view}".replace(".", "-").replace("/", "-")
        arrays[f"{key}__grid"] = p.grid_map
        arrays[f"{key}__image"] = p.image_map.astype(np.float32)
    arrays["meta_json"] = np.frombuffer(jsonsafe.dumps(meta).encode(), dtype=np.uint8)
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()
