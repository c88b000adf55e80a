"""Global context block (Cao et al., GCNet, 2019): one query-independent attention mask pools a context
vector that a bottleneck transform adds to (or multiplies into) every position.

Claim: a trained non-local block gives almost the same map to every query, so computing one map is enough.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange
from torch import nn

from vizattn.records import AttentionRecord, const_spec
from vizattn.errors import VizattnError
from vizattn.modules.base import AttentionModule, detach


@dataclass
class GlobalMaskRecord(AttentionRecord):
    """Data: mask (B×H×W, sums to 1), values x (B×C×H×W), context (B×C×1×1) = Σ mask·x."""

    family = "distribution"  # a softmax over positions, the same for every query
    statistics = ("query_independence",)
    notes = {"*": "GC's mask is query-independent: every pixel gets this same map."}
    query_independent_views = ("mask",)
    distribution_views = ("mask",)

    def views(self):
        return ("mask",)

    def _query_map(self, y, x, view, batch):
        return self.data["mask"][batch]

    def hover_spec(self, view):
        return const_spec(self.grid, self.data["mask"][0])

    def reconstruction(self):
        h, w = self.grid
        return {"mask": (self.data["values"], self.data["context"].expand(-1, -1, h, w))}


def _transform(channels: int, inner: int) -> nn.Sequential:
    t = nn.Sequential(
        nn.Conv2d(channels, inner, 1), nn.LayerNorm([inner, 1, 1]), nn.ReLU(inplace=True), nn.Conv2d(inner, channels, 1)
    )
    nn.init.zeros_(t[-1].weight)  # start as the identity, as the official block does
    nn.init.zeros_(t[-1].bias)
    return t


class GlobalContext(AttentionModule):
    kind = "gc"

    def __init__(self, channels: int, ratio: float = 1 / 4, pooling: str = "att",
                 fusion: tuple[str, ...] = ("channel_add",)):
        super().__init__()
        if pooling not in ("att", "avg") or not set(fusion) <= {"channel_add", "channel_mul"} or not fusion:
            raise VizattnError("GC pooling must be 'att' or 'avg' and fusion a non-empty subset of channel_add, channel_mul.")
        inner = max(1, int(channels * ratio))
        self.pooling, self.fusion = pooling, tuple(fusion)
        self.mask = nn.Conv2d(channels, 1, 1) if pooling == "att" else None
        self.add = _transform(channels, inner) if "channel_add" in fusion else None
        self.mul = _transform(channels, inner) if "channel_mul" in fusion else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        if self.mask is not None:
            mask = torch.softmax(rearrange(self.mask(x), "b 1 h w -> b (h w)"), dim=-1)
        else:
            mask = x.new_full((b, h * w), 1.0 / (h * w))
        context = torch.einsum("bn,bcn->bc", mask, rearrange(x, "b c h w -> b c (h w)"))[..., None, None]
        self.emit(lambda: GlobalMaskRecord(
            self.kind, (h, w), b, detach(mask=mask.view(b, h, w), values=x, context=context), {"pooling": self.pooling}
        ))
        out = x
        if self.mul is not None:
            out = out * torch.sigmoid(self.mul(context))
        if self.add is not None:
            out = out + self.add(context)
        return out
