"""Interlaced sparse self-attention (Huang et al., 2019): dense attention factorised into a long-range step
over positions spaced one group apart, then a short-range step inside each contiguous block.

Claim: two sparse affinities (O(N²/(dh·dw) + N·dh·dw)) let every position reach every other, like a dense map.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from vizattn.records import AttentionRecord, Factor
from vizattn.modules.base import AttentionModule, attend, conv_bn_relu, detach, inv_sqrt, softmax_row

# Long-range groups: a fixed offset (a, b) inside every block; members spaced dh, dw apart on an oh×ow lattice.
_TO_LONG = "b c (oh dh) (ow dw) -> (b dh dw) (oh ow) c"
# Short-range groups: one contiguous dh×dw block.
_TO_SHORT = "b c (oh dh) (ow dw) -> (b oh ow) (dh dw) c"


class GroupAttention(nn.Module):
    """Self-attention inside each group (the official SelfAttentionBlock2D): q/k two conv-BN-ReLU, v one conv."""

    def __init__(self, channels: int, key_channels: int, value_channels: int, value_bias: bool = True):
        super().__init__()
        self.query = nn.Sequential(conv_bn_relu(channels, key_channels), conv_bn_relu(key_channels, key_channels))
        self.key = nn.Sequential(conv_bn_relu(channels, key_channels), conv_bn_relu(key_channels, key_channels))
        self.value = nn.Conv2d(channels, value_channels, 1, bias=value_bias)
        self.out = conv_bn_relu(value_channels, channels)
        self.scale = inv_sqrt(key_channels)

    def forward(self, x: torch.Tensor, pattern: str, dh: int, dw: int):
        to_groups = lambda t: rearrange(t, pattern, dh=dh, dw=dw)  # noqa: E731
        q, k, v = to_groups(self.query(x)), to_groups(self.key(x)), to_groups(self.value(x))
        ctx = attend(q, k, v, self.scale)
        back = pattern.split("->")[1] + " -> " + pattern.split("->")[0]
        ctx_grid = rearrange(ctx, back, b=x.shape[0], dh=dh, dw=dw, oh=x.shape[2] // dh)
        return self.out(ctx_grid), q, k, rearrange(v, back, b=x.shape[0], dh=dh, dw=dw, oh=x.shape[2] // dh), ctx_grid


@dataclass
class ISARecord(AttentionRecord):
    """Data: q/k of each step in group layout, values and outputs on the padded grid; config: group, pad."""

    family = "composition"
    statistics = ("query_independence", "where")
    notes = {"effective": "Routing composition A_S·A_L; the projections between the two steps are left out."}
    default_view = "effective"
    query_independent_views = ()

    def views(self):
        return ("long", "short", "effective")

    @property
    def padded(self) -> bool:
        return any(self.config["pad"])

    @property
    def distribution_views(self):
        # on a padded grid part of every row lands on the zero padding (unmasked, as in the official code),
        # so what is shown over the image sums to less than 1
        return () if self.padded else self.views()

    def outside_share(self, y, x, view=None, batch=0) -> float:
        """The share of (y, x)'s weight that went to the zero padding around the grid."""
        view = self._check(y, x, view, batch)
        if not self.padded:
            return 0.0
        m = self._padded_map(int(y) + self.config["pad"][0], int(x) + self.config["pad"][2], view, int(batch))
        top, _, left, _ = self.config["pad"]
        inside = m[top : top + self.grid[0], left : left + self.grid[1]].sum()
        return float((m.sum() - inside).clamp_min(0))

    def query_map(self, y, x, view=None, batch=0, padded: bool = False):
        """As the base, but `padded=True` returns the map over the zero-padded grid (where mass may also go)."""
        view = self._check(y, x, view, batch)
        m = self._padded_map(int(y) + self.config["pad"][0], int(x) + self.config["pad"][2], view, int(batch))
        if not padded:
            top, _, left, _ = self.config["pad"]
            m = m[top : top + self.grid[0], left : left + self.grid[1]]
        return m.detach().to("cpu", torch.float64).numpy()

    def _like(self) -> torch.Tensor:
        """A captured tensor whose dtype and device the maps take."""
        return self.data["q_long"]

    def _long_rows(self, i, j, batch):
        """A_L rows of lattice point (i, j) in every long-range group: (dh, dw, oh, ow)."""
        dh, dw = self.config["group"]
        oh, ow = self.config["lattice"]
        q = self.data["q_long"].view(-1, dh, dw, oh * ow, self.data["q_long"].shape[-1])[batch, :, :, i * ow + j]
        k = self.data["k_long"].view(-1, dh, dw, oh * ow, self.data["k_long"].shape[-1])[batch]
        return softmax_row(q, k, self.config["scale_long"]).view(dh, dw, oh, ow)

    def _short_row(self, i, j, a, b, batch):
        dh, dw = self.config["group"]
        oh, ow = self.config["lattice"]
        d = self.data["q_short"].shape[-1]
        q = self.data["q_short"].view(-1, oh, ow, dh * dw, d)[batch, i, j, a * dw + b]
        k = self.data["k_short"].view(-1, oh, ow, dh * dw, d)[batch, i, j]
        return softmax_row(q, k, self.config["scale_short"]).view(dh, dw)

    def reconstruction_map(self, y, x, view, batch=0):
        return self._padded_map(y, x, view, batch)

    def _padded_map(self, Y, X, view, batch):
        dh, dw = self.config["group"]
        oh, ow = self.config["lattice"]
        i, a, j, b = Y // dh, Y % dh, X // dw, X % dw
        like = self._like()
        m = torch.zeros(oh, dh, ow, dw, dtype=like.dtype, device=like.device)
        if view == "long":  # the query's own group: offset (a, b), every lattice point
            m[:, a, :, b] = self._long_rows(i, j, batch)[a, b]
        elif view == "short":  # its block (i, j)
            m[i, :, j, :] = self._short_row(i, j, a, b, batch)
        else:  # row of A_S·A_L: the block member (a', b') passes on what its long-range group gathered
            s = self._short_row(i, j, a, b, batch)
            m = rearrange(s[:, :, None, None] * self._long_rows(i, j, batch), "dh dw oh ow -> oh dh ow dw")
        return m.reshape(oh * dh, ow * dw)

    def _hover_isa(self, view, long: dict, short: dict) -> dict:
        """The browser's "isa" formula over the two steps' sources (q/k with a scale, or precomputed rows)."""
        return dict(f="isa", grid=list(self.grid), out=list(self.grid), view=view, long=long, short=short,
                    group=list(self.config["group"]), lattice=list(self.config["lattice"]),
                    pad=list(self.config["pad"]))

    def hover_spec(self, view):
        dh, dw = self.config["group"]
        oh, ow = self.config["lattice"]
        return self._hover_isa(
            view,
            dict(q=Factor(self.data["q_long"][: dh * dw]), k=Factor(self.data["k_long"][: dh * dw]),
                 scale=float(self.config["scale_long"])),
            dict(q=Factor(self.data["q_short"][: oh * ow]), k=Factor(self.data["k_short"][: oh * ow]),
                 scale=float(self.config["scale_short"])))

    def reconstruction(self):
        return {
            view: (self.data[f"v_{view}"], self.data[f"out_{view}"]) for view in ("long", "short")
        }


class ISA(AttentionModule):
    kind = "isa"

    def __init__(self, channels: int, group: tuple[int, int] = (8, 8), key_channels: int | None = None,
                 value_channels: int | None = None, value_bias: bool = True):
        """Defaults follow mmseg's ISAHead: values as wide as the input, value conv with a bias
        (`value_bias=False` is openseg's ISA_Module)."""
        super().__init__()
        key_channels = key_channels or max(1, channels // 2)
        value_channels = value_channels or channels
        self.group = tuple(group)
        self.long_range = GroupAttention(channels, key_channels, value_channels, value_bias)
        self.short_range = GroupAttention(channels, key_channels, value_channels, value_bias)
        self.fuse = conv_bn_relu(2 * channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bsz, _, h, w = x.shape
        dh, dw = self.group
        oh, ow = math.ceil(h / dh), math.ceil(w / dw)
        ph, pw = oh * dh - h, ow * dw - w
        pad = (ph // 2, ph - ph // 2, pw // 2, pw - pw // 2)  # split as the official code: top, bottom, left, right
        feats = F.pad(x, (pad[2], pad[3], pad[0], pad[1])) if ph or pw else x
        long_out, ql, kl, vl, cl = self.long_range(feats, _TO_LONG, dh, dw)
        short_out, qs, ks, vs, cs = self.short_range(long_out, _TO_SHORT, dh, dw)
        ctx = short_out[:, :, pad[0] : pad[0] + h, pad[2] : pad[2] + w]
        self.emit(lambda: ISARecord(
            self.kind, (h, w), bsz,
            detach(q_long=ql, k_long=kl, v_long=vl, out_long=cl, q_short=qs, k_short=ks, v_short=vs, out_short=cs),
            {"group": self.group, "lattice": (oh, ow), "pad": pad, "scale_long": self.long_range.scale,
             "scale_short": self.short_range.scale},
        ))
        return self.fuse(torch.cat([ctx, x], dim=1))  # (context, input), as mmseg's out_conv
