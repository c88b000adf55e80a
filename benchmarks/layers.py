"""`vizattn bench layers`: what following one query across layers costs, beside the plain forward — attention
rollout (read from a capture's records) and gradient-weighted relevance (a forward and a backward of its own),
for SegFormer-B0 (transformers' default SegformerConfig, 150 classes) at 512×512 and a ViT-B/16-sized encoder
(ViTConfig's defaults: 12 layers, 12 heads, width 768) with a 1×1-conv pixel head at 224×224, random weights,
eager and SDPA attention. Time is the median of the repeats; memory is the extra peak over the timed runs, with
freed heap handed back to the system first (malloc_trim), so one step's peak is not hidden by an earlier one's."""
from __future__ import annotations

import ctypes
import gc

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.measure import measure
from vizattn.analysis.relevance import relevance
from vizattn.analysis.rollout import rollout
from vizattn.capture import capture

HEADER = ["model", "input", "attention", "step", "ms", "extra peak MiB"]


class PixelViT(nn.Module):
    """A ViT encoder with a 1×1-conv head on its patch tokens, logits upsampled to the image: a pixel target."""

    def __init__(self, impl: str, classes: int = 21):
        super().__init__()
        from transformers import ViTConfig, ViTModel

        self.vit = ViTModel._from_config(ViTConfig(), attn_implementation=impl, add_pooling_layer=False)
        self.head = nn.Conv2d(self.vit.config.hidden_size, classes, 1)
        self.patch = self.vit.config.patch_size

    def forward(self, x):
        b, _, h, w = x.shape
        tokens = self.vit(pixel_values=x).last_hidden_state[:, 1:]
        grid = tokens.transpose(1, 2).reshape(b, -1, h // self.patch, w // self.patch)
        return F.interpolate(self.head(grid), size=(h, w), mode="bilinear", align_corners=False)


def _segformer(impl: str) -> nn.Module:
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    return SegformerForSemanticSegmentation._from_config(SegformerConfig(), attn_implementation=impl).eval()


def _trim() -> None:
    """Return freed heap to the system: RSS-based peaks only see growth above what the process already holds."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        pass


MODELS = [("SegFormer-B0", _segformer, 512), ("ViT-B/16 + 1×1 head", lambda impl: PixelViT(impl).eval(), 224)]


def run(repeats: int = 2, models=MODELS, impls=("sdpa", "eager")) -> list[list]:
    rows = []
    dev = torch.device("cpu")
    for label, build, size in models:
        for impl in impls:
            torch.manual_seed(0)
            model = build(impl)
            x = torch.randn(1, 3, size, size)
            y, px = size // 3, 2 * size // 3
            held = {}

            def captured():
                with capture(model) as cap:
                    model(x)
                held["cap"] = cap

            steps = [("forward", lambda: model(x)), ("forward with capture", captured),
                     ("rollout (from the capture)", lambda: rollout(held["cap"], y, px, shape=(size, size))),
                     ("relevance (forward + backward)", lambda: relevance(model, x, y, px))]
            for step, fn in steps:
                _trim()
                ms, _, mib = measure(fn, dev, 1, repeats)
                rows.append([label, f"{size}×{size}", impl, step, ms, mib])
    return rows


if __name__ == "__main__":  # pragma: no cover
    from benchmarks.measure import markdown_table

    print(markdown_table(HEADER, run()))
