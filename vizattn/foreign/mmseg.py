"""mmsegmentation checkpoints as vizattn models, in plain torch: no mmcv, no CUDA, no config file needed.

An mmseg R-50/101-D8 model with an NL, ISA, CCNet, GCNet, ANN, DANet or PSANet decode head is rebuilt from
our ResNetV1c and our attention modules, so its attention comes out as our records. The head type and its
hyper-parameters are read from the state dict's keys and shapes, refined by the checkpoint's `meta` where
present (config text parsed as data with `ast`, never executed). One table per head maps mmseg's parameter
names onto ours. The auxiliary head is not needed for inference: its keys are ignored, by name.
"""
from __future__ import annotations

import ast
import math
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vizattn import schema
from vizattn.errors import VizattnError
from vizattn.models.resnet import DEPTHS, ResNetV1c
from vizattn.modules import create_attention
from vizattn.modules.base import conv_bn_relu
from vizattn.text import plain

# mmseg head type -> a key only that head has
SIGNATURES = {
    "nl": "decode_head.nl_block.theta.conv.weight",
    "isa": "decode_head.global_relation.key_project.0.conv.weight",
    "cc": "decode_head.cca.query_conv.weight",
    "gc": "decode_head.gc_block.conv_mask.weight",
    "ann": "decode_head.fusion.stages.0.key_project.conv.weight",
    "da": "decode_head.pam.key_project.weight",
    "psa": "decode_head.attention.1.weight",
}
HEAD_NAMES = {"nl": "NLHead", "isa": "ISAHead", "cc": "CCHead", "gc": "GCHead", "ann": "ANNHead", "da": "DAHead",
              "psa": "PSAHead"}
# keys a checkpoint may carry that inference does not use (training-only outputs)
IGNORED_PREFIXES = ("auxiliary_head.", "decode_head.pam_conv_seg.", "decode_head.cam_conv_seg.",
                    "decode_head.loss_decode.", "data_preprocessor.")
# APNB shares one projection for queries and keys; mmseg's state dict lists it under both names
ALIASES = {"decode_head.context.stages.0.query_project.": "decode_head.context.stages.0.key_project."}
CITYSCAPES_MEAN, CITYSCAPES_STD = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)


@dataclass
class MMSegConfig:
    """What is needed to rebuild and run an mmseg checkpoint; every field is read from keys, shapes or meta."""

    head: str
    num_classes: int
    channels: int
    depth: int = 50
    stem_channels: int = 64
    base_channels: int = 64
    options: dict = field(default_factory=dict)
    mean: tuple = CITYSCAPES_MEAN
    std: tuple = CITYSCAPES_STD
    test_scale: tuple | None = (2048, 1024)  # (long, short) limits, keep ratio; None = the image's own size
    mode: str = "whole"
    crop: tuple = (512, 1024)  # (h, w)
    stride: tuple = (341, 683)
    align_corners: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def is_mmseg_state(state: dict) -> bool:
    return any(k.startswith("backbone.stem.") for k in state) and any(k.startswith("decode_head.") for k in state)


# --- the model -------------------------------------------------------------------------------------------------


class MMSegHead(nn.Module):
    """The decode heads, each laid out as mmseg's; the attention inside is always one of our modules."""

    def __init__(self, cfg: MMSegConfig, stage_channels: list[int]):
        super().__init__()
        self.layout, o = cfg.head, cfg.options
        cin, ch = stage_channels[-1], cfg.channels
        if self.layout in ("nl", "cc", "gc"):  # FCNHead: conv, block, conv, conv on cat(input, output)
            self.reduce = conv_bn_relu(cin, ch, 3)
            if self.layout == "nl":
                self.context = create_attention("nonlocal", ch, reduction=o.get("reduction", 2))
            elif self.layout == "cc":
                self.context = create_attention("criss_cross", ch, recurrence=o.get("recurrence", 2))
            else:
                self.context = create_attention("gc", ch, ratio=o.get("ratio", 0.25),
                                                fusion=tuple(o.get("fusion_types", ("channel_add",))))
            self.project = conv_bn_relu(ch, ch, 3)
            self.concat = conv_bn_relu(cin + ch, ch, 3)
        elif self.layout == "isa":
            self.reduce = conv_bn_relu(cin, ch, 3)
            self.context = create_attention("isa", ch, group=tuple(o.get("down_factor", (8, 8))),
                                            key_channels=o["isa_channels"], value_channels=ch)
        elif self.layout == "ann":
            low = stage_channels[-2]
            proj, scales = o["project_channels"], tuple(o.get("key_pool_scales", (1, 3, 6, 8)))
            self.fusion = create_attention("afnb", cin, low_channels=low, key_channels=proj, value_channels=proj,
                                           sizes=scales)
            self.bottleneck = conv_bn_relu(cin, ch, 3)
            self.context = create_attention("apnb", ch, key_channels=proj, value_channels=proj, sizes=scales)
        elif self.layout == "da":
            self.context = create_attention("danet", cin, reduction=ch // o["pam_channels"], branch_convs=True,
                                            out_channels=ch)
        elif self.layout == "psa":
            self.context = create_attention("psanet", cin, inner=ch, mask_size=tuple(o["mask_size"]),
                                            psa_type=o.get("psa_type", "bi-direction"),
                                            shrink_factor=o.get("shrink_factor", 2),
                                            normalization_factor=o.get("normalization_factor", 1.0))
            self.bottleneck = conv_bn_relu(2 * cin, ch, 3)
        self.classifier = nn.Sequential(nn.Dropout2d(0.1), nn.Conv2d(ch, cfg.num_classes, 1))

    def forward(self, stages: list[torch.Tensor]) -> torch.Tensor:
        x = stages[-1]
        if self.layout in ("nl", "cc", "gc"):
            out = self.concat(torch.cat([x, self.project(self.context(self.reduce(x)))], dim=1))
        elif self.layout == "isa":
            out = self.context(self.reduce(x))
        elif self.layout == "ann":
            out = self.context(self.bottleneck(self.fusion(x, stages[-2])))
        elif self.layout == "da":
            out = self.context(x)
        else:
            out = self.bottleneck(torch.cat([x, self.context(x)], dim=1))
        return self.classifier(out)


def _convmodule(theirs: str, ours: str) -> list[tuple[str, str]]:
    """mmcv's ConvModule (conv, bn) against our conv-BN-ReLU Sequential (0, 1)."""
    return [(f"{theirs}.conv.", f"{ours}.0."), (f"{theirs}.bn.", f"{ours}.1.")]


def name_table(head: str) -> list[tuple[str, str]]:
    """(mmseg prefix, our prefix) pairs for one head; the backbone's names are the same on both sides."""
    d, h = "decode_head.", "head."
    table = [("backbone.", "backbone."), (f"{d}conv_seg.", f"{h}classifier.1.")]
    if head in ("nl", "cc", "gc"):
        table += _convmodule(f"{d}convs.0", f"{h}reduce") + _convmodule(f"{d}convs.1", f"{h}project")
        table += _convmodule(f"{d}conv_cat", f"{h}concat")
    if head == "nl":
        table += [(f"{d}nl_block.{n}.conv.", f"{h}context.{n}.") for n in ("theta", "phi", "g")]
        table += _convmodule(f"{d}nl_block.conv_out", f"{h}context.out")
    elif head == "cc":
        table += [(f"{d}cca.{n}_conv.", f"{h}context.{n}.") for n in ("query", "key", "value")]
        table += [(f"{d}cca.gamma.scale", f"{h}context.gamma")]
    elif head == "gc":
        table += [(f"{d}gc_block.conv_mask.", f"{h}context.mask."), (f"{d}gc_block.channel_add_conv.", f"{h}context.add."),
                  (f"{d}gc_block.channel_mul_conv.", f"{h}context.mul.")]
    elif head == "isa":
        table += _convmodule(f"{d}in_conv", f"{h}reduce") + _convmodule(f"{d}out_conv", f"{h}context.fuse")
        for theirs, ours in (("global_relation", "long_range"), ("local_relation", "short_range")):
            for proj in ("query", "key"):
                for i in (0, 1):
                    table += _convmodule(f"{d}{theirs}.{proj}_project.{i}", f"{h}context.{ours}.{proj}.{i}")
            table += [(f"{d}{theirs}.value_project.", f"{h}context.{ours}.value.")]
            table += _convmodule(f"{d}{theirs}.output_project", f"{h}context.{ours}.out")
    elif head == "ann":
        for theirs, ours in (("fusion", "fusion"), ("context", "context")):
            s = f"{d}{theirs}.stages.0."
            table += _convmodule(f"{s}key_project", f"{h}{ours}.attention.key")
            table += [(f"{s}value_project.", f"{h}{ours}.attention.value."), (f"{s}out_project.", f"{h}{ours}.attention.out.")]
            table += _convmodule(f"{d}{theirs}.bottleneck", f"{h}{ours}.fuse")
        table += _convmodule(f"{d}fusion.stages.0.query_project", f"{h}fusion.attention.query")
        table += _convmodule(f"{d}bottleneck", f"{h}bottleneck")
    elif head == "da":
        table += [(f"{d}pam.{n}_project.", f"{h}context.{n}.") for n in ("query", "key", "value")]
        table += [(f"{d}pam.gamma.scale", f"{h}context.gamma_position"), (f"{d}cam.gamma.scale", f"{h}context.gamma_channel")]
        for theirs, ours in (("pam_in_conv", "position_in"), ("pam_out_conv", "position_out"),
                             ("cam_in_conv", "channel_in"), ("cam_out_conv", "channel_out")):
            table += _convmodule(f"{d}{theirs}", f"{h}context.{ours}")
    elif head == "psa":
        for theirs, ours in (("", "collect"), ("_p", "distribute")):
            table += _convmodule(f"{d}reduce{theirs}", f"{h}context.reduce.{ours}")
            table += _convmodule(f"{d}attention{theirs}.0", f"{h}context.attention.{ours}.0")
            table += [(f"{d}attention{theirs}.1.", f"{h}context.attention.{ours}.1.")]
        table += _convmodule(f"{d}proj", f"{h}context.proj") + _convmodule(f"{d}bottleneck", f"{h}bottleneck")
    return table


def rename(state: dict[str, torch.Tensor], head: str) -> dict[str, torch.Tensor]:
    """mmseg names -> ours by the head's table (longest prefix wins); training-only keys dropped by name.
    A key the table does not know is kept as it is, so the fit check names it."""
    table = sorted(name_table(head), key=lambda p: -len(p[0]))
    out = {}
    for key, value in state.items():
        if key.startswith(IGNORED_PREFIXES):
            continue
        alias = next((a for a in ALIASES if key.startswith(a)), None)
        if alias:
            twin = state.get(ALIASES[alias] + key[len(alias):])
            if twin is None or twin.shape != value.shape or not torch.equal(twin, value):
                raise VizattnError(f"'{key}' should repeat APNB's shared key projection but differs from it; "
                                   "the checkpoint is inconsistent.")
            continue
        for theirs, ours in table:
            if key.startswith(theirs):
                key = ours + key[len(theirs):]
                break
        out[key] = value.reshape(1) if key.endswith((".gamma", "gamma_position", "gamma_channel")) else value
    return out


class MMSegModel(nn.Module):
    """image B×3×H×W (normalised as the checkpoint's config) -> logits B×K×H×W, as mmseg's encode_decode."""

    def __init__(self, cfg: MMSegConfig):
        super().__init__()
        self.config = cfg
        self.backbone = ResNetV1c(cfg.depth, cfg.stem_channels, cfg.base_channels)
        self.head = MMSegHead(cfg, self.backbone.stage_channels)
        self.card: dict = {}

    def forward(self, x: torch.Tensor, progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
        """`progress(done, 5)` after each backbone stage and the head (a forward takes tens of seconds on a CPU)."""
        stages = self.backbone(x, (lambda i: progress(i, 5)) if progress else None)
        logits = self.head(stages)
        if progress:
            progress(5, 5)
        return F.interpolate(logits, size=x.shape[2:], mode="bilinear", align_corners=self.config.align_corners)

    def load_mmseg_state(self, state: dict[str, torch.Tensor], name: str) -> "MMSegModel":
        from vizattn.io import check_fits

        state = rename(state, self.config.head)
        # checkpoints from older torch versions carry no BN batch counters; inference never reads them
        state.update({k: v for k, v in self.state_dict().items() if k.endswith("num_batches_tracked") and k not in state})
        check_fits(self, state, name)
        self.load_state_dict(state, strict=True)
        return self

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
        from vizattn.capture import active_sessions

        x = self.normalise(image)
        logits = self.infer(x, progress)
        if self.config.mode == "slide" and any(active_sessions(m) for m in self.head.modules()):
            self(x)
        return F.interpolate(logits, size=image.shape[:2], mode="bilinear", align_corners=self.config.align_corners)


# --- reading a checkpoint ---------------------------------------------------------------------------------------


def _shape(state, key, dim=0) -> int:
    if key not in state:
        raise VizattnError(f"This mmseg checkpoint lacks '{key}'; it does not look like a supported model.")
    return int(state[key].shape[dim])


def config_from_state(state: dict[str, torch.Tensor], meta: dict, name: str) -> MMSegConfig:
    heads = [h for h, key in SIGNATURES.items() if key in state]
    if len(heads) != 1:
        raise VizattnError(
            f"'{name}' is an mmsegmentation checkpoint, but not of a head vizattn reads (NL, ISA, CCNet, GCNet, ANN, "
            "DANet, PSANet with a ResNetV1c backbone); only these can be opened."
        )
    head = heads[0]
    blocks = 1 + max((int(k.split(".")[2]) for k in state if k.startswith("backbone.layer3.")), default=-1)
    depth = next((d for d, b in DEPTHS.items() if b[2] == blocks), None)
    if depth is None or "backbone.stem.0.weight" not in state:
        raise VizattnError(f"'{name}' has a backbone vizattn does not rebuild; only ResNetV1c-50/101 (R-50-D8, "
                           "R-101-D8) is supported.")
    cls = state["decode_head.conv_seg.weight"] if "decode_head.conv_seg.weight" in state else None
    if cls is None:
        raise VizattnError(f"'{name}' has no decode_head.conv_seg; it is not a complete mmseg segmentor.")
    cfg = MMSegConfig(head=head, num_classes=int(cls.shape[0]), channels=int(cls.shape[1]), depth=depth,
                      stem_channels=_shape(state, "backbone.stem.6.weight"),
                      base_channels=_shape(state, "backbone.layer1.0.conv1.weight"))
    d, o = "decode_head.", cfg.options
    if head == "nl":
        o["reduction"] = cfg.channels // _shape(state, f"{d}nl_block.theta.conv.weight")
    elif head == "isa":
        o["isa_channels"] = _shape(state, f"{d}global_relation.key_project.0.conv.weight")
    elif head == "gc":
        o["ratio"] = _shape(state, f"{d}gc_block.channel_add_conv.0.weight" if f"{d}gc_block.channel_add_conv.0.weight" in state
                            else f"{d}gc_block.channel_mul_conv.0.weight") / cfg.channels
        o["fusion_types"] = [t for t in ("channel_add", "channel_mul") if f"{d}gc_block.{t}_conv.0.weight" in state]
    elif head == "ann":
        if any(k.startswith(f"{d}fusion.stages.1.") for k in state):
            raise VizattnError(f"'{name}' uses several ANN query scales; vizattn reads query_scales=(1,) only.")
        o["project_channels"] = _shape(state, f"{d}fusion.stages.0.key_project.conv.weight")
    elif head == "da":
        o["pam_channels"] = _shape(state, f"{d}pam.key_project.weight")
    elif head == "psa":
        m = _shape(state, f"{d}attention.1.weight")
        side = math.isqrt(m)
        o["mask_size"] = [side, side] if side * side == m else None
        o["psa_type"] = "bi-direction" if f"{d}attention_p.1.weight" in state else "collect"
    apply_meta_config(cfg, meta, name)
    if head == "psa" and not o.get("mask_size"):
        raise VizattnError(f"'{name}' has a non-square PSANet mask and no config saying its size; it cannot be read.")
    return cfg


def apply_meta_config(cfg: MMSegConfig, meta: dict, name: str) -> None:
    """Refine `cfg` from the config text in `meta` (0.x: meta['config']; 1.x: meta['cfg']), read as data."""
    text = meta.get("config") or meta.get("cfg")
    if not isinstance(text, str) or not text.strip():
        return
    values = parse_config(text, name)
    model, o = values.get("model") or {}, cfg.options
    head = model.get("decode_head") or {}
    if isinstance(head, list):  # cascade heads are not among those read here
        head = head[0] if head else {}
    if head.get("type") not in (None, HEAD_NAMES[cfg.head]):
        raise VizattnError(f"'{name}' says its head is {head.get('type')}, but its weights are those of a "
                           f"{HEAD_NAMES[cfg.head]}; the checkpoint is inconsistent.")
    given = {key: head[key] for key in BOUNDS if key in head}
    schema.check(given, BOUNDS, name, "config")
    o.update(given)
    if "mask_size" in head:
        m = tuple(head["mask_size"]) if isinstance(head["mask_size"], (list, tuple)) else ()
        have = o.get("mask_size")
        if len(m) != 2 or (have and tuple(have) != m) or not all(isinstance(v, int) and 1 <= v <= 255 for v in m):
            raise VizattnError(f"'{name}' has a config whose PSANet mask_size {head['mask_size']!r} does not match its "
                               "weights; it was not loaded.")
        o["mask_size"] = list(m)
    if head.get("use_scale") is False:
        raise VizattnError(f"'{name}' uses a non-local block without 1/√d scaling (use_scale=False), which vizattn "
                           "does not rebuild.")
    if head.get("compact"):
        raise VizattnError(f"'{name}' uses PSANet's compact mode, which vizattn does not read.")
    cfg.align_corners = bool(head.get("align_corners", cfg.align_corners))
    backbone = model.get("backbone") or {}
    if tuple(backbone.get("dilations", (1, 1, 2, 4))) != (1, 1, 2, 4) or tuple(backbone.get("strides", (1, 2, 1, 1))) != (1, 2, 1, 1):
        raise VizattnError(f"'{name}' uses a backbone stride/dilation other than D8; vizattn reads the D8 models only.")
    norm = model.get("data_preprocessor") or values.get("data_preprocessor") or values.get("img_norm_cfg") or {}
    if "mean" in norm and "std" in norm:
        cfg.mean, cfg.std = tuple(map(float, norm["mean"])), tuple(map(float, norm["std"]))
    test = model.get("test_cfg") or {}
    if test.get("mode") in ("whole", "slide"):
        cfg.mode = test["mode"]
    if cfg.mode == "slide":
        crop, stride = test.get("crop_size", cfg.crop), test.get("stride", cfg.stride)
        if not (SIZE.check(crop) and SIZE.check(stride)):
            raise VizattnError(f"'{name}' has a slide-mode crop {crop!r} or stride {stride!r} outside 8..4096 px; "
                               "it was not loaded.")
        cfg.crop, cfg.stride = tuple(crop), tuple(stride)
    scale = _test_scale(values)
    if scale and SIZE.check(scale):
        cfg.test_scale = scale


def _test_scale(values: dict) -> tuple | None:
    """The Resize scale of the test pipeline (1.x: test_pipeline; 0.x: data.test.pipeline / MultiScaleFlipAug)."""
    pipelines = [values.get("test_pipeline")]
    data = values.get("data") or {}
    if isinstance(data, dict) and isinstance(data.get("test"), dict):
        pipelines.append(data["test"].get("pipeline"))
    for pipeline in pipelines:
        for step in pipeline or []:
            if not isinstance(step, dict):
                continue
            scale = step.get("scale") or step.get("img_scale")
            if (step.get("type") in ("Resize", "MultiScaleFlipAug") and isinstance(scale, (list, tuple))
                    and len(scale) == 2 and all(isinstance(s, int) for s in scale)):
                return tuple(scale)
    return None


MAX_CONFIG_CHARS = 1_000_000
# every hyper-parameter read from a checkpoint's config is untrusted: types and bounds before anything is built
BOUNDS = {
    "recurrence": schema.integer(1, 8), "down_factor": schema.integers(1, 64, 2),
    "key_pool_scales": schema.integers(1, 16), "shrink_factor": schema.integer(1, 8),
    "normalization_factor": schema.number(1e-6, 1e9),
    "psa_type": schema.choice("collect", "distribute", "bi-direction"), "use_scale": schema.FLAG,
}
SIZE = schema.integers(8, 4096, 2)


def parse_config(text: str, name: str) -> dict:
    """Top-level `name = literal` assignments of an mmseg config text, evaluated as data only: dict(...) calls,
    dict/list/tuple literals, numbers, strings, booleans, None and names bound earlier. Anything else is None."""
    if len(text) > MAX_CONFIG_CHARS:
        raise VizattnError(f"'{name}' carries a config text over {MAX_CONFIG_CHARS:,} characters; it was not read.")
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return {}  # the config is a convenience; keys and shapes suffice
    env: dict = {}

    def value(node, depth=0):
        if depth > 50:
            return None
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [value(e, depth + 1) for e in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.Dict):
            return {value(k, depth + 1): value(v, depth + 1) for k, v in zip(node.keys, node.values) if k is not None}
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict":
            return {kw.arg: value(kw.value, depth + 1) for kw in node.keywords if kw.arg}
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            v = value(node.operand, depth + 1)
            return -v if isinstance(v, (int, float)) else None
        if isinstance(node, ast.Name):
            v = env.get(node.id)
            return v if isinstance(v, (int, float, str, bool, tuple, list, dict)) or v is None else None
        return None

    try:
        for stmt in tree.body:
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                env[stmt.targets[0].id] = value(stmt.value)
    except RecursionError:
        return {}
    return env


# --- classes ----------------------------------------------------------------------------------------------------

CITYSCAPES = ("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
              "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle")
CITYSCAPES_PALETTE = ((128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153), (153, 153, 153),
                      (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60),
                      (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32))
VOC = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
       "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor")


def voc_palette(n: int) -> list[tuple[int, int, int]]:
    """The PASCAL VOC colour map (bit-interleaved label index)."""
    out = []
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        out.append((r, g, b))
    return out


def spread_palette(n: int) -> list[tuple[int, int, int]]:
    """n distinct colours for classes without a palette: golden-angle hues at two lightnesses."""
    import colorsys

    return [tuple(int(255 * v) for v in colorsys.hls_to_rgb((i * 0.618034) % 1.0, 0.45 + 0.2 * (i % 2), 0.75))
            for i in range(n)]


def classes_and_palette(meta: dict, num_classes: int) -> tuple[list[str], list[tuple], str]:
    """(class names, palette, where they came from): the checkpoint's own (1.x dataset_meta, 0.x CLASSES/PALETTE),
    else the usual data set with that many classes, else numbered classes."""
    dm = meta.get("dataset_meta") if isinstance(meta.get("dataset_meta"), dict) else {}
    names = dm.get("classes") or meta.get("CLASSES")
    palette = dm.get("palette") or meta.get("PALETTE")
    if isinstance(names, (list, tuple)) and len(names) == num_classes and all(isinstance(c, str) for c in names):
        ok = (isinstance(palette, (list, tuple)) and len(palette) == num_classes
              and all(isinstance(p, (list, tuple)) and len(p) == 3 for p in palette)
              and all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 255
                      for p in palette for v in p))  # NaN fails the range too
        pal = [tuple(int(v) for v in p) for p in palette] if ok else spread_palette(num_classes)
        return [plain(c, 60) for c in names], pal, "the checkpoint"
    if num_classes == 19:
        return list(CITYSCAPES), list(CITYSCAPES_PALETTE), "Cityscapes (assumed from 19 classes; the checkpoint names none)"
    if num_classes == 21:
        return list(VOC), voc_palette(21), "PASCAL VOC (assumed from 21 classes; the checkpoint names none)"
    if num_classes == 150:
        return ([f"ADE20K class {i}" for i in range(150)], spread_palette(150),
                "ADE20K (assumed from 150 classes; the checkpoint names none, so classes are numbered)")
    return [f"class {i}" for i in range(num_classes)], spread_palette(num_classes), "numbered (the checkpoint names none)"


def from_checkpoint(state: dict[str, torch.Tensor], meta: dict, name: str) -> MMSegModel:
    if all(k.startswith("module.") for k in state):  # saved from DistributedDataParallel
        state = {k[len("module."):]: v for k, v in state.items()}
    cfg = config_from_state(state, meta, name)
    model = MMSegModel(cfg).load_mmseg_state(state, name)
    classes, palette, source = classes_and_palette(meta, cfg.num_classes)
    version = meta.get("mmseg_version") or "unknown"
    model.card = {"name": name, "module": {"nl": "nonlocal", "isa": "isa", "cc": "criss_cross", "gc": "gc",
                                           "ann": "afnb + apnb", "da": "danet", "psa": "psanet"}[cfg.head],
                  "source": "mmsegmentation", "mmseg_head": HEAD_NAMES[cfg.head], "backbone": f"ResNetV1c-{cfg.depth}-D8",
                  "mmseg_version": str(version), "classes": classes, "palette": [list(p) for p in palette],
                  "classes_from": source, "config": cfg.to_dict(), "trained_on": "unknown (an mmseg checkpoint)"}
    if torch.cuda.is_available():  # tens of seconds per forward on a CPU; records and maps come back to the CPU
        model = model.cuda()
    return model.eval()
