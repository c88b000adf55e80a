"""Point-wise spatial attention (Zhao et al., PSANet, ECCV 2018): every position predicts, from its own feature,
a mask over a window around it. "Collect": how much it gathers from each other position; "distribute": how
much it sends to each. Each direction is one softmax over the positions, as mmsegmentation's PSAHead computes it.

Claim: learned, position-adaptive, bi-directional information flow over the whole map beats fixed context.
The window is mask_h×mask_w (97×97 in the Cityscapes configs) over the feature map shrunk by 2; positions
outside a window get a logit of 0, not −∞, exactly as the PSAMask op leaves them.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vizattn.records import AttentionRecord, Factor
from vizattn.errors import VizattnError
from vizattn.modules.base import AttentionModule, conv_bn_relu, detach

TYPES = ("collect", "distribute", "bi-direction")


def window_offsets(h: int, w: int, mask: tuple[int, int], device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """For every pair (a, b) of positions on an h×w grid: the mask channel of offset a − b seen from b
    (centred in the mask) and whether it lies inside the mask. Both (h·w)×(h·w)."""
    mh, mw = mask
    ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
    ys, xs = ys.flatten(), xs.flatten()
    dy = ys[:, None] - ys[None, :] + (mh - 1) // 2
    dx = xs[:, None] - xs[None, :] + (mw - 1) // 2
    inside = (dy >= 0) & (dy < mh) & (dx >= 0) & (dx < mw)
    return torch.where(inside, dy * mw + dx, 0), inside


def window_logits(logits: torch.Tensor, channel: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
    """PSAMask, vectorised: B×M×N mask logits -> B×N×N with out[a, b] = logits[offset(a − b), b] inside the
    window and 0 outside."""
    b, _, n = logits.shape
    gathered = logits.gather(1, channel.expand(b, n, n))
    return gathered.masked_fill(~inside, 0.0)


@dataclass
class PSANetRecord(AttentionRecord):
    """Data: B×M×h×w mask logits per direction (collect / distribute), values and outputs (B×C×h×w) per
    direction; config: mask (mh, mw). Rows are built on demand from the logits (never the N×N matrices)."""

    family = "distribution"

    def views(self):
        return tuple(self.config["directions"])

    @property
    def distribution_views(self):
        return self.views()

    def _query_map(self, y, x, view, batch):
        h, w = self.grid
        j = y * w + x
        channel, inside = window_offsets(h, w, self.config["mask"], self.data[f"logits_{view}"].device)
        logits = self.data[f"logits_{view}"][batch].flatten(1)  # M×N
        if view == "collect":  # query j gathers from every a: logits[offset(a − j), j], softmax over a
            row = logits[channel[:, j], j].masked_fill(~inside[:, j], 0.0)
        else:  # query j receives from every b: logits[offset(j − b), b], softmax over b
            row = logits[channel[j], torch.arange(h * w, device=logits.device)].masked_fill(~inside[j], 0.0)
        return torch.softmax(row, dim=0).view(h, w)

    def hover_spec(self, view):
        return dict(f="psanet", grid=list(self.grid), out=list(self.grid), direction=view,
                    mask=list(self.config["mask"]), logits=Factor(self.data[f"logits_{view}"][0].flatten(1)))

    def reconstruction(self):
        return {v: (self.data[f"values_{v}"], self.data[f"out_{v}"]) for v in self.views()}


class PSANet(AttentionModule):
    """B×C×H×W -> B×C×H×W: the attention branches of mmseg's PSAHead (reduce, mask prediction, PSAMask,
    softmax, aggregation, projection back to C and to H×W). `channels` is the input width, `inner` the
    branches' width (the head's channels)."""

    kind = "psanet"

    def __init__(self, channels: int, inner: int | None = None, mask_size: tuple[int, int] = (15, 15),
                 psa_type: str = "bi-direction", shrink_factor: int = 2, normalization_factor: float = 1.0):
        super().__init__()
        if psa_type not in TYPES:
            raise VizattnError(f"PSANet psa_type must be one of {', '.join(TYPES)}.")
        inner = inner or max(1, channels // 4)
        self.mask, self.psa_type = tuple(mask_size), psa_type
        self.shrink, self.norm_factor = shrink_factor, normalization_factor
        m = self.mask[0] * self.mask[1]
        self.directions = ("collect", "distribute") if psa_type == "bi-direction" else (psa_type,)
        self.reduce = nn.ModuleDict({d: conv_bn_relu(channels, inner) for d in self.directions})
        self.attention = nn.ModuleDict({
            d: nn.Sequential(conv_bn_relu(inner, inner), nn.Conv2d(inner, m, 1, bias=False)) for d in self.directions
        })
        # a 1×1 conv with padding 1, as in mmseg: its output is 2 px larger and is resized back below
        self.proj = nn.Sequential(nn.Conv2d(inner * len(self.directions), channels, 1, padding=1, bias=False),
                                  nn.BatchNorm2d(channels), nn.ReLU(inplace=True))

    def _shrunk(self, h: int, w: int) -> tuple[int, int, bool]:
        s = self.shrink
        if s == 1:
            return h, w, False
        if h % s and w % s:
            return (h - 1) // s + 1, (w - 1) // s + 1, True
        return h // s, w // s, False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, H, W = x.shape
        h, w, corners = self._shrunk(H, W)
        channel, inside = window_offsets(h, w, self.mask, x.device)
        outs, saved = [], {}
        for d in self.directions:
            feats = self.reduce[d](x)
            if (h, w) != (H, W):
                feats = F.interpolate(feats, size=(h, w), mode="bilinear", align_corners=corners)
            logits = self.attention[d](feats)
            t = window_logits(logits.flatten(2), channel, inside)  # B×N×N: [a, b] = mask of b at offset a − b
            # collect: position b gathers Σ_a x_a·softmax_a; distribute: position a receives Σ_b x_b·softmax_b
            weights = torch.softmax(t, dim=1) if d == "collect" else torch.softmax(t, dim=2).transpose(1, 2)
            values = feats.flatten(2) * (1.0 / self.norm_factor)
            out = torch.bmm(values, weights).view_as(feats)
            outs.append(out)
            saved.update({f"logits_{d}": logits, f"values_{d}": values.view_as(feats), f"out_{d}": out})
        self.emit(lambda: PSANetRecord(self.kind, (h, w), b, detach(**saved),
                                       {"mask": self.mask, "directions": self.directions}))
        out = self.proj(torch.cat(outs, dim=1))
        return F.interpolate(out, size=(H, W), mode="bilinear", align_corners=corners)
