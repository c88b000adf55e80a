"""`package.module:function` factories for tests: models that fail in the ways a user's own model can."""
import time

import torch
from torch import nn


class _Broken(nn.Module):
    def __init__(self, mode: str):
        super().__init__()
        self.mode = mode
        self.steps = nn.ModuleList(nn.Conv2d(3, 3, 1) for _ in range(6))

    def forward(self, x):
        for step in self.steps:
            if self.mode == "slow":
                time.sleep(0.4)  # a model that reports no progress of its own
            x = step(x)
        if self.mode == "nan":
            return torch.full((1, 9, *x.shape[2:]), float("nan"))
        if self.mode == "fails":
            raise RuntimeError("shapes do not fit")
        return x[:, :3].repeat(1, 3, 1, 1)


def nan_model():
    return _Broken("nan")


def failing_model():
    return _Broken("fails")


def slow_model():
    return _Broken("slow")


def plain_model():
    return _Broken("ok")


class TinyAttention(nn.Module):
    """Nine-class logits through one nn.MultiheadAttention on a stride-16 grid: a model of our label set whose
    attention grid differs from our segmenters' (stride 8)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv2d(3, 16, 16, stride=16)
        self.attention = nn.MultiheadAttention(16, 2, batch_first=True)
        self.classifier = nn.Conv2d(16, 9, 1)

    def forward(self, x):
        f = self.stem(x)
        b, c, h, w = f.shape
        t = f.flatten(2).transpose(1, 2)
        t = self.attention(t, t, t, need_weights=False)[0]
        out = self.classifier(t.transpose(1, 2).reshape(b, c, h, w))
        return nn.functional.interpolate(out, size=x.shape[2:], mode="bilinear", align_corners=False)


def tiny_attention():
    return TinyAttention()


class TinyViT(nn.Module):
    """Nine-class logits from a 12-layer transformers ViT (3 heads, random weights) through a 1×1 convolution over
    its patch tokens: a model with many layers for the page's layer navigator (transformers has no ViT head for
    segmentation). Any image size (position embeddings interpolated)."""

    def __init__(self):
        super().__init__()
        from transformers import ViTConfig, ViTModel

        torch.manual_seed(0)
        cfg = ViTConfig(image_size=64, patch_size=16, hidden_size=48, num_hidden_layers=12, num_attention_heads=3,
                        intermediate_size=96)
        self.vit = ViTModel._from_config(cfg, attn_implementation="eager", add_pooling_layer=False)
        self.classifier = nn.Conv2d(48, 9, 1)

    def forward(self, x):
        h, w = x.shape[2] // 16, x.shape[3] // 16
        tokens = self.vit(pixel_values=x, interpolate_pos_encoding=True).last_hidden_state[:, 1:]
        out = self.classifier(tokens.transpose(1, 2).reshape(x.shape[0], -1, h, w))
        return nn.functional.interpolate(out, size=x.shape[2:], mode="bilinear", align_corners=False)


def tiny_vit():
    return TinyViT().eval()
