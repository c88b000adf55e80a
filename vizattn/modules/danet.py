"""Dual attention (Fu et al., DANet, CVPR 2019): a dense position-attention module beside a channel-attention
module over the C×C channel affinity; their outputs are summed.

Claim: modelling both spatial and channel interdependencies beats either alone (mmsegmentation ships it).
"""
from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from vizattn.modules.base import AttentionModule, attend, conv_bn_relu, detach
from vizattn.modules.non_local import PairwiseRecord


class DANet(AttentionModule):
    """`branch_convs=False` (default): one residual for both branches, x + γ_p·PAM(x) + γ_c·CAM(x), so the module
    starts as the identity like the others. `branch_convs=True`: the official head's form (mmseg DAHead) — each
    branch has its own 3×3 conv-BN-ReLU before and after it, each keeps its own residual, and the two branch
    outputs are summed; `out_channels` is then the branches' width (the head's channels)."""

    kind = "danet"

    def __init__(self, channels: int, reduction: int = 8, branch_convs: bool = False, out_channels: int | None = None):
        super().__init__()
        width = (out_channels or channels) if branch_convs else channels
        inner = max(1, width // reduction)
        self.query = nn.Conv2d(width, inner, 1)
        self.key = nn.Conv2d(width, inner, 1)
        self.value = nn.Conv2d(width, width, 1)
        self.gamma_position = nn.Parameter(torch.zeros(1))
        self.gamma_channel = nn.Parameter(torch.zeros(1))
        self.branch_convs = branch_convs
        if branch_convs:
            self.position_in, self.position_out = conv_bn_relu(channels, width, 3), conv_bn_relu(width, width, 3)
            self.channel_in, self.channel_out = conv_bn_relu(channels, width, 3), conv_bn_relu(width, width, 3)

    def _position(self, x):
        b, c, h, w = x.shape
        flat = lambda t: rearrange(t, "b c h w -> b (h w) c")  # noqa: E731
        q, k, v = flat(self.query(x)), flat(self.key(x)), flat(self.value(x))
        pos = attend(q, k, v, 1.0)  # DANet does not scale its energies
        return rearrange(pos, "b (h w) c -> b c h w", h=h, w=w), dict(q=q, k=k, v=v, out=pos)

    @staticmethod
    def _channel(x):
        b, c, h, w = x.shape
        feats = rearrange(x, "b c h w -> b c (h w)")
        energy = feats @ feats.transpose(1, 2)
        # the official channel module softmaxes (rowmax - energy), favouring dissimilar channels
        att = torch.softmax(energy.amax(dim=-1, keepdim=True) - energy, dim=-1)
        return rearrange(att @ feats, "b c (h w) -> b c h w", h=h, w=w), att

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        xp, xc = (self.position_in(x), self.channel_in(x)) if self.branch_convs else (x, x)
        pos, saved = self._position(xp)
        chan, chan_att = self._channel(xc)
        self.emit(lambda: PairwiseRecord(
            self.kind, (h, w), b, detach(**saved, channel_affinity=chan_att), {"scale": 1.0}, view_name="position",
        ))
        if self.branch_convs:
            return self.position_out(xp + self.gamma_position * pos) + self.channel_out(xc + self.gamma_channel * chan)
        return x + self.gamma_position * pos + self.gamma_channel * chan
