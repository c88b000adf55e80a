"""The app's attention grid: what the browser needs to draw panels itself (`panel_grid_frontend/`).

Plotly remounts a chart whenever its figure changes (Streamlit keys the element on the figure), so a
click on a 9-panel grid paid for a fresh plot of every panel while the old one stayed on screen until
the run ended. This grid stays mounted: per click it receives each panel's heatmap as a tiny RGBA PNG at
feature-grid resolution (coloured and blended exactly as `heat_overlay`: opacity alpha·√v), its weights
for hover, and the query cell; the photo underneath is sent once per image and reused.
"""
from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
from PIL import Image

from vizattn.viz.figures import shared_vmax
from vizattn.viz.overlay import backdrop, colormap, heat_layer, scale_range

FRONTEND = Path(__file__).resolve().parent / "panel_grid_frontend"


def data_uri(image: np.ndarray, fmt: str = "PNG", **save) -> str:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, fmt, **save)
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buf.getvalue()).decode()


def photo_uri(image: np.ndarray, max_side: int = 640, under: str = "photo") -> str:
    """The photo under the panels (as `backdrop` makes it) as a JPEG data URI, shrunk to `max_side`: panels are
    drawn a few hundred pixels wide, so a 1024-px upload need not travel at full size with every click."""
    img = Image.fromarray(backdrop(image, under))
    img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return data_uri(np.asarray(img), "JPEG", quality=90)


def heat_rgba(grid_map: np.ndarray, alpha: float = 0.6, cmap: str = "inferno", norm: str = "per-map",
              vmax: float | None = None, clip: float = 100.0) -> np.ndarray:
    """gh×gw×4 uint8: the colormapped map with opacity alpha·√v, so the browser's alpha blending over the
    photo gives the same picture as `heat_overlay` (nearest upsampling, as `explore.to_image`)."""
    heat, a = heat_layer(grid_map, np.clip(alpha, 0, 1), cmap, norm, vmax, None, clip)
    return np.dstack([heat, np.round(255 * a).astype(np.uint8)])


def colorbar_css(cmap: str, stops: int = 9) -> str:
    """The colormap as a CSS linear gradient (left 0, right 1), for the colorbar under every panel."""
    colours = colormap(np.linspace(0, 1, stops), cmap)
    return "linear-gradient(to right, " + ", ".join(f"rgb({r},{g},{b})" for r, g, b in colours) + ")"


def grid_args(image: np.ndarray, panels, titles: list[str] | None = None, cmap: str = "inferno",
              norm: str = "per-map", alpha: float = 0.6, columns: int = 3, title: str = "",
              base: str | None = None, clip: float = 100.0, under: str = "photo") -> dict:
    """JSON-ready arguments of the panel grid. `base` is the photo's data URI when the caller has it cached
    (made with the same `under`). Every panel carries the weights its colorbar's ends stand for."""
    vmax = shared_vmax(panels, clip)
    h, w = image.shape[:2]
    pixel = panels[0].pixel if panels else (h // 2, w // 2)
    return dict(
        image=base or photo_uri(image, under=under),
        shape=[h, w], pixel=[int(v) for v in pixel], columns=int(columns), title=title,
        colorbar=colorbar_css(cmap), log=norm == "log",
        panels=[dict(title=titles[i] if titles else p.title,
                     heat=data_uri(heat_rgba(p.grid_map, alpha, cmap, norm, vmax, clip)),
                     range=[float(v) for v in scale_range(p.grid_map, norm, vmax if norm != "per-map" else None,
                                                          None, clip)],
                     weights=base64.b64encode(np.ascontiguousarray(p.grid_map, "<f4").tobytes()).decode(),
                     grid=[int(v) for v in p.grid_map.shape], cell=[int(v) for v in p.cell],
                     box=[int(v) for v in p.cell_box])
                for i, p in enumerate(panels)],
    )
