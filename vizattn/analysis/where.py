"""Where attention goes, with ground truth from generated scenes: mass on the query's own class and own
instance, and mean attended distance, per module and per class of the query."""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from vizattn.analysis.maps import maps_at, sample_queries
from vizattn.analysis.stats import entropy, mean_distance
from vizattn.explore import cell_indices


def grid_labels(labels: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Majority label of each grid cell."""
    gh, gw = grid
    rows, cols = cell_indices(labels.shape, grid)
    cell = rows[:, None] * gw + cols[None, :]
    k = int(labels.max()) + 1
    counts = np.zeros((gh * gw, k), np.int64)
    np.add.at(counts, (cell.ravel(), labels.ravel().astype(np.int64)), 1)
    return counts.argmax(1).reshape(gh, gw)


def where_attention_goes(rec, labels: np.ndarray, instances: np.ndarray | None, queries: int = 128, seed: int = 0,
                         image_shape: tuple[int, int] | None = None) -> list[dict]:
    """One row per sampled query: its class, mass on own class / instance (on the grid), distance in px.
    `labels` may be a prediction (images without ground truth); without instances there is no instance mass."""
    grid_cls = grid_labels(labels, rec.grid)
    grid_inst = grid_labels(instances, rec.grid) if instances is not None else np.zeros(rec.grid, np.int64)
    h, w = image_shape or labels.shape
    px = (h / rec.grid[0], w / rec.grid[1])
    q = sample_queries(rec.grid, queries, seed)
    maps = maps_at(rec, q)
    rows = []
    for (y, x), m in zip(q, maps):
        total = m.sum()
        row = {"class": int(grid_cls[y, x]), "y": int(y), "x": int(x),
               "own_class": float(m[grid_cls == grid_cls[y, x]].sum() / total),
               "distance_px": mean_distance(m, (y, x), px), "entropy": entropy(m)}  # 0: one cell, 1: uniform
        if grid_inst[y, x] > 0:
            row["own_instance"] = float(m[grid_inst == grid_inst[y, x]].sum() / total)
        rows.append(row)
    return rows


def by_class(rows: list[dict], classes: tuple[str, ...] | None = None) -> dict[str, dict[str, float]]:
    """Means per query class, keyed by the rows' `class_name` (or `classes[class]`)."""
    acc: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        name = r.get("class_name") or classes[r["class"]]
        for key in ("own_class", "own_instance", "distance_px"):
            if key in r:
                acc[name][key].append(r[key])
    return {c: {k: float(np.mean(v)) for k, v in d.items()} | {"queries": len(d["own_class"])} for c, d in acc.items()}
