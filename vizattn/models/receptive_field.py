"""The theoretical receptive field of a network, computed by back-propagation through a positive copy.

With every conv weight positive, BatchNorm the identity and attention removed, no gradient can cancel,
so the input pixels with non-zero gradient for one output position are exactly its receptive field.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from vizattn.modules.base import AttentionModule


def receptive_field(net: nn.Module, size: int = 257, forward=None) -> int:
    """Side (px) of the square input window that can influence the centre output position."""
    net = copy.deepcopy(net).eval()
    for m in list(net.modules()):
        for cname, child in list(m.named_children()):
            if isinstance(child, AttentionModule) or child.__class__.__name__ == "ANNContext":
                setattr(m, cname, _PassThrough())
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.fill_(1.0 / m.weight[0].numel())
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                m.reset_parameters()
                m.reset_running_stats()
    x = torch.ones(1, 3, size, size, requires_grad=True)
    out = (forward or net)(x)
    out = out[-1] if isinstance(out, tuple) else out  # the backbone returns (low, high): measure high
    _, _, h, w = out.shape
    out[0, :, h // 2, w // 2].sum().backward()
    rows = torch.nonzero(x.grad[0].abs().sum(0).sum(1)).flatten()
    return int(rows.max() - rows.min() + 1)


class _PassThrough(nn.Module):
    def forward(self, x, *rest):
        return x
