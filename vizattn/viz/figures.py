"""Static (matplotlib) and interactive (plotly) figures of attention panels, and their export to bytes."""
from __future__ import annotations

import io
import json
import math

import numpy as np

from vizattn.viz.overlay import colormap, heat_overlay, scale

FORMATS = ("png", "svg", "pdf")


def shared_vmax(panels) -> float:
    return max(float(p.grid_map.max()) for p in panels) if panels else 1.0


def matplotlib_grid(image: np.ndarray, panels, titles: list[str] | None = None, cmap: str = "inferno",
                    norm: str = "per-map", alpha: float = 0.6, columns: int = 4):
    """A grid of heat overlays, one per panel, each titled; returns a matplotlib Figure (Agg, no browser)."""
    from matplotlib.figure import Figure

    n = max(1, len(panels))
    cols = min(columns, n)
    rows = math.ceil(n / cols)
    h, w = image.shape[:2]
    fig = Figure(figsize=(3.2 * cols, 3.2 * rows * h / w + 0.5), dpi=120)
    vmax = shared_vmax(panels)
    for i, p in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.imshow(heat_overlay(image, p.image_map, alpha, cmap, norm, vmax, None, p.pixel, p.cell_box))
        ax.set_title((titles[i] if titles else p.title), fontsize=8)
        ax.set_axis_off()
    fig.tight_layout()
    return fig


def figure_bytes(fig, fmt: str) -> bytes:
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}")
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt)
    return buf.getvalue()


def plotly_grid(image: np.ndarray, panels, titles: list[str] | None = None, cmap: str = "inferno",
                norm: str = "per-map", alpha: float = 0.6, columns: int = 3):
    """Interactive maps on the feature grid, hover showing the weight; the query cell is outlined.

    Colours are drawn as an image through the same matplotlib colormap as every other figure (hosts such
    as Streamlit restyle heatmap colorscales); an invisible heatmap on top carries the hover values.
    The layout is written out directly: `make_subplots` and per-cell updates cost ~0.3 s for a 3×4 grid,
    which a click would pay every time.
    """
    import plotly.graph_objects as go

    n = max(1, len(panels))
    cols = min(columns, n)
    rows = math.ceil(n / cols)
    gap_x, gap_y = 0.03, 0.08 / rows
    vmax = shared_vmax(panels)
    data, layout, notes, shapes = [], {}, [], []
    for i, p in enumerate(panels):
        r, c = divmod(i, cols)
        ax = "" if i == 0 else str(i + 1)
        x0, x1 = c / cols + gap_x / 2, (c + 1) / cols - gap_x / 2
        y0, y1 = 1 - (r + 1) / rows + gap_y / 2, 1 - r / rows - gap_y
        layout[f"xaxis{ax}"] = dict(domain=[x0, x1], anchor=f"y{ax}", showticklabels=False, showgrid=False, zeroline=False)
        layout[f"yaxis{ax}"] = dict(domain=[y0, y1], anchor=f"x{ax}", autorange="reversed", scaleanchor=f"x{ax}",
                                    showticklabels=False, showgrid=False, zeroline=False)
        data.append(dict(type="image", z=colormap(scale(p.grid_map, norm, vmax), cmap), hoverinfo="skip",
                         xaxis=f"x{ax}", yaxis=f"y{ax}"))
        data.append(dict(type="heatmap", z=p.grid_map, opacity=0, showscale=False, xaxis=f"x{ax}", yaxis=f"y{ax}",
                         hovertemplate="cell (%{y}, %{x})<br>weight %{z:.4g}<extra>" + p.title + "</extra>"))
        gy, gx = p.cell
        shapes.append(dict(type="rect", x0=gx - 0.5, x1=gx + 0.5, y0=gy - 0.5, y1=gy + 0.5, xref=f"x{ax}",
                           yref=f"y{ax}", line=dict(color="cyan", width=2)))
        notes.append(dict(text=(titles[i] if titles else p.title), x=(x0 + x1) / 2, y=y1, xref="paper", yref="paper",
                          xanchor="center", yanchor="bottom", showarrow=False, font=dict(size=12)))
    layout.update(shapes=shapes, annotations=notes, height=300 * rows + 40, margin=dict(l=5, r=5, t=40, b=5))
    return go.Figure(data=data, layout=layout)


def maps_npz(panels, meta: dict) -> bytes:
    """Raw grid maps (and image-size maps) with the metadata as JSON inside, for reuse in numpy."""
    buf = io.BytesIO()
    arrays = {}
    for i, p in enumerate(panels):
        key = f"{i:02d}_{p.module}_{p.view}".replace(".", "-")
        arrays[f"{key}__grid"] = p.grid_map
        arrays[f"{key}__image"] = p.image_map.astype(np.float32)
    arrays["meta_json"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()
