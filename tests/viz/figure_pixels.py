"""Read an exported figure back: where an image pixel of a panel landed in the PNG, and what colour the screen gives
that pixel (the browser's RGBA heat layer blended over the backdrop). Shared by the figure tests and the browser test."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

from vizattn.explore import cell_indices


def png_pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)


def panel_axes(fig) -> list:
    """The figure's image axes, one per panel, in panel order (colorbars left out)."""
    return [ax for ax in fig.axes if ax.images]


def figure_pixel(fig, png: np.ndarray, panel: int, y: int, x: int) -> np.ndarray:
    """The PNG's colour at the centre of image pixel (y, x) of panel `panel` (the figure saved at its own dpi)."""
    px, py = panel_axes(fig)[panel].transData.transform((x, y))
    return png[int(png.shape[0] - py), int(px)]


def screen_colour(rgba: np.ndarray, base: np.ndarray, y: int, x: int) -> np.ndarray:
    """What the browser shows at image pixel (y, x): the grid-resolution RGBA layer (nearest, as the canvas is
    stretched) over the backdrop, CSS source-over with the alpha as stored (k/255)."""
    rows, cols = cell_indices(base.shape[:2], rgba.shape[:2])
    c = rgba[rows[y], cols[x]].astype(np.float64)
    a = c[3] / 255
    return np.round((1 - a) * base[y, x] + a * c[:3]).astype(int)


def flat_points(base: np.ndarray, rgba: np.ndarray, keep_out, n: int = 12, margin: int = 3, seed: int = 0):
    """Up to n image pixels whose (2·margin+1)² neighbourhood has one backdrop colour and one heat cell, away from
    the boxes in `keep_out` (the query's mark and cell outline): there a resampled figure shows the exact colour."""
    rng = np.random.default_rng(seed)
    h, w = base.shape[:2]
    rows, cols = cell_indices((h, w), rgba.shape[:2])
    out = []
    for _ in range(20000):
        y, x = int(rng.integers(margin, h - margin)), int(rng.integers(margin, w - margin))
        ys, xs = slice(y - margin, y + margin + 1), slice(x - margin, x + margin + 1)
        if any(y0 - margin - 1 <= y < y1 + margin + 1 and x0 - margin - 1 <= x < x1 + margin + 1
               for y0, y1, x0, x1 in keep_out):
            continue
        if (base[ys, xs] == base[y, x]).all() and len(set(rows[ys])) == 1 and len(set(cols[xs])) == 1:
            out.append((y, x))
            if len(out) == n:
                break
    return out
