"""CCNet's analysis: one criss-cross loop reaches the query's row and column (H+W−1 positions), two loops
reach every position; and what evaluating with R = 1, 2, 3 loops does to accuracy."""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch

from vizattn.analysis.maps import maps_at, sample_queries

PAPER = {"mIoU R=1 (Cityscapes val)": 77.3, "mIoU R=2": 79.7, "gain R=2 over R=1": 2.4}


def coverage(maps: np.ndarray, eps: float = 0.0) -> np.ndarray:
    """Share of grid positions each map reaches (weight > eps)."""
    return (maps.reshape(len(maps), -1) > eps).mean(axis=1)


def loop_coverage(rec, queries: int = 64, seed: int = 0, batch: int = 0) -> dict[str, float]:
    """Mean share of positions reached after the first loop and after all loops."""
    q = sample_queries(rec.grid, queries, seed)
    return {view: float(coverage(maps_at(rec, q, view, batch)).mean()) for view in ("loop1", "effective")}


@contextmanager
def recurrence(model: torch.nn.Module, loops: int):
    """Run every criss-cross module of `model` with `loops` loops (shared weights) inside the block."""
    mods = [m for m in model.modules() if getattr(m, "kind", "") == "criss_cross"]
    saved = [m.recurrence for m in mods]
    try:
        for m in mods:
            m.recurrence = loops
        yield len(mods)
    finally:
        for m, r in zip(mods, saved):
            m.recurrence = r
