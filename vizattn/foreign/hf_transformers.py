"""HuggingFace transformers: SegFormer (keys on the grid reduced by `sr_ratio`, per head), ViT and DINOv2
(patch grid; class and register tokens set aside), read through the generic observer whether the model runs
eager or SDPA attention; and a local model directory (config.json + model.safetensors) as a vizattn model."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vizattn.errors import VizattnError
from vizattn.model import Provenance, adopt
from vizattn.text import plain

# the attention modules across transformers versions (4.x: *SelfAttention inside *Attention; 5.x: *Attention)
ATTENTION_CLASSES = {"SegformerAttention", "SegformerEfficientSelfAttention", "ViTAttention", "ViTSelfAttention",
                     "Dinov2Attention", "Dinov2SelfAttention", "Dinov2WithRegistersAttention",
                     "Dinov2WithRegistersSelfAttention", "DeiTAttention", "DeiTSelfAttention"}
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def matches(module: nn.Module) -> bool:
    return type(module).__name__ in ATTENTION_CLASSES and type(module).__module__.startswith("transformers.")


def interpret(call, payload):
    return None  # the generic reading fits: height/width or the pixel grid give the grid, extra tokens found


def is_hf_directory(path) -> bool:
    p = Path(path)
    return p.is_dir() and (p / "config.json").is_file()


class HFSegmenter(nn.Module):
    """A transformers semantic-segmentation model with vizattn's `segment(image)`: resize to the model's
    training size, ImageNet normalisation, logits bilinearly back to the image."""

    def __init__(self, model: nn.Module, size: tuple[int, int], name: str):
        super().__init__()
        self.model, self.size = model, size
        labels = getattr(model.config, "id2label", None) or {}
        n = model.config.num_labels
        classes = [plain(labels.get(i, labels.get(str(i), f"class {i}")), 60) for i in range(n)]
        from vizattn.data.palettes import CITYSCAPES, CITYSCAPES_PALETTE, spread_palette

        palette = list(CITYSCAPES_PALETTE) if classes == list(CITYSCAPES) else spread_palette(n)
        self.card = {"name": name, "source": "transformers", "module": model.config.model_type,
                     "classes": classes, "palette": [list(p) for p in palette],
                     "classes_from": "the model's config (id2label)", "trained_on": "unknown (a transformers model)"}

    def forward(self, pixel_values):
        return self.model(pixel_values=pixel_values).logits

    def segment(self, image: np.ndarray, progress=None) -> torch.Tensor:
        device = next(self.parameters()).device
        x = torch.from_numpy(np.ascontiguousarray(image)).to(device).permute(2, 0, 1)[None].float() / 255
        x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
        mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
        x = (x - mean) / torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
        logits = self(x)
        if progress:
            progress(1, 1)
        return F.interpolate(logits, size=image.shape[:2], mode="bilinear", align_corners=False)


def load_directory(path, sha256: str | None = None) -> nn.Module:
    """A local transformers model directory, offline: weights only from model.safetensors (never a pickle),
    no remote code. Semantic-segmentation models get `segment`; other models are returned as they are."""
    path = Path(path)
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        raise VizattnError(f"'{path}/config.json' is not readable JSON; a transformers model directory needs one.") from None
    if not (path / "model.safetensors").is_file():
        raise VizattnError(f"'{path}' has no model.safetensors; vizattn loads transformers weights only from safetensors.")
    try:
        import transformers
    except ImportError:
        raise VizattnError("Opening a transformers model directory needs the transformers package "
                           "(pip install transformers).") from None
    archs = config.get("architectures") or []
    cls = next((getattr(transformers, a, None) for a in archs if getattr(transformers, a, None) is not None), None)
    if cls is None:
        cls = transformers.AutoModel
    try:
        model = cls.from_pretrained(str(path), local_files_only=True, use_safetensors=True, trust_remote_code=False)
    except Exception as err:  # transformers raises many types for a broken directory; all mean the same to a user
        raise VizattnError(f"'{path}' could not be opened as a transformers model ({type(err).__name__}: "
                           f"{str(err)[:200]}).") from None
    model.eval()
    provenance = Provenance("transformers folder", "transformers", path.name, sha256, "unknown (a transformers model)",
                            f"{model.config.model_type} ({type(model).__name__})", "the folder's config.json",
                            "the model's config (id2label)")
    if type(model).__name__.endswith("ForSemanticSegmentation"):
        seg = HFSegmenter(model, _input_size(path, config), path.name)
        return adopt(seg, provenance, seg.card["classes"], seg.card["palette"])
    return adopt(model, replace(provenance, classes_from="none (the model predicts no classes)"))


def _input_size(path: Path, config: dict) -> tuple[int, int]:
    """The size the model's image processor resizes to (preprocessor_config.json), else 512×512 (SegFormer's)."""
    try:
        size = json.loads((path / "preprocessor_config.json").read_text()).get("size")
    except (OSError, ValueError):
        size = config.get("image_size")
    if isinstance(size, dict) and "height" in size and "width" in size:
        return int(size["height"]), int(size["width"])
    if isinstance(size, int):
        return size, size
    return 512, 512
