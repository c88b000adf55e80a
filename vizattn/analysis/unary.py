"""LESA's analysis: how much weight self-attention gives a position itself (the unary term) against all
others (binary); in LESA, the shares 1/(1+w) and w/(1+w) of its fusion gate; and what removing the unary
term costs."""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch

from vizattn.analysis.maps import maps_at, sample_queries

PAPER = {"self-attention unary share": "< 3% (< 2% in the ablation), > 32× smaller than binary",
         "LESA unary / binary": "67% / 33%",
         "removing the unary term": "-7.56% accuracy (35% relative error increase)"}


def self_weight(maps: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Weight each query gives its own position: maps[i, y_i, x_i]."""
    return maps[np.arange(len(queries)), queries[:, 0], queries[:, 1]]


def unary_share(rec, queries: int = 256, seed: int = 0, view: str | None = None, batch: int = 0) -> dict[str, float]:
    """Mean self weight (unary share) and its complement (binary share) over sampled queries."""
    q = sample_queries(rec.grid, queries, seed)
    own = self_weight(maps_at(rec, q, view, batch), q)
    return {"unary": float(own.mean()), "binary": float(1 - own.mean()), "unary_max": float(own.max())}


@contextmanager
def without_unary(model: torch.nn.Module):
    """Zero every LESA module's unary term for the forwards inside the block (hooks removed in finally)."""
    handles = []
    try:
        for m in model.modules():
            if getattr(m, "kind", "") == "lesa":
                handles.append(m.unary.register_forward_hook(lambda mod, args, out: torch.zeros_like(out)))
        yield len(handles)
    finally:
        for h in handles:
            h.remove()


def gate_shares(rec) -> dict[str, float]:
    unary, binary = rec.shares()
    return {"unary": unary, "binary": binary}


def gate_share_distribution(rec, bins: int = 20) -> tuple[np.ndarray, np.ndarray]:
    share = (1.0 / (1.0 + rec.data["gate"])).flatten().cpu().numpy()
    return np.histogram(share, bins=bins, range=(0.5, 1.0))
