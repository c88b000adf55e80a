"""Asymmetric non-local blocks (Zhu et al., ANN, ICCV 2019): keys and values are sampled by spatial pyramid
pooling (sizes 1, 3, 6, 8 -> 110 anchors), so the affinity is N×110 instead of N×N. APNB attends within one
feature; AFNB takes queries from the high-level feature and anchors from the low-level one.

Claim: for a 256×128 input APNB is ~6× faster and uses ~28× less GPU memory than a non-local block.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from vizattn.records import AttentionRecord, Factor, rows_spec
from vizattn.modules.base import AttentionModule, attend, conv_bn_relu, detach, inv_sqrt, softmax_row

PYRAMID = (1, 3, 6, 8)


def pyramid_pool(x: torch.Tensor, sizes=PYRAMID) -> torch.Tensor:
    """B×C×H×W -> B×S×C anchors, S = Σ s² (adaptive average pooling per level, flattened row-major)."""
    return torch.cat([rearrange(F.adaptive_avg_pool2d(x, s), "b c i j -> b (i j) c") for s in sizes], dim=1)


def anchor_projection(h: int, w: int, sizes=PYRAMID, device=None, dtype=torch.float32) -> torch.Tensor:
    """S×(H·W): row a holds 1/|R_a| on the pixels anchor a averages (PyTorch's adaptive-pool regions)."""
    rows = []
    for s in sizes:
        for i in range(s):
            for j in range(s):
                r = torch.zeros(h, w, device=device, dtype=dtype)
                y0, y1 = (i * h) // s, -((-(i + 1) * h) // s)
                x0, x1 = (j * w) // s, -((-(j + 1) * w) // s)
                r[y0:y1, x0:x1] = 1.0 / ((y1 - y0) * (x1 - x0))
                rows.append(r.flatten())
    return torch.stack(rows)


def level_range(sizes, level: int) -> tuple[int, int]:
    """Where pyramid level `level`'s s×s anchors lie among all the anchors (levels in `sizes` order)."""
    start = 0
    for s in sizes:
        if s == level:
            return start, start + s * s
        start += s * s
    raise ValueError(f"no pyramid level {level} in {tuple(sizes)}")


@dataclass
class AnchorRecord(AttentionRecord):
    """APNB's attention to its own feature's pyramid anchors. Data: q (B×N×d), anchor keys (B×S×d), values on
    the key grid (B×C×H×W), context (B×C×H×W)."""

    family = "anchors"
    statistics = ("query_independence", "where")
    notes = {"all": "110 pyramid anchors (1, 3, 6, 8), each weight spread over the pixels it averages."}
    default_view = "all"

    def views(self):
        return tuple(f"level{s}" for s in self.config["sizes"]) + ("all",)

    @property
    def distribution_views(self):
        return ("all",)

    def anchor_weights(self, y: int, x: int, batch: int = 0) -> dict[int, torch.Tensor]:
        """The 110 anchor weights of query (y, x), split per pyramid level as s×s grids."""
        self._check(y, x, None, batch)
        row = self._row(y, x, batch)
        out, start = {}, 0
        for s in self.config["sizes"]:
            out[s] = row[start : start + s * s].view(s, s)
            start += s * s
        return out

    def _row(self, y, x, batch):
        q = self.data["q"][batch, y * self.grid[1] + x]
        return softmax_row(q, self.data["k"][batch], self.config["scale"])

    def _query_map(self, y, x, view, batch):
        kh, kw = self.config["key_grid"]
        row = self._row(y, x, batch)
        if view != "all":  # keep one level's anchors only
            start, end = level_range(self.config["sizes"], int(view[5:]))
            keep = torch.zeros_like(row)
            keep[start:end] = 1
            row = row * keep
        proj = anchor_projection(kh, kw, self.config["sizes"], row.device, row.dtype)
        return (row @ proj).view(kh, kw)

    def hover_spec(self, view):
        sizes, key_grid = list(self.config["sizes"]), self.config["key_grid"]
        keep = None if view == "all" else list(level_range(sizes, int(view[5:])))
        src = dict(q=Factor(self.data["q"][:1]), k=Factor(self.data["k"][:1]), scale=float(self.config["scale"]))
        return rows_spec(self.grid, key_grid, src, keep=keep, boxes=sizes)

    def reconstruction(self):
        return {"all": (self.data["values"], self.data["context"])}


@dataclass
class FusionAnchorRecord(AnchorRecord):
    """AFNB's attention: high-level queries to the anchors of the low-level feature. Its keys are not the
    queries' own feature, so it is left out of the statistics of a feature attending to itself."""

    statistics = ()
    notes = {"all": "110 anchors of the low-level feature, each weight spread over the pixels it averages."}


class _AnchorAttention(nn.Module):
    """Query-to-anchor attention shared by APNB and AFNB; returns the context on the query grid."""

    def __init__(self, query_channels, key_channels, anchor_channels, value_channels, shared_query_key, sizes):
        super().__init__()
        self.key = conv_bn_relu(anchor_channels, key_channels)
        # APNB shares one projection for queries and keys; registering it once keeps the state dict free of aliases
        self.query = None if shared_query_key else conv_bn_relu(query_channels, key_channels)
        self.value = nn.Conv2d(anchor_channels, value_channels, 1)
        self.out = nn.Conv2d(value_channels, query_channels, 1)
        nn.init.zeros_(self.out.weight)  # the official W starts at zero
        nn.init.zeros_(self.out.bias)
        self.sizes, self.scale = tuple(sizes), inv_sqrt(key_channels)

    def forward(self, module: AttentionModule, high, low):
        b, _, h, w = high.shape
        q = rearrange((self.key if self.query is None else self.query)(high), "b c h w -> b (h w) c")
        k = pyramid_pool(self.key(low), self.sizes)
        values = self.value(low)
        ctx = rearrange(attend(q, k, pyramid_pool(values, self.sizes), self.scale), "b (h w) c -> b c h w", h=h, w=w)
        module.emit(lambda: module.record_type(
            module.kind, (h, w), b, detach(q=q, k=k, values=values, context=ctx),
            {"sizes": self.sizes, "scale": self.scale, "key_grid": tuple(low.shape[2:])},
        ))
        return self.out(ctx)


class APNB(AttentionModule):
    """Asymmetric pyramid non-local block: self-attention of a feature to its own pyramid anchors."""

    kind = "apnb"
    record_type = AnchorRecord

    def __init__(self, channels: int, key_channels: int | None = None, value_channels: int | None = None,
                 sizes=PYRAMID):
        super().__init__()
        kc, vc = key_channels or max(1, channels // 2), value_channels or max(1, channels // 2)
        self.attention = _AnchorAttention(channels, kc, channels, vc, True, sizes)
        self.fuse = conv_bn_relu(2 * channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fuse(torch.cat([self.attention(self, x, x), x], dim=1))


class AFNB(AttentionModule):
    """Asymmetric fusion non-local block: high-level queries attend to the low-level feature's anchors."""

    kind = "afnb"
    record_type = FusionAnchorRecord

    def __init__(self, channels: int, low_channels: int | None = None, key_channels: int | None = None,
                 value_channels: int | None = None, sizes=PYRAMID):
        super().__init__()
        low = low_channels or channels
        kc, vc = key_channels or max(1, channels // 2), value_channels or max(1, channels // 2)
        self.attention = _AnchorAttention(channels, kc, low, vc, False, sizes)
        # conv + BN with no ReLU, as mmseg's AFNB bottleneck (act_cfg=None) and the official conv_bn_dropout
        self.fuse = nn.Sequential(nn.Conv2d(2 * channels, channels, 1, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor, low: torch.Tensor | None = None) -> torch.Tensor:
        """x: the high-level feature; low: the low-level one (x itself when omitted)."""
        return self.fuse(torch.cat([self.attention(self, x, x if low is None else low), x], dim=1))
