"""Polarized self-attention (Liu et al., PSA, 2021): a channel-only and a spatial-only branch, each keeping
full resolution in its own dimension and squeezing the other, with softmax-sigmoid weights.

Claim: high internal resolution plus the softmax-sigmoid nonlinearity fit pixel-wise regression; both
branches are query-independent, so there is no per-query pairwise map to show (we say so, not invent one).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange
from torch import nn

from vizattn.records import AttentionRecord, const_spec
from vizattn.errors import VizattnError
from vizattn.modules.base import AttentionModule, detach

MODES = ("parallel", "sequential")
#: "official": the softmax placement of the authors' code (DeLightCMU/PSA, network/PSA.py; see their issue #5);
#: "paper": the paper's formula, a softmax over the pooled query's channels.
VARIANTS = ("official", "paper")


@dataclass
class PSARecord(AttentionRecord):
    """Data: spatial_weights (B×H×W, sigmoid), channel_weights (B×C, sigmoid), channel_pool (B×H×W, the
    channel branch's softmax over positions), channel_values (B×C/2×H×W), channel_context (B×C/2×1×1)
    = Σ channel_pool · channel_values, and the spatial branch's own softmax: spatial_softmax, which is
    B×H×W over positions (official parallel), B×C/2×H×W per channel over positions (official sequential),
    or B×C/2 over channels (paper)."""

    family = "gate"
    statistics = ("psa_weights",)
    notes = {"*": "PSA has no pairwise map: its spatial and channel weights are the same for every query."}
    query_independent_views = ("spatial", "spatial_softmax", "channel_pool")

    def views(self):
        # only the official parallel variant has a softmax over positions in its spatial branch to show
        spatial_map = self.config.get("variant") == "official" and self.config["mode"] == "parallel"
        return ("spatial", "spatial_softmax", "channel_pool") if spatial_map else ("spatial", "channel_pool")

    @property
    def distribution_views(self):
        return tuple(v for v in self.views() if v != "spatial")

    def _query_map(self, y, x, view, batch):
        return self.data[{"spatial": "spatial_weights"}.get(view, view)][batch]

    def hover_spec(self, view):
        return const_spec(self.grid, self.data[{"spatial": "spatial_weights"}.get(view, view)][0])

    def reconstruction(self):
        h, w = self.grid
        return {"channel_pool": (self.data["channel_values"], self.data["channel_context"].expand(-1, -1, h, w))}


class PolarizedSelfAttention(AttentionModule):
    kind = "psa"

    def __init__(self, channels: int, mode: str = "parallel", variant: str = "official"):
        super().__init__()
        if mode not in MODES or variant not in VARIANTS:
            raise VizattnError("PSA mode must be 'parallel' or 'sequential', and variant 'official' or 'paper'.")
        half = max(1, channels // 2)
        self.mode, self.variant = mode, variant
        official = variant == "official"  # the authors' 1×1 projections have no bias
        self.ch_q = nn.Conv2d(channels, 1, 1, bias=not official)
        self.ch_v = nn.Conv2d(channels, half, 1, bias=not official)
        if official and mode == "sequential":  # the official PSA_s bottleneck: C/2 -> C/8, LayerNorm, ReLU -> C
            inner = max(1, half // 4)
            self.ch_z = nn.Sequential(nn.Conv2d(half, inner, 1), nn.LayerNorm([inner, 1, 1]), nn.ReLU(),
                                      nn.Conv2d(inner, channels, 1))
        else:
            self.ch_z = nn.Conv2d(half, channels, 1, bias=not official)
        # The paper variant's sequential mode normalises the channel logits (MODULES.md); nothing else does.
        self.ch_norm = nn.LayerNorm(channels) if mode == "sequential" and not official else nn.Identity()
        self.sp_q = nn.Conv2d(channels, half, 1, bias=not official)
        self.sp_v = nn.Conv2d(channels, half, 1, bias=not official)

    def _channel(self, x):
        pool = torch.softmax(rearrange(self.ch_q(x), "b 1 h w -> b (h w)"), dim=-1)
        values = self.ch_v(x)
        context = torch.einsum("bn,bcn->bc", pool, rearrange(values, "b c h w -> b c (h w)"))
        weights = torch.sigmoid(self.ch_norm(rearrange(self.ch_z(context[..., None, None]), "b c 1 1 -> b c")))
        return weights, pool, values, context

    def _spatial(self, x):
        """(sigmoid weights B×H×W, the branch's inner softmax)."""
        q, v = self.sp_q(x).mean(dim=(2, 3)), self.sp_v(x)  # global average pool of the query
        if self.variant == "paper":  # softmax over the pooled query's channels
            soft = torch.softmax(q, dim=-1)
            return torch.sigmoid(torch.einsum("bc,bchw->bhw", soft, v)), soft
        if self.mode == "parallel":  # PSA_p: softmax over positions of (pooled query · values)
            soft = torch.softmax(rearrange(torch.einsum("bc,bchw->bhw", q, v), "b h w -> b (h w)"), dim=-1)
            soft = soft.view_as(v[:, 0])
            return torch.sigmoid(soft), soft
        # PSA_s: softmax over positions of every value channel, then the pooled query's weighted sum
        soft = torch.softmax(rearrange(v, "b c h w -> b c (h w)"), dim=-1).view_as(v)
        return torch.sigmoid(torch.einsum("bc,bchw->bhw", q, soft)), soft

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        ch_w, pool, values, context = self._channel(x)
        ch_out = x * ch_w[..., None, None]
        sp_w, sp_soft = self._spatial(ch_out if self.mode == "sequential" else x)
        out = sp_w[:, None] * ch_out if self.mode == "sequential" else ch_out + sp_w[:, None] * x
        self.emit(lambda: PSARecord(
            self.kind, (h, w), b,
            detach(spatial_weights=sp_w, channel_weights=ch_w, channel_pool=pool.view(b, h, w),
                   spatial_softmax=sp_soft, channel_values=values, channel_context=context[..., None, None]),
            {"mode": self.mode, "variant": self.variant},
        ))
        return out
