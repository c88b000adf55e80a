"""Per-query maps in bulk, and where each module's attention comes from: the building blocks of the analyses."""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch

from vizattn.records import AttentionRecord
from vizattn.modules.base import AttentionModule


def sample_queries(grid: tuple[int, int], n: int, seed: int = 0) -> np.ndarray:
    """Up to n distinct grid positions (y, x), drawn without replacement."""
    h, w = grid
    idx = np.random.default_rng(seed).choice(h * w, size=min(n, h * w), replace=False)
    return np.stack([idx // w, idx % w], axis=1)


def maps_at(rec: AttentionRecord, queries: np.ndarray, view: str | None = None, batch: int = 0) -> np.ndarray:
    """(n, h, w) maps of the given query positions, in `view` or the record's default (main) view."""
    return np.stack([rec.query_map(int(y), int(x), view or rec.default_view, batch) for y, x in queries])


@contextmanager
def module_io(model: torch.nn.Module):
    """Inputs and outputs of every attention module during the forwards inside the block, by name.

    Offline analysis only: it registers forward hooks (removed in `finally`), so unlike `capture` it is not
    meant for a model shared between threads.
    """
    seen: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    handles = []
    try:
        for name, m in model.named_modules():
            if isinstance(m, AttentionModule):
                handles.append(m.register_forward_hook(
                    lambda mod, args, out, name=name: seen.__setitem__(name, (args[0].detach(), out.detach()))))
        yield seen
    finally:
        for h in handles:
            h.remove()
