"""ResNetV1c, the backbone of mmsegmentation's R-50-D8 / R-101-D8 models, in plain torch.

V1c = ResNet with a deep stem (three 3×3 convs instead of one 7×7); "D8" = output stride 8: stages 3 and 4
keep stride 1 and dilate by 2 and 4 instead, the first block of each dilated stage at half dilation
(mmseg's contract_dilation). Parameter names are mmseg's (stem.N, layerK.N.convM/bnM, downsample.{0,1}),
so its checkpoints load without renaming.
"""
from __future__ import annotations

from torch import nn

DEPTHS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}


class Bottleneck(nn.Module):
    """1×1 -> 3×3 (stride, dilation) -> 1×1 ×4, with a projected shortcut where the shape changes."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int, dilation: int, downsample: bool):
        super().__init__()
        cout = planes * self.expansion
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)) if downsample else None
        )

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNetV1c(nn.Module):
    """image B×3×H×W -> the four stage outputs (strides 4, 8, 8, 8 with the D8 settings)."""

    def __init__(self, depth: int = 50, stem_channels: int = 64, base_channels: int = 64,
                 strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4), contract_dilation: bool = True):
        super().__init__()
        half = stem_channels // 2
        self.stem = nn.Sequential(
            nn.Conv2d(3, half, 3, 2, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU(inplace=True),
            nn.Conv2d(half, half, 3, 1, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU(inplace=True),
            nn.Conv2d(half, stem_channels, 3, 1, 1, bias=False), nn.BatchNorm2d(stem_channels), nn.ReLU(inplace=True),
        )
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = stem_channels
        self.stage_channels = []
        for i, (blocks, stride, dilation) in enumerate(zip(DEPTHS[depth], strides, dilations)):
            planes = base_channels * 2**i
            first = dilation // 2 if contract_dilation and dilation > 1 else dilation
            layer = [Bottleneck(cin, planes, stride, first, stride != 1 or cin != planes * 4)]
            cin = planes * 4
            layer += [Bottleneck(cin, planes, 1, dilation, False) for _ in range(blocks - 1)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*layer))
            self.stage_channels.append(cin)

    def forward(self, x, after_stage=None):
        """The four stage outputs; `after_stage(i)` is called after stage i (1..4), for progress bars."""
        x = self.maxpool(self.stem(x))
        outs = []
        for i in range(4):
            x = getattr(self, f"layer{i + 1}")(x)
            outs.append(x)
            if after_stage:
                after_stage(i + 1)
        return outs
