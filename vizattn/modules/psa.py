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

from vizattn.capture import AttentionRecord
from vizattn.errors import VizattnError
from vizattn.modules.base import AttentionModule, detach


@dataclass
class PSARecord(AttentionRecord):
    """Data: spatial_weights (B×H×W, sigmoid), channel_weights (B×C, sigmoid), channel_pool (B×H×W, the
    channel branch's softmax over positions), spatial_softmax (B×C/2, the spatial branch's softmax over
    channels), channel_values (B×C/2×H×W) and channel_context (B×C/2×1×1) = Σ channel_pool · channel_values."""

    query_independent_views = ("spatial", "channel_pool")
    distribution_views = ("channel_pool",)

    def views(self):
        return ("spatial", "channel_pool")

    def _query_map(self, y, x, view, batch):
        return self.data["spatial_weights" if view == "spatial" else "channel_pool"][batch]

    def reconstruction(self):
        h, w = self.grid
        return {"channel_pool": (self.data["channel_values"], self.data["channel_context"].expand(-1, -1, h, w))}


class PolarizedSelfAttention(AttentionModule):
    kind = "psa"
    family = "channel"

    def __init__(self, channels: int, mode: str = "parallel"):
        super().__init__()
        if mode not in ("parallel", "sequential"):
            raise VizattnError("PSA mode must be 'parallel' or 'sequential'.")
        half = max(1, channels // 2)
        self.mode = mode
        self.ch_q = nn.Conv2d(channels, 1, 1)
        self.ch_v = nn.Conv2d(channels, half, 1)
        self.ch_z = nn.Conv2d(half, channels, 1)
        # The sequential variant normalises the channel logits (MODULES.md); the parallel one does not.
        self.ch_norm = nn.LayerNorm(channels) if mode == "sequential" else nn.Identity()
        self.sp_q = nn.Conv2d(channels, half, 1)
        self.sp_v = nn.Conv2d(channels, half, 1)

    def _channel(self, x):
        pool = torch.softmax(rearrange(self.ch_q(x), "b 1 h w -> b (h w)"), dim=-1)
        values = self.ch_v(x)
        context = torch.einsum("bn,bcn->bc", pool, rearrange(values, "b c h w -> b c (h w)"))
        weights = torch.sigmoid(self.ch_norm(rearrange(self.ch_z(context[..., None, None]), "b c 1 1 -> b c")))
        return weights, pool, values, context

    def _spatial(self, x):
        q = torch.softmax(self.sp_q(x).mean(dim=(2, 3)), dim=-1)  # global average pool, softmax over channels
        weights = torch.sigmoid(torch.einsum("bc,bchw->bhw", q, self.sp_v(x)))
        return weights, q

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        ch_w, pool, values, context = self._channel(x)
        ch_out = x * ch_w[..., None, None]
        sp_w, sp_q = self._spatial(ch_out if self.mode == "sequential" else x)
        out = sp_w[:, None] * ch_out if self.mode == "sequential" else ch_out + sp_w[:, None] * x
        self.emit(lambda: PSARecord(
            self.kind, (h, w), b,
            detach(spatial_weights=sp_w, channel_weights=ch_w, channel_pool=pool.view(b, h, w), spatial_softmax=sp_q,
                   channel_values=values, channel_context=context[..., None, None]),
            {"mode": self.mode},
        ))
        return out
