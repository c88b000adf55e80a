"""Dual attention (Fu et al., DANet, CVPR 2019): a dense position-attention module beside a channel-attention
module over the C×C channel affinity; their outputs are summed.

Claim: modelling both spatial and channel interdependencies beats either alone (mmsegmentation ships it).
"""
from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from vizattn.modules.base import AttentionModule, attend, detach
from vizattn.modules.non_local import PairwiseRecord


class DANet(AttentionModule):
    kind = "danet"

    def __init__(self, channels: int, reduction: int = 8):
        super().__init__()
        inner = max(1, channels // reduction)
        self.query = nn.Conv2d(channels, inner, 1)
        self.key = nn.Conv2d(channels, inner, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.gamma_position = nn.Parameter(torch.zeros(1))
        self.gamma_channel = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        flat = lambda t: rearrange(t, "b c h w -> b (h w) c")  # noqa: E731
        q, k, v = flat(self.query(x)), flat(self.key(x)), flat(self.value(x))
        pos = attend(q, k, v, 1.0)  # DANet does not scale its energies
        feats = rearrange(x, "b c h w -> b c (h w)")
        energy = feats @ feats.transpose(1, 2)
        # the official channel module softmaxes (rowmax - energy), favouring dissimilar channels
        chan_att = torch.softmax(energy.amax(dim=-1, keepdim=True) - energy, dim=-1)
        chan = rearrange(chan_att @ feats, "b c (h w) -> b c h w", h=h, w=w)
        self.emit(lambda: PairwiseRecord(
            self.kind, (h, w), b, detach(q=q, k=k, v=v, out=pos, channel_affinity=chan_att), {"scale": 1.0},
            view_name="position",
        ))
        # One residual for both branches, so the module starts as the identity like the others (the official
        # head instead sums two separately convolved branch outputs).
        return x + self.gamma_position * rearrange(pos, "b (h w) c -> b c h w", h=h, w=w) + self.gamma_channel * chan
