"""Segmenter = shared backbone + a head hosting one context module + classifier. Only the context module
differs between heads, as in the papers' comparisons; `fcn` hosts none and is the baseline."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch.nn.functional as F
from torch import nn

from vizattn import schema
from vizattn.errors import VizattnError
from vizattn.data import CLASSES, PALETTE
from vizattn.model import Provenance, to_tensor
from vizattn.models.backbone import Backbone
from vizattn.modules import create_attention
from vizattn.modules.base import conv_bn_relu

# head name -> (attention module name or None, module options)
HEADS: dict[str, tuple[str | None, dict]] = {
    "fcn": (None, {}),
    "nonlocal": ("nonlocal", {}),
    "isa": ("isa", {"group": (8, 8)}),
    "criss_cross": ("criss_cross", {"recurrence": 2}),
    "gc": ("gc", {}),
    "lesa": ("lesa", {"heads": 4}),  # 16-wide heads at 64 channels: 8 heads of 8 train 3× slower on a CPU
    "psa_parallel": ("psa", {"mode": "parallel", "variant": "official"}),
    "psa_sequential": ("psa", {"mode": "sequential", "variant": "official"}),
    # the paper's softmax placement (the official code's differs; see the README's fidelity section)
    "psa_parallel_paper": ("psa", {"mode": "parallel", "variant": "paper"}),
    "psa_sequential_paper": ("psa", {"mode": "sequential", "variant": "paper"}),
    "ann": ("ann", {}),
    "danet": ("danet", {}),
}


@dataclass
class ModelConfig:
    head: str
    num_classes: int = 9
    widths: tuple[int, int, int] = (32, 64, 128)
    dilation: int = 2
    head_channels: int = 64
    module_options: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.head not in HEADS:
            raise VizattnError(f"Unknown head '{self.head}'; choose one of {', '.join(HEADS)}.")
        self.widths = tuple(self.widths)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def module_settings(self) -> dict:
        """The context module's options as built: the head's defaults with this config's overrides."""
        return {**HEADS[self.head][1], **self.module_options}


class ANNContext(nn.Module):
    """ANN's pair: AFNB fuses the low-level feature into the high-level one, then APNB refines it."""

    def __init__(self, channels: int, low_channels: int):
        super().__init__()
        self.afnb = create_attention("afnb", channels, low_channels=low_channels)
        self.apnb = create_attention("apnb", channels)

    def forward(self, x, low):
        return self.apnb(self.afnb(x, low))


class Head(nn.Module):
    def __init__(self, cfg: ModelConfig, in_channels: int, low_channels: int):
        super().__init__()
        ch = cfg.head_channels
        name = HEADS[cfg.head][0]
        self.reduce = conv_bn_relu(in_channels, ch, 3)
        if name == "ann":
            self.context = ANNContext(ch, low_channels)
        elif name is None:
            self.context = nn.Identity()
        else:
            self.context = create_attention(name, ch, **cfg.module_settings)
        self.project = conv_bn_relu(ch, ch, 3)
        self.classifier = nn.Sequential(nn.Dropout2d(0.1), nn.Conv2d(ch, cfg.num_classes, 1))

    def forward(self, low, high):
        x = self.reduce(high)
        x = self.context(x, low) if isinstance(self.context, ANNContext) else self.context(x)
        return self.classifier(self.project(x))


class Segmenter(nn.Module):
    """image B×3×H×W (normalised) -> logits B×K×H×W."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        # the interface of vizattn.model; zoo.load gives a loaded model its full provenance
        self.classes, self.palette = list(CLASSES), np.asarray(PALETTE, np.uint8)
        self.provenance = Provenance("built in Python", "vizattn", cfg.head, architecture=f"{cfg.head} head")
        self.backbone = Backbone(cfg.widths, cfg.dilation)
        self.head = Head(cfg, self.backbone.high_channels, self.backbone.low_channels)

    def forward(self, x):
        low, high = self.backbone(x)
        return F.interpolate(self.head(low, high), size=x.shape[2:], mode="bilinear", align_corners=False)

    def segment(self, image, progress=None):
        """1×K×H×W logits for one H×W×3 uint8 image (vizattn.model's interface)."""
        return self(to_tensor(image).to(next(self.parameters()).device))


# what a checkpoint's vizattn configuration may say: every field typed and bounded (see vizattn.schema)
CONFIG_BOUNDS = {
    "head": schema.choice(*HEADS), "num_classes": schema.integer(1, 4096), "widths": schema.integers(1, 1024, 3),
    "dilation": schema.integer(1, 16), "head_channels": schema.integer(1, 1024),
    "module_options": schema.Bound(lambda v: isinstance(v, dict), "a mapping of option names to values"),
}
_CH = schema.integer(1, 1024)
OPTION_BOUNDS = {
    None: {},
    "nonlocal": {"reduction": schema.integer(1, 64)},
    "isa": {"group": schema.integers(1, 64, 2), "key_channels": _CH, "value_channels": _CH, "value_bias": schema.FLAG},
    "criss_cross": {"recurrence": schema.integer(1, 8), "reduction": schema.integer(1, 64)},
    "gc": {"ratio": schema.number(1 / 1024, 4), "pooling": schema.choice("att", "avg"),
           "fusion": schema.subset("channel_add", "channel_mul")},
    "lesa": {"heads": schema.integer(1, 64), "shrink": schema.integer(1, 64), "position": schema.integers(1, 256, 2)},
    "psa": {"mode": schema.choice("parallel", "sequential"), "variant": schema.choice("official", "paper")},
    "ann": {},
    "danet": {"reduction": schema.integer(1, 64), "branch_convs": schema.FLAG, "out_channels": _CH},
}


def config_from_dict(raw, name: str) -> ModelConfig:
    """A ModelConfig from untrusted data (a checkpoint's metadata, a model card): every field and module option
    typed and bounded, unknown ones refused, one sentence for the first that is not."""
    if not isinstance(raw, dict) or "head" not in raw:
        raise VizattnError(f"'{name}' carries a vizattn configuration without a head; pick its head by hand.")
    schema.check(raw, CONFIG_BOUNDS, name, unknown_allowed=False)
    options = raw.get("module_options") or {}
    schema.check(options, OPTION_BOUNDS[HEADS[raw["head"]][0]], name, "module", unknown_allowed=False)
    return ModelConfig(**raw)


def build_model(cfg: ModelConfig | dict) -> Segmenter:
    return Segmenter(cfg if isinstance(cfg, ModelConfig) else ModelConfig(**cfg))
