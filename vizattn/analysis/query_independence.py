"""GCNet's analysis: in a trained non-local block the maps of different queries are almost the same.

Statistic (as the paper): the average cosine distance between pairs of vectors at different positions —
of the block's input features, of the attention maps, and of the block's output features.
"""
from __future__ import annotations

import numpy as np
import torch

from vizattn.analysis.maps import maps_at, sample_queries

PAPER = {"COCO (Mask R-CNN, NL at res4)": {"input": 0.401, "attention": 0.020, "output": 0.012},
         "ImageNet (ResNet-50, NL)": {"input": 0.358, "attention": 0.004, "output": 0.003}}


def mean_cosine_distance(vectors: np.ndarray) -> float:
    """Mean of 1 - cos(v_i, v_j) over all pairs i < j of the rows of `vectors` (n × d)."""
    v = np.asarray(vectors, np.float64)
    n = len(v)
    if n < 2:
        return float("nan")
    norms = np.linalg.norm(v, axis=1)
    unit = v / np.where(norms > 0, norms, 1.0)[:, None]
    cos = unit @ unit.T
    return float((1.0 - cos[np.triu_indices(n, 1)]).mean())


def query_independence(rec, module_input: torch.Tensor, module_output: torch.Tensor, queries: int = 64,
                       seed: int = 0, view: str | None = None, batch: int = 0) -> dict[str, float]:
    """The paper's three columns for one module on one image: input, attention and output distances."""
    q = sample_queries(rec.grid, queries, seed)
    maps = maps_at(rec, q, view, batch).reshape(len(q), -1)

    def at(t):  # feature vectors of the sampled positions
        return t[batch][:, q[:, 0], q[:, 1]].T.cpu().numpy()

    return {"input": mean_cosine_distance(at(module_input)), "attention": mean_cosine_distance(maps),
            "output": mean_cosine_distance(at(module_output))}
