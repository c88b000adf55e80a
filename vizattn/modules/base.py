"""Pieces every attention module shares: the base class that reports to `capture`, the attention kernel,
and the small conv blocks the official heads are built from."""
from __future__ import annotations

import math
from contextlib import contextmanager
from contextvars import ContextVar
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from vizattn.records import AttentionRecord, active_sessions

# The papers measured a dense non-local block that materialises the N×N affinity; PyTorch's fused kernel
# never does. Benchmarks switch to the dense path to compare like with like; the maps are the same.
_DENSE: ContextVar[bool] = ContextVar("vizattn_dense_attention", default=False)


@contextmanager
def dense_attention(enabled: bool = True):
    """Compute softmax(QKᵀ)·V by materialising the affinity, as the papers' implementations did."""
    token = _DENSE.set(enabled)
    try:
        yield
    finally:
        _DENSE.reset(token)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """softmax(q·kᵀ·scale)·v over the last two dims: q (..., n, d), k (..., m, d), v (..., m, e) -> (..., n, e)."""
    if _DENSE.get():
        return torch.softmax(q @ k.transpose(-1, -2) * scale, dim=-1) @ v
    # The CPU flash kernel needs a head dim and contiguous rows; otherwise SDPA silently falls back to the
    # math path, which materialises the N×N affinity.
    # It also wants one head width for q/k and v: zero channels change no logit and no output.
    d, e = q.shape[-1], v.shape[-1]
    if d < e:
        q, k = F.pad(q, (0, e - d)), F.pad(k, (0, e - d))
    elif e < d:
        return attend(q, k, F.pad(v, (0, d - e)), scale)[..., :e]
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    if q.dim() == 3:
        return F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None], scale=scale)[:, 0]
    return F.scaled_dot_product_attention(q, k, v, scale=scale)


def softmax_row(q: torch.Tensor, k: torch.Tensor, scale: float) -> torch.Tensor:
    """One affinity row (or a few): q (..., d), k (m, d) or (..., m, d) -> (..., m), summing to 1."""
    logits = torch.einsum("...d,...md->...m", q, k) if k.dim() == q.dim() + 1 else q @ k.T
    return torch.softmax(logits * scale, dim=-1)


def conv_bn_relu(cin: int, cout: int, kernel: int = 1, **kw) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False, **kw), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


def inv_sqrt(d: int) -> float:
    return 1.0 / math.sqrt(d)


class AttentionModule(nn.Module):
    """Base of every context module: `forward` returns only the output; internals go to `emit`."""

    #: what the module is called (the records' `kind`); what its maps are, which statistics apply to them,
    #: their captions and the browser's formula live on the record class it emits
    kind: str = ""

    def emit(self, make_record: Callable[[], AttentionRecord]) -> None:
        """Hand a record to every capture session that owns this module; built only if one does."""
        sessions = active_sessions(self)
        if sessions:
            record = make_record()
            for s in sessions:
                s.add(self, record)


def detach(**tensors: torch.Tensor) -> dict[str, torch.Tensor]:
    return {k: t.detach() for k, t in tensors.items()}
