"""Non-local block, embedded Gaussian (Wang et al., CVPR 2018): every position attends to every other.

The dense baseline of every paper here: A = softmax(θᵀφ/√C') is N×N, which is what the others avoid.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange
from torch import nn

from vizattn.records import AttentionRecord, Factor, rows_spec
from vizattn.modules.base import AttentionModule, attend, detach, inv_sqrt, softmax_row


@dataclass
class PairwiseRecord(AttentionRecord):
    """A dense affinity softmax(q·kᵀ·scale) kept as its factors: data q, k (B×N×d), v, out (B×N×e).
    The non-local block's and DANet's position attention (`view_name` "position")."""

    view_name: str = "attention"

    family = "distribution"
    statistics = ("query_independence", "unary_share", "where")

    def views(self):
        return (self.view_name,)

    def _query_map(self, y, x, view, batch):
        h, w = self.grid
        q = self.data["q"][batch, y * w + x]
        return softmax_row(q, self.data["k"][batch], self.config["scale"]).reshape(h, w)

    def hover_spec(self, view):
        src = dict(q=Factor(self.data["q"][:1]), k=Factor(self.data["k"][:1]), scale=float(self.config["scale"]))
        return rows_spec(self.grid, self.grid, src)

    def reconstruction(self):
        h, w = self.grid
        grid = lambda t: rearrange(t, "b (h w) c -> b c h w", h=h, w=w)  # noqa: E731
        return {self.view_name: (grid(self.data["v"]), grid(self.data["out"]))}

    def __post_init__(self):
        self.distribution_views = (self.view_name,)


class NonLocal(AttentionModule):
    kind = "nonlocal"

    def __init__(self, channels: int, reduction: int = 2):
        super().__init__()
        inner = max(1, channels // reduction)
        self.theta = nn.Conv2d(channels, inner, 1)
        self.phi = nn.Conv2d(channels, inner, 1)
        self.g = nn.Conv2d(channels, inner, 1)
        self.out = nn.Sequential(nn.Conv2d(inner, channels, 1, bias=False), nn.BatchNorm2d(channels))
        nn.init.zeros_(self.out[1].weight)  # the block starts as the identity
        self.scale = inv_sqrt(inner)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        flat = lambda t: rearrange(t, "b c h w -> b (h w) c")  # noqa: E731
        q, k, v = flat(self.theta(x)), flat(self.phi(x)), flat(self.g(x))
        y = attend(q, k, v, self.scale)
        self.emit(lambda: PairwiseRecord(self.kind, (h, w), b, detach(q=q, k=k, v=v, out=y), {"scale": self.scale}))
        return x + self.out(rearrange(y, "b (h w) c -> b c h w", h=h, w=w))
