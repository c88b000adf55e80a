"""Static (matplotlib) and interactive (plotly) figures of attention panels, and their export to bytes."""
from __future__ import annotations

import io
import math

import numpy as np

from vizattn import jsonsafe
from vizattn.text import html_text
from vizattn.viz.overlay import colormap, heat_overlay, is_log, is_shared, map_top, scale

FORMATS = ("png", "svg", "pdf")
#: every file an export can write: the figures (matplotlib), the interactive figure, the raw maps, the metadata
EXPORT_FORMATS = (*FORMATS, "html", "npz", "json")


def shared_tops(panels, clip: float = 100.0) -> list[float]:
    """Each panel's top under shared normalisation: the largest maximum (or clip-percentile) among the panels of
    its kind. Distributions (softmax rows, summing to 1) and gates (sigmoids, each in 0..1) are scaled apart: a
    gate near 1 would otherwise leave every distribution black."""
    by_kind: dict[bool, float] = {}
    for p in panels:
        by_kind[p.distribution] = max(by_kind.get(p.distribution, -np.inf), map_top(p.grid_map, clip))
    return [by_kind[p.distribution] for p in panels]


def _grid_shape(n: int, columns: int) -> tuple[int, int]:
    """(rows, columns) of a grid of n cells at most `columns` wide."""
    cols = min(columns, max(1, n))
    return math.ceil(max(1, n) / cols), cols


def matplotlib_grid(image: np.ndarray, panels, titles: list[str] | None = None, cmap: str = "inferno",
                    norm: str = "per-map", alpha: float = 0.85, columns: int = 4, clip: float = 100.0,
                    under: str = "dimmed photo"):
    """A grid of heat overlays, one per panel, each titled and with a colorbar in absolute weights; returns a
    matplotlib Figure (Agg, no browser)."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import LogNorm, Normalize
    from matplotlib.figure import Figure

    from vizattn.viz.overlay import scale_range

    rows, cols = _grid_shape(len(panels), columns)
    h, w = image.shape[:2]
    # any aspect ratio: cells at most 4:1 either way (an extreme image is letterboxed inside its cell)
    fig = Figure(figsize=(3.2 * cols, 3.2 * rows * min(4.0, max(0.25, h / w)) + 0.5), dpi=120)
    tops = shared_tops(panels, clip) if is_shared(norm) else [None] * len(panels)
    for i, p in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.imshow(heat_overlay(image, p.image_map, alpha, cmap, norm, tops[i], None, p.pixel, p.cell_box, clip, under))
        ax.set_title((titles[i] if titles else p.title), fontsize=8)
        ax.set_axis_off()
        lo, hi = scale_range(p.grid_map, norm, tops[i], None, clip)
        scale_norm = LogNorm(lo, hi) if is_log(norm) else Normalize(lo, hi if hi > lo else lo + 1e-12)
        bar = fig.colorbar(ScalarMappable(scale_norm, cmap), ax=ax, orientation="horizontal", fraction=0.05, pad=0.03)
        bar.ax.tick_params(labelsize=6)
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
                norm: str = "per-map", alpha: float = 0.6, columns: int = 3, title: str | None = None):
    """Interactive maps on the feature grid, hover showing the weight; the query cell is outlined.

    Colours are drawn as an image through the same matplotlib colormap as every other figure (hosts such
    as Streamlit restyle heatmap colorscales); an invisible heatmap on top carries the hover values.
    """
    import plotly.graph_objects as go

    n = len(panels)
    rows, _ = _grid_shape(n, columns)
    tops = shared_tops(panels) if is_shared(norm) else [None] * n
    data, layout, notes, shapes = [], {}, [], []
    hidden = dict(showticklabels=False, showgrid=False, zeroline=False)
    for i, p in enumerate(panels):
        ax, xaxis, yaxis, (x0, x1, y1) = _cell_axes(i, n, columns)
        layout[f"xaxis{ax}"] = {**xaxis, **hidden}
        layout[f"yaxis{ax}"] = {**yaxis, **hidden, "autorange": "reversed", "scaleanchor": f"x{ax}"}
        data.append(dict(type="image", z=colormap(scale(p.grid_map, norm, tops[i]), cmap), hoverinfo="skip",
                         xaxis=f"x{ax}", yaxis=f"y{ax}"))
        data.append(dict(type="heatmap", z=p.grid_map, opacity=0, showscale=False, xaxis=f"x{ax}", yaxis=f"y{ax}",
                         hovertemplate="cell (%{y}, %{x})<br>weight %{z:.4g}<extra>" + p.title + "</extra>"))
        gy, gx = p.cell
        shapes.append(dict(type="rect", x0=gx - 0.5, x1=gx + 0.5, y0=gy - 0.5, y1=gy + 0.5, xref=f"x{ax}",
                           yref=f"y{ax}", line=dict(color="cyan", width=2)))
        notes.append(_cell_title(titles[i] if titles else p.title, x0, x1, y1))
    top = 40 + (30 if title else 0)
    layout.update(shapes=shapes, annotations=notes, height=300 * rows + top, margin=dict(l=5, r=5, t=top, b=5))
    if title:
        layout["title"] = dict(text=html_text(title), x=0.01, font=dict(size=14))
    return go.Figure(data=data, layout=layout)


def histogram_bars(values: np.ndarray, bins: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Bin centres and counts: a histogram sent to the browser as 50 bars instead of every value."""
    counts, edges = np.histogram(np.asarray(values, dtype=np.float64).ravel(), bins=bins)
    return (edges[:-1] + edges[1:]) / 2, counts


def plotly_bar_charts(charts: list[dict], columns: int = 3, row_height: int = 260):
    """Several small bar charts as one plotly figure: one browser render per click instead of one per chart.

    Each chart is a dict with "title", "x", "y" and optionally "hover" (a hover template for its bars),
    "xtitle"/"ytitle" (axis titles), "text" (the numbers printed on the bars), "chance" (a grey tick per bar:
    what a uniform map scores) and "horizontal" (bars along x, their labels down the y axis)."""
    import plotly.graph_objects as go

    n = len(charts)
    rows, _ = _grid_shape(n, columns)
    data, layout, notes = [], {}, []
    chance_shown = False
    for i, chart in enumerate(charts):
        ax, xaxis, yaxis, (x0, x1, y1) = _cell_axes(i, n, columns)
        flip = chart.get("horizontal", False)
        layout[f"xaxis{ax}"] = {**xaxis, "automargin": True, "tickfont": dict(size=9),
                                "title": dict(text=chart.get("xtitle", ""), font=dict(size=10))}
        layout[f"yaxis{ax}"] = {**yaxis, "automargin": True, "tickfont": dict(size=9),
                                "title": dict(text=chart.get("ytitle", ""), font=dict(size=10)),
                                **({"autorange": "reversed"} if flip else {})}
        labels = [str(v) for v in chart["x"]] if isinstance(chart["x"][0], str) else np.asarray(chart["x"]).tolist()
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
        notes.append(_cell_title(chart["title"], x0, x1, y1))
    layout.update(annotations=notes, height=row_height * rows + 60, margin=dict(l=5, r=5, t=30, b=5), bargap=0.15,
                  legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="right", x=1, font=dict(size=10)))
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
