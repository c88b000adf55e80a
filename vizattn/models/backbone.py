"""A small dilated ResNet-style backbone written here (no torchvision on CPU): output stride 8, with a
lower-level stride-8 feature for AFNB. Its theoretical receptive field is computed, not assumed
(`vizattn.models.receptive_field`)."""
from __future__ import annotations

import torch
from torch import nn


def _conv_bn(cin, cout, k, stride=1, dilation=1):
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, padding=dilation * (k // 2), dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
    )


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1, self.conv2 = _conv_bn(cin, cout, 3, stride), _conv_bn(cout, cout, 3)
        self.shortcut = _conv_bn(cin, cout, 1, stride) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x):
        return torch.relu(self.conv2(torch.relu(self.conv1(x))) + self.shortcut(x))


class DilatedBottleneck(nn.Module):
    """1×1 - 3×3 dilated - 1×1 with identity shortcut: the stride-free last stage of a dilated ResNet."""

    def __init__(self, channels: int, mid: int, dilation: int):
        super().__init__()
        self.body = nn.Sequential(
            _conv_bn(channels, mid, 1), nn.ReLU(inplace=True),
            _conv_bn(mid, mid, 3, dilation=dilation), nn.ReLU(inplace=True),
            _conv_bn(mid, channels, 1),
        )

    def forward(self, x):
        return torch.relu(self.body(x) + x)


class Backbone(nn.Module):
    """image B×3×H×W -> (low, high), both B×C×⌈H/8⌉×⌈W/8⌉."""

    def __init__(self, widths: tuple[int, int, int] = (32, 64, 128), dilation: int = 2):
        super().__init__()
        w0, w1, w2 = widths
        self.stem = nn.Sequential(_conv_bn(3, w0, 3, stride=2), nn.ReLU(inplace=True))
        self.layer1 = BasicBlock(w0, w1, stride=2)
        self.layer2 = BasicBlock(w1, w2, stride=2)
        self.layer3 = DilatedBottleneck(w2, w2 // 2, dilation)
        self.low_channels = self.high_channels = w2

    def forward(self, x):
        low = self.layer2(self.layer1(self.stem(x)))
        return low, self.layer3(low)
