"""Locally enhanced self-attention (Yang et al., LESA, 2021): self-attention split CRF-style into a unary
term (a grouped 3×3 conv standing in for "attend to yourself") and a binary term (multi-head attention to
all positions), fused by a dynamic gate w: out = unary + w ⊙ binary.

Claim: plain self-attention gives itself < 3% of its weight; enhancing the unary term lifts it to ~67%.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange
from torch import nn

from vizattn.capture import AttentionRecord
from vizattn.modules.base import AttentionModule, attend, detach, inv_sqrt, softmax_row


@dataclass
class LESARecord(AttentionRecord):
    """Data: q/k (B×heads×N×d), v and binary (B×heads×N×d), unary and gate (B×C×H×W)."""

    def views(self):
        return tuple(f"head{i}" for i in range(self.config["heads"])) + ("mean",)

    @property
    def distribution_views(self):
        return self.views()

    @property
    def default_view(self):
        return "mean"

    def _query_map(self, y, x, view, batch):
        h, w = self.grid
        q, k = self.data["q"][batch, :, y * w + x], self.data["k"][batch]
        rows = softmax_row(q, k, self.config["scale"])  # heads×N
        return (rows.mean(0) if view == "mean" else rows[int(view[4:])]).reshape(h, w)

    def gate_at(self, y: int, x: int, batch: int = 0) -> torch.Tensor:
        """The fusion gate w (C values) at grid position (y, x)."""
        self._check(y, x, None, batch)
        return self.data["gate"][batch, :, y, x]

    def shares(self, batch: int | None = None) -> tuple[float, float]:
        """(unary, binary) weight shares 1/(1+w) and w/(1+w), averaged over positions and channels."""
        g = self.data["gate"] if batch is None else self.data["gate"][batch]
        unary = (1.0 / (1.0 + g)).mean().item()
        return unary, 1.0 - unary

    def reconstruction(self):
        h, w = self.grid
        grid = lambda t: rearrange(t, "b (h w) d -> b d h w", h=h, w=w)  # noqa: E731
        return {f"head{i}": (grid(self.data["v"][:, i]), grid(self.data["binary"][:, i]))
                for i in range(self.config["heads"])}


class LESA(AttentionModule):
    kind = "lesa"

    def __init__(self, channels: int, heads: int = 8, shrink: int = 2):
        super().__init__()
        heads = max(1, min(heads, channels))
        while channels % heads:
            heads -= 1
        self.heads = heads
        self.unary = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, groups=heads, bias=False),
            nn.Conv2d(channels, channels, 1, bias=False),
            nn.BatchNorm2d(channels),
        )
        self.qkv = nn.Conv2d(channels, 3 * channels, 1, bias=False)
        hidden = max(1, channels // shrink)
        self.gate = nn.Sequential(
            nn.ReLU(), nn.Conv2d(2 * channels, hidden, 1, bias=False), nn.BatchNorm2d(hidden),
            nn.ReLU(), nn.Conv2d(hidden, channels, 1, bias=False), nn.BatchNorm2d(channels), nn.Sigmoid(),
        )
        self.scale = inv_sqrt(channels // heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        unary = self.unary(x)
        q, k, v = rearrange(self.qkv(x), "b (t n d) h w -> t b n (h w) d", t=3, n=self.heads)
        binary_heads = attend(q, k, v, self.scale)
        binary = rearrange(binary_heads, "b n (h w) d -> b (n d) h w", h=h, w=w)
        gate = self.gate(torch.cat([unary, binary], dim=1))
        self.emit(lambda: LESARecord(
            self.kind, (h, w), b, detach(q=q, k=k, v=v, binary=binary_heads, unary=unary, gate=gate),
            {"heads": self.heads, "scale": self.scale},
        ))
        return unary + gate * binary
