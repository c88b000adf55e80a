"""MMSegConfig, read from a checkpoint's keys and shapes (config_from_state), refined by the config text in its
meta, parsed as data with `ast` and never executed, every value checked against bounds before use."""
from __future__ import annotations

import ast
from dataclasses import asdict, dataclass, field

import torch

from vizattn import schema
from vizattn.errors import VizattnError
from vizattn.foreign.mmseg.base import shape
from vizattn.foreign.mmseg.heads import HEADS
from vizattn.models.resnet import DEPTHS

CITYSCAPES_MEAN, CITYSCAPES_STD = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)
# mmseg's shipped configs print to about 7.5 kB. Parsing costs a few µs a character whatever the text (a 1 MB one
# held a session for 2 s); 64 kB, eight times the shipped size, costs a sixteenth of that at worst
MAX_CONFIG_CHARS = 64_000
# every hyper-parameter read from a checkpoint's config is untrusted: types and bounds before anything is built
BOUNDS = {
    "recurrence": schema.integer(1, 8), "down_factor": schema.integers(1, 64, 2),
    "key_pool_scales": schema.integers(1, 16), "shrink_factor": schema.integer(1, 8),
    "normalization_factor": schema.number(1e-6, 1e9),
    "psa_type": schema.choice("collect", "distribute", "bi-direction"), "use_scale": schema.FLAG,
}
SIZE = schema.integers(8, 4096, 2)
# a test scale's area: mmseg's largest shipped one (HRF, 3504×2336) fits; a larger one only enlarges an image of at
# most 1024 px, at the cost of memory in every layer
MAX_TEST_PIXELS = 4096 * 2048
# what the weights' shapes say, bounded before anything is built (the widths of mmseg's R-50/101-D8 models are
# 64, 64, 512; a file declares any shape at no cost with zero-element tensors)
STRUCTURE = {
    "num_classes": schema.integer(1, 1024), "channels": schema.integer(1, 2048),
    "stem_channels": schema.integer(2, 256), "base_channels": schema.integer(1, 128),
}
WEIGHT_OPTIONS = {
    "reduction": schema.integer(1, 2048), "isa_channels": schema.integer(1, 2048),
    "project_channels": schema.integer(1, 2048), "pam_channels": schema.integer(1, 2048),
    "ratio": schema.number(1 / 2048, 16), "mask_size": schema.integers(1, 255, 2),
}
NORM = {"mean": schema.numbers(-1e4, 1e4, 3), "std": schema.numbers(1e-6, 1e4, 3)}


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


def config_from_state(state: dict[str, torch.Tensor], meta: dict, name: str) -> MMSegConfig:
    heads = [h for h, kind in HEADS.items() if kind.signature in state]
    if len(heads) != 1:
        raise VizattnError(
            f"'{name}' is an mmsegmentation checkpoint, but not of a head vizattn reads (NL, ISA, CCNet, GCNet, ANN, "
            "DANet, PSANet with a ResNetV1c backbone); only these can be opened."
        )
    head = heads[0]
    indices = {k.split(".")[2] for k in state if k.startswith("backbone.layer3.")}
    odd = sorted(i for i in indices if not (i.isdigit() and len(i) <= 4))
    if odd:
        raise VizattnError(f"'{name}' has a key 'backbone.layer3.{odd[0][:20]}…' that names no ResNet block; the "
                           "checkpoint is damaged or hand-made, so it was not loaded.")
    blocks = 1 + max(map(int, indices), default=-1)
    depth = next((d for d, b in DEPTHS.items() if b[2] == blocks), None)
    if depth is None or "backbone.stem.0.weight" not in state:
        raise VizattnError(f"'{name}' has a backbone vizattn does not rebuild; only ResNetV1c-50/101 (R-50-D8, "
                           "R-101-D8) is supported.")
    cls = state["decode_head.conv_seg.weight"] if "decode_head.conv_seg.weight" in state else None
    if cls is None:
        raise VizattnError(f"'{name}' has no decode_head.conv_seg; it is not a complete mmseg segmentor.")
    if cls.dim() != 4:
        raise VizattnError(f"'{name}' has a decode_head.conv_seg of shape {tuple(cls.shape)}, not the 4-D weight of "
                           "a 1×1 convolution; the checkpoint is damaged or hand-made, so it was not loaded.")
    structure = {"num_classes": int(cls.shape[0]), "channels": int(cls.shape[1]),
                 "stem_channels": shape(state, "backbone.stem.6.weight", name=name),
                 "base_channels": shape(state, "backbone.layer1.0.conv1.weight", name=name)}
    schema.check(structure, STRUCTURE, name, "structure (read from its weights)")
    cfg = MMSegConfig(head=head, depth=depth, **structure)
    options = HEADS[head].options(state, cfg.channels, name)
    schema.check({k: v for k, v in options.items() if v is not None}, WEIGHT_OPTIONS, name,
                 "structure (read from its weights)")
    cfg.options.update(options)
    apply_meta_config(cfg, meta, name)
    HEADS[head].check(cfg.options, name)
    return cfg


def _mapping(value, what: str, name: str) -> dict:
    """A config entry that must be a dict (absent: empty), or one sentence."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise VizattnError(f"'{name}' has a config whose {what} is {type(value).__name__} {_shown(value)}, where mmseg "
                           "writes a dict; it was not loaded.")
    return value


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def apply_meta_config(cfg: MMSegConfig, meta: dict, name: str) -> None:
    """Refine `cfg` from the config text in `meta` (0.x: meta['config']; 1.x: meta['cfg']), read as data."""
    text = meta.get("config") or meta.get("cfg")
    if not isinstance(text, str) or not text.strip():
        return
    values = parse_config(text, name)
    model, o = _mapping(values.get("model"), "model", name), cfg.options
    head = model.get("decode_head")
    if isinstance(head, list):  # cascade heads are not among those read here
        head = head[0] if head else {}
    head = _mapping(head, "decode_head", name)
    ours = HEADS[cfg.head].mmseg_name
    if head.get("type") not in (None, ours):
        raise VizattnError(f"'{name}' says its head is {head.get('type')}, but its weights are those of a "
                           f"{ours}; the checkpoint is inconsistent.")
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
    schema.check({k: head[k] for k in ("align_corners",) if k in head}, {"align_corners": schema.FLAG}, name, "config")
    cfg.align_corners = head.get("align_corners", cfg.align_corners)
    backbone = _mapping(model.get("backbone"), "backbone", name)
    for key, d8 in (("dilations", (1, 1, 2, 4)), ("strides", (1, 2, 1, 1))):
        given = backbone.get(key, d8)
        if not isinstance(given, (list, tuple)) or tuple(given) != d8:
            raise VizattnError(f"'{name}' uses a backbone stride/dilation other than D8; vizattn reads the D8 models "
                               "only.")
    norm = model.get("data_preprocessor") or values.get("data_preprocessor") or values.get("img_norm_cfg")
    norm = _mapping(norm, "data_preprocessor", name)
    if "mean" in norm and "std" in norm:
        schema.check({k: norm[k] for k in NORM}, NORM, name, "config")
        cfg.mean, cfg.std = tuple(map(float, norm["mean"])), tuple(map(float, norm["std"]))
    test = _mapping(model.get("test_cfg"), "test_cfg", name)
    if isinstance(test.get("mode"), str) and test["mode"] in ("whole", "slide"):
        cfg.mode = test["mode"]
    if cfg.mode == "slide":
        crop, stride = test.get("crop_size", cfg.crop), test.get("stride", cfg.stride)
        if not (SIZE.check(crop) and SIZE.check(stride)):
            raise VizattnError(f"'{name}' has a slide-mode crop {crop!r} or stride {stride!r} outside 8..4096 px; "
                               "it was not loaded.")
        cfg.crop, cfg.stride = tuple(crop), tuple(stride)
    scale = _test_scale(values)
    if scale:
        if not SIZE.check(scale) or scale[0] * scale[1] > MAX_TEST_PIXELS:
            raise VizattnError(f"'{name}' has a test scale {scale!r} beyond what vizattn runs (each side 8..4096 px, "
                               f"at most {MAX_TEST_PIXELS:,} pixels); it was not loaded.")
        cfg.test_scale = scale


def _test_scale(values: dict) -> tuple | None:
    """The Resize scale of the test pipeline (1.x: test_pipeline; 0.x: data.test.pipeline / MultiScaleFlipAug)."""
    pipelines = [values.get("test_pipeline")]
    data = values.get("data") or {}
    if isinstance(data, dict) and isinstance(data.get("test"), dict):
        pipelines.append(data["test"].get("pipeline"))
    for pipeline in pipelines:
        for step in pipeline if isinstance(pipeline, (list, tuple)) else []:
            if not isinstance(step, dict):
                continue
            scale = step.get("scale") or step.get("img_scale")
            if (step.get("type") in ("Resize", "MultiScaleFlipAug") and isinstance(scale, (list, tuple))
                    and len(scale) == 2 and all(isinstance(s, int) for s in scale)):
                return tuple(scale)
    return None


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
            keys = [value(k, depth + 1) for k in node.keys if k is not None]
            if not all(_hashable(k) for k in keys):  # {[1]: 2}: no Python (and no mmseg) could run this config
                raise VizattnError(f"'{name}' carries a config text with a dict keyed by a list or dict, which no "
                                   "mmseg config holds; it was not loaded.")
            return dict(zip(keys, (value(v, depth + 1) for k, v in zip(node.keys, node.values) if k is not None)))
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


def _hashable(key) -> bool:
    try:
        hash(key)
    except TypeError:
        return False
    return True
