"""Compose images server-side: a heatmap over the photo, the query marked, its grid cell outlined."""
from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

#: "per-map": each map to its own top; "shared": one top for all maps of one kind (distributions, which sum to 1,
#: and gates, which do not, never share a scale); "log" and "log shared": the same in decades; "relative to
#: uniform": a distribution's weight w as the ratio w·N to the uniform level 1/N of its N grid cells, on a log scale
#: from ×1/RELATIVE_SPAN to ×RELATIVE_SPAN, through a diverging colormap centred on ×1 (gates keep 0…1).
NORMALISATIONS = ("per-map", "shared", "log", "log shared", "relative to uniform")
RELATIVE = "relative to uniform"
RELATIVE_CMAP = "RdBu_r"  # blue below uniform, white at it, red above
RELATIVE_SPAN = 16.0  # the scale's ends: ×1/16 and ×16 of the uniform level, symmetric in log ratio
NEARLY_UNIFORM = 0.05  # a map with max |w·N − 1| below this is said to be nearly uniform


def is_shared(norm: str) -> bool:
    return norm in ("shared", "log shared")


def is_log(norm: str) -> bool:
    return norm in ("log", "log shared")


def is_relative(norm: str, uniform: float | None) -> bool:
    """Whether a map is drawn relative to its uniform level: under RELATIVE, and only if it is a distribution (a
    gate has no uniform level and keeps its absolute 0…1 scale)."""
    return norm == RELATIVE and uniform is not None


def uniform_level(grid_map: np.ndarray, distribution: bool) -> float | None:
    """1/N for a distribution over N grid cells (what a map that attends everywhere alike gives each cell); None
    for gates and other weights that do not sum to 1."""
    return 1.0 / np.asarray(grid_map).size if distribution else None


def nearly_uniform(grid_map: np.ndarray, uniform: float | None, tolerance: float = NEARLY_UNIFORM) -> bool:
    """Whether every cell's weight is within `tolerance` of the uniform level (max |w·N − 1| < tolerance)."""
    return uniform is not None and float(np.max(np.abs(np.asarray(grid_map, np.float64) / uniform - 1))) < tolerance


def map_top(m: np.ndarray, clip: float = 100.0) -> float:
    """The weight a map's colour saturates at: its maximum, or its `clip` percentile below 100."""
    return float(np.percentile(m, clip)) if clip < 100 else float(np.max(m))


def scale_range(m: np.ndarray, norm: str = "per-map", vmax: float | None = None, vmin: float | None = None,
                clip: float = 100.0, uniform: float | None = None) -> tuple[float, float]:
    """The weights that map to 0 and to 1 (what a colorbar is labelled with). `clip` < 100 saturates the top at
    that percentile of the map's weights (as CCNet's authors clipped their figures), so a few peaks do not
    leave everything else black; with "shared" the caller's vmax is already the clipped one. Relative to uniform:
    uniform/RELATIVE_SPAN … uniform·RELATIVE_SPAN for a distribution (no clip: the scale is fixed), 0…1 for a gate."""
    m = np.asarray(m, np.float64)
    if norm == RELATIVE:
        return (uniform / RELATIVE_SPAN, uniform * RELATIVE_SPAN) if uniform is not None else (0.0, 1.0)
    top = vmax if is_shared(norm) and vmax else map_top(m, clip)
    if is_log(norm):
        hi = max(top, 1e-12)
        lo = vmin if vmin else max(float(m[m > 0].min()) if (m > 0).any() else 1e-12, hi * 1e-6)
        return lo, hi
    return min(0.0, float(m.min())), top


def scale(m: np.ndarray, norm: str = "per-map", vmax: float | None = None, vmin: float | None = None,
          clip: float = 100.0, uniform: float | None = None) -> np.ndarray:
    """Map weights to [0, 1]: by the map's own max ("per-map"), by a given vmax shared across panels of one kind
    ("shared"), logarithmically between vmin and the top ("log", "log shared": for maps spanning decades), or
    as log(w·N) between ×1/16 and ×16 of the uniform level, so 1/N lands exactly on 0.5 ("relative to uniform")."""
    m = np.asarray(m, np.float64)
    if is_relative(norm, uniform):  # written as the ratio so that w = 1/N gives exactly 0.5
        return np.clip(0.5 + np.log2(np.maximum(m, 1e-300) / uniform) / (2 * np.log2(RELATIVE_SPAN)), 0, 1)
    lo, hi = scale_range(m, norm, vmax, vmin, clip, uniform)
    if is_log(norm):
        lo, hi = np.log10(lo), np.log10(hi)
        return np.clip((np.log10(np.maximum(m, 1e-300)) - lo) / max(hi - lo, 1e-12), 0, 1)
    return np.clip((m - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(m)


def uniform_position(m: np.ndarray, norm: str = "per-map", vmax: float | None = None, vmin: float | None = None,
                     clip: float = 100.0, uniform: float | None = None) -> float | None:
    """Where the uniform level 1/N sits along the colorbar (0 its left end, 1 its right; outside [0, 1] when the
    scale does not reach it), or None for a map with no uniform level (a gate)."""
    if uniform is None:
        return None
    if is_relative(norm, uniform):
        return 0.5
    lo, hi = scale_range(m, norm, vmax, vmin, clip, uniform)
    if is_log(norm):
        return float((np.log10(uniform) - np.log10(lo)) / max(np.log10(hi) - np.log10(lo), 1e-12))
    return float((uniform - lo) / (hi - lo)) if hi > lo else 0.0


def panel_cmap(cmap: str, norm: str, uniform: float | None) -> str:
    """The colormap a map is drawn with: the chosen one, or the diverging RELATIVE_CMAP relative to uniform."""
    return RELATIVE_CMAP if is_relative(norm, uniform) else cmap


def scale_caption(m: np.ndarray, norm: str, uniform: float | None, lo: float, hi: float) -> str:
    """What a panel's colorbar means, in one line (figures and exports say it under each colorbar)."""
    if is_relative(norm, uniform):
        text = (f"weight ÷ uniform 1/N (N={round(1 / uniform)}), log scale ×1/{RELATIVE_SPAN:g} … "
                f"×{RELATIVE_SPAN:g}")
    elif norm == RELATIVE:
        text = "gate, absolute 0…1 (relative to uniform applies to distributions only)"
    else:
        text = f"weight {lo:.3g} … {hi:.3g}" + (" (log)" if is_log(norm) else "")
        if uniform is not None:
            text += f" · uniform 1/N = {uniform:.3g}"
    if nearly_uniform(m, uniform):
        text += f" · nearly uniform (within {NEARLY_UNIFORM:.0%} of 1/N everywhere)"
    return text


BACKDROPS = ("dimmed photo", "photo", "heat only")


def backdrop(image: np.ndarray, mode: str = "dimmed photo") -> np.ndarray:
    """What a heatmap is drawn over. "dimmed photo": the photo in grey at 45% brightness, so the colormap at full
    strength reads at a glance (the photo's own colours would compete with it); "photo": as it is; "heat only":
    black."""
    if mode == "photo":
        return image
    if mode == "heat only":
        return np.zeros_like(image)
    grey = image[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return np.repeat(np.round(0.45 * grey).astype(np.uint8)[..., None], 3, axis=2)


def colormap(values: np.ndarray, name: str = "inferno") -> np.ndarray:
    """[0, 1] array -> H×W×3 uint8 through a matplotlib colormap, as matplotlib picks its colours (index ⌊v·N⌋,
    1 → N−1; below 0 its under colour, above 1 its over colour, NaN its bad colour), from `colormap_table`."""
    table = colormap_table(name)
    n = len(table) - 3
    xa = np.array(values, dtype=None if np.asarray(values).dtype.kind == "f" else np.float64)  # a copy
    xa *= n
    xa[xa == n] = n - 1
    under, over, bad = xa < 0, xa >= n, np.isnan(xa)
    with np.errstate(invalid="ignore"):
        index = xa.astype(int)
    index[under], index[over], index[bad] = n, n + 1, n + 2
    return table.take(index, axis=0, mode="clip")


KEPT_COLORMAPS = Path(__file__).with_name("colormaps.json")  # the page's colormaps, kept: see colormap_table


@functools.cache
def colormap_table(name: str) -> np.ndarray:
    """(N+3)×3 uint8: the colormap's N colours, then its under, over and bad colours, as matplotlib gives them ×255
    truncated. The page's colormaps are kept in KEPT_COLORMAPS (written by `matplotlib_table`; a test holds them to
    matplotlib), so a first screen does not wait for matplotlib's import (≈0.2 s); any other name asks matplotlib."""
    kept = _kept_colormaps()
    table = np.asarray(kept[name], np.uint8) if name in kept else matplotlib_table(name)
    table.flags.writeable = False
    return table


@functools.cache
def _kept_colormaps() -> dict:
    return json.loads(KEPT_COLORMAPS.read_text()) if KEPT_COLORMAPS.is_file() else {}


def matplotlib_table(name: str) -> np.ndarray:
    """`colormap_table` from matplotlib itself: integer inputs index its colours; −1, 2 and NaN give the others."""
    from matplotlib import colormaps

    cm = colormaps[name]
    rgba = np.concatenate([cm(np.arange(cm.N)), cm(np.array([-1.0, 2.0, np.nan]))])
    return (rgba[:, :3] * 255).astype(np.uint8)


def heat_layer(m: np.ndarray, alpha: float = 0.6, cmap: str = "inferno", norm: str = "per-map",
               vmax: float | None = None, vmin: float | None = None, clip: float = 100.0,
               uniform: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The heatmap's colours (uint8) and per-position opacity alpha·√v: what is blended over the photo,
    here by `heat_overlay` and in the browser by the app's panel grid. Relative to uniform the opacity is alpha
    everywhere: both ends of a diverging scale carry meaning, and the white at ×1 must read as on its colorbar."""
    v = scale(m, norm, vmax, vmin, clip, uniform)
    a = np.ones_like(v) if is_relative(norm, uniform) else np.sqrt(v)
    return colormap(v, panel_cmap(cmap, norm, uniform)), alpha * a


def heat_overlay(image: np.ndarray, image_map: np.ndarray, alpha: float = 0.6, cmap: str = "inferno",
                 norm: str = "per-map", vmax: float | None = None, vmin: float | None = None,
                 pixel: tuple[int, int] | None = None, box: tuple[int, int, int, int] | None = None,
                 clip: float = 100.0, under: str = "photo", uniform: float | None = None, grid=None,
                 base: np.ndarray | None = None) -> np.ndarray:
    """The image with the heatmap blended over it, the query pixel marked and its grid cell outlined.

    The blend is weighted by the value itself (opacity alpha·√v), so positions the map ignores keep the
    photo visible instead of being darkened by the colormap's low end. `uniform`: the map's uniform level 1/N on
    its grid (`uniform_level`), which "relative to uniform" needs (None: a gate, drawn 0…1).
    `grid`: the grid map image_map was spread from (`vizattn.explore.to_image`): the colours are computed per grid
    cell and spread the same way, the same pixels at a fraction of the cost for a large image.
    `base`: the backdrop already made (`backdrop(image, under)`), when the caller keeps it.
    """
    heat, a = _heat_at_image_size(image_map, alpha, cmap, norm, vmax, vmin, clip, uniform, grid)
    base = (backdrop(image, under) if base is None else base).astype(np.float32)
    out = heat.astype(np.float32)  # (1 − a)·base + a·heat, as base + a·(heat − base), in float32: 5× faster at
    out -= base  # 1024² than float64, and the 8-bit result the same but for rounding ties (1 level, ~5 pixels in 10⁶)
    out *= np.asarray(a, np.float32)[..., None]
    out += base
    out = np.rint(out, out=out).astype(np.uint8)
    if box is not None:
        outline(out, box, (0, 255, 255))
    if pixel is not None:
        mark(out, pixel)
    return out


def _heat_at_image_size(image_map, alpha, cmap, norm, vmax, vmin, clip, uniform, grid):
    """heat_layer of image_map, computed per grid cell where that gives the same pixels: every step after the scale
    range is pointwise, and the range (max, smallest positive) of a nearest upsampling equals the grid's; a
    percentile clip weighs cells by their pixels, so it stays per pixel."""
    if grid is None or (clip < 100 and norm != RELATIVE):
        return heat_layer(image_map, alpha, cmap, norm, vmax, vmin, clip, uniform)
    from vizattn.explore import to_image

    heat, a = heat_layer(grid, alpha, cmap, norm, vmax, vmin, clip, uniform)
    shape = np.shape(image_map)[:2]
    return to_image(heat, shape), to_image(np.asarray(a, np.float32), shape)


def label_overlay(image: np.ndarray, labels: np.ndarray, palette: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    return ((1 - alpha) * image.astype(np.float64) + alpha * palette[labels].astype(np.float64)).round().astype(np.uint8)


def outline(img: np.ndarray, box: tuple[int, int, int, int], color=(0, 255, 255)) -> None:
    y0, y1, x0, x1 = box
    h, w = img.shape[:2]
    y1, x1 = min(y1, h) - 1, min(x1, w) - 1
    img[y0, x0 : x1 + 1] = img[y1, x0 : x1 + 1] = color
    img[y0 : y1 + 1, x0] = img[y0 : y1 + 1, x1] = color


def mark(img: np.ndarray, pixel: tuple[int, int], radius: int = 5) -> None:
    """A white cross with a black rim at the query pixel, visible on any background."""
    y, x = pixel
    h, w = img.shape[:2]
    for r, color in ((radius + 1, (0, 0, 0)), (radius, (255, 255, 255))):
        img[max(0, y - r) : min(h, y + r + 1), max(0, x - 1) : min(w, x + 2)] = color
        img[max(0, y - 1) : min(h, y + 2), max(0, x - r) : min(w, x + r + 1)] = color


def data_uri(image: np.ndarray, fmt: str = "PNG", **save) -> str:
    """An RGB(A) array as a data URI (the panel grid's layers, the HTML export's images)."""
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, fmt, **save)
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buf.getvalue()).decode()
