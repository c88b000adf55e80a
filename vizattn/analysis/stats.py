"""Per-query statistics of an attention map: how spread it is, how far it looks, where its mass lands."""
from __future__ import annotations

import numpy as np

from vizattn.explore import cell_indices


def entropy(m: np.ndarray, normalised: bool = True) -> float:
    """Shannon entropy (nats) of a map taken as a distribution; normalised by log(size) to [0, 1]."""
    p = np.asarray(m, np.float64).ravel()
    total = p.sum()
    if total <= 0:
        return float("nan")
    p = p[p > 0] / total
    h = float(-(p * np.log(p)).sum())
    return h / np.log(m.size) if normalised and m.size > 1 else h


def mean_distance(m: np.ndarray, cell: tuple[int, int], cell_px: tuple[float, float] = (1.0, 1.0)) -> float:
    """Expected Euclidean distance from the query cell to where the mass lies (in pixels via cell_px)."""
    p = np.asarray(m, np.float64)
    total = p.sum()
    if total <= 0:
        return float("nan")
    yy, xx = np.mgrid[: p.shape[0], : p.shape[1]]
    d = np.hypot((yy - cell[0]) * cell_px[0], (xx - cell[1]) * cell_px[1])
    return float((p * d).sum() / total)


def mass_on(image_map: np.ndarray, mask: np.ndarray) -> float:
    """Share of the map's mass on the pixels of `mask` (the map spread to image size)."""
    total = float(np.asarray(image_map, np.float64).sum())
    return float(image_map[mask].sum() / total) if total > 0 else float("nan")


def panel_statistics(panel, labels: np.ndarray, instances: np.ndarray | None = None) -> dict:
    """Entropy, mean attended distance (px) and the mass on the query pixel's own class and instance.

    `image_map` spreads each cell's weight over all its pixels, so masses are shares of pixels weighted by
    their cell's weight, divided by the cell sizes: each cell counts once, whatever its size.
    """
    h, w = labels.shape
    gh, gw = panel.grid_map.shape
    weight = panel.image_map / _cell_sizes(h, w, gh, gw)
    y, x = panel.pixel
    out = {
        "entropy": entropy(panel.grid_map),
        "mean_distance_px": mean_distance(panel.grid_map, panel.cell, (h / gh, w / gw)),
        "mass_own_class": mass_on(weight, labels == labels[y, x]),
    }
    if instances is not None and instances[y, x] > 0:
        out["mass_own_instance"] = mass_on(weight, instances == instances[y, x])
    return out


def chance_statistics(panel, labels: np.ndarray, instances: np.ndarray | None = None) -> dict:
    """The same statistics for a uniform map over the panel's grid: what a module that attends nowhere in
    particular would score (entropy 1, the mean distance to every cell, each region's share of the cells)."""
    from dataclasses import replace

    from vizattn.explore import to_image

    uniform = np.full(panel.grid_map.shape, 1.0 / panel.grid_map.size)
    return panel_statistics(replace(panel, grid_map=uniform, image_map=to_image(uniform, labels.shape)), labels, instances)


def tidy(v: float, digits: int = 3) -> float:
    """A statistic as a reader should see it: `digits` significant digits, and float noise such as -4e-16 as 0."""
    if v is None or not np.isfinite(v):
        return v
    return 0.0 if abs(v) < 1e-9 else float(f"{v:.{digits}g}")


def _cell_sizes(h: int, w: int, gh: int, gw: int) -> np.ndarray:
    rows, cols = cell_indices((h, w), (gh, gw))
    rc, cc = np.bincount(rows, minlength=gh), np.bincount(cols, minlength=gw)
    return (rc[rows][:, None] * cc[cols][None, :]).astype(np.float64)
