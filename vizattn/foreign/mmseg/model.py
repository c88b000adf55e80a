"""MMSegModel: our ResNetV1c and one of the rebuilt decode heads, run as mmseg's test pipeline runs a model
(keep-ratio rescale, normalisation, whole or slide inference)."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vizattn.foreign.mmseg.config import MMSegConfig
from vizattn.foreign.mmseg.heads import HEADS
from vizattn.models.resnet import ResNetV1c


class MMSegModel(nn.Module):
    """image B×3×H×W (normalised as the checkpoint's config) -> logits B×K×H×W, as mmseg's encode_decode."""

    def __init__(self, cfg: MMSegConfig):
        super().__init__()
        self.config = cfg
        self.backbone = ResNetV1c(cfg.depth, cfg.stem_channels, cfg.base_channels)
        self.head = HEADS[cfg.head](cfg, self.backbone.stage_channels)
        self.card: dict = {}

    def forward(self, x: torch.Tensor, progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
        """`progress(done, 5)` after each backbone stage and the head (a forward takes tens of seconds on a CPU)."""
        stages = self.backbone(x, (lambda i: progress(i, 5)) if progress else None)
        logits = self.head(stages)
        if progress:
            progress(5, 5)
        return F.interpolate(logits, size=x.shape[2:], mode="bilinear", align_corners=self.config.align_corners)

    def fitted_state(self, state: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
        """mmseg's state dict under our names, checked against this model (which may live on the meta device):
        missing and unexpected keys and every shape mismatch (zero-element tensors included) in one sentence."""
        from vizattn.io import check_fits

        state = self.head.rename(state)
        # checkpoints from older torch versions carry no BN batch counters; inference never reads them
        state.update({k: torch.zeros((), dtype=torch.long) for k in self.state_dict()
                      if k.endswith("num_batches_tracked") and k not in state})
        check_fits(self, state, name)
        return state

    def largest_input(self) -> tuple[int, int]:
        """(h, w) of the largest input a forward is given: images enter at most MAX_IMAGE_SIDE px on a side and are
        rescaled, keeping their ratio, to fit the test scale (long, short), so no input exceeds short×long; slide
        crops are cut from such an input, and a capture runs one whole-input forward too."""
        from vizattn.io import MAX_IMAGE_SIDE

        if self.config.test_scale is None:
            return MAX_IMAGE_SIDE, MAX_IMAGE_SIDE
        return min(self.config.test_scale), max(self.config.test_scale)

    # -- inference as mmseg's test pipeline --
    def test_size(self, h: int, w: int) -> tuple[int, int]:
        """mmcv's keep-ratio rescale: the largest size within (long, short) limits."""
        if self.config.test_scale is None:
            return h, w
        long, short = max(self.config.test_scale), min(self.config.test_scale)
        factor = min(long / max(h, w), short / min(h, w))
        return int(h * factor + 0.5), int(w * factor + 0.5)

    def normalise(self, image: np.ndarray) -> torch.Tensor:
        """H×W×3 uint8 RGB -> 1×3×h×w float, resized to the test scale and normalised with the config's mean/std."""
        device = next(self.parameters()).device
        x = torch.from_numpy(np.ascontiguousarray(image)).to(device).permute(2, 0, 1)[None].float()
        size = self.test_size(*image.shape[:2])
        if size != tuple(image.shape[:2]):
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        mean = torch.tensor(self.config.mean, device=device).view(1, 3, 1, 1)
        std = torch.tensor(self.config.std, device=device).view(1, 3, 1, 1)
        return (x - mean) / std

    def infer(self, x: torch.Tensor, progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
        """Logits for a normalised input, in the config's test mode (whole, or slide with its crop and stride)."""
        if self.config.mode != "slide":
            return self(x, progress)
        (ch, cw), (sh, sw) = self.config.crop, self.config.stride
        b, _, h, w = x.shape
        rows, cols = max(h - ch + sh - 1, 0) // sh + 1, max(w - cw + sw - 1, 0) // sw + 1
        total = torch.zeros(b, self.config.num_classes, h, w, dtype=x.dtype, device=x.device)
        count = torch.zeros(1, 1, h, w, dtype=x.dtype, device=x.device)
        for i in range(rows):
            for j in range(cols):
                y1, x1 = i * sh, j * sw
                y2, x2 = min(y1 + ch, h), min(x1 + cw, w)
                y1, x1 = max(y2 - ch, 0), max(x2 - cw, 0)
                total[:, :, y1:y2, x1:x2] += self(x[:, :, y1:y2, x1:x2])
                count[:, :, y1:y2, x1:x2] += 1
                if progress:
                    progress(i * cols + j + 1, rows * cols)
        return total / count

    def segment(self, image: np.ndarray, progress=None) -> torch.Tensor:
        """1×K×H×W logits at the image's own size, as mmseg predicts them. In slide mode, while a capture is
        running, one more whole-image forward follows the crops, so the records hold attention over the whole
        image rather than over the last crop (the prediction is still the slide one)."""
        from vizattn.records import active_sessions

        x = self.normalise(image)
        logits = self.infer(x, progress)
        if self.config.mode == "slide" and any(active_sessions(m) for m in self.head.modules()):
            self(x)
        return F.interpolate(logits, size=image.shape[:2], mode="bilinear", align_corners=self.config.align_corners)
