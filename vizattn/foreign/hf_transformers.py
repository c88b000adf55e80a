"""HuggingFace transformers: SegFormer (keys on the grid reduced by `sr_ratio`, per head), ViT and DINOv2
(patch grid; class and register tokens set aside), read through the generic observer whether the model runs
eager or SDPA attention; and a local model directory (config.json + model.safetensors) as a vizattn model."""
from __future__ import annotations

import re
import warnings
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vizattn import schema
from vizattn.errors import VizattnError
from vizattn.io import read_json_object
from vizattn.model import Provenance, adopt
from vizattn.text import plain

# the attention modules across transformers versions (4.x: *SelfAttention inside *Attention; 5.x: *Attention)
ATTENTION_CLASSES = {"SegformerAttention", "SegformerEfficientSelfAttention", "ViTAttention", "ViTSelfAttention",
                     "Dinov2Attention", "Dinov2SelfAttention", "Dinov2WithRegistersAttention",
                     "Dinov2WithRegistersSelfAttention", "DeiTAttention", "DeiTSelfAttention"}
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
MAX_JSON_BYTES = 1 << 20  # config.json and preprocessor_config.json: a few kB in practice
MAX_HEADER_BYTES = 8 << 20  # model.safetensors' header (names, shapes, offsets): tens of kB for a vision model
MAX_LABELS = 1024
SIDE = schema.integer(8, 2048)  # the input side a folder may ask for (SegFormer's largest: 1024)
# every number a folder's config may carry that sizes the model: typed and bounded before anything is built, here
# and in nested configs (a backbone's); the largest real vision models (SegFormer-B5, DINOv2-g, ViT-H) fit
CONFIG_BOUNDS = {
    "hidden_size": schema.integer(1, 4096), "hidden_sizes": schema.integers(1, 4096, most=8),
    "intermediate_size": schema.integer(1, 32768), "decoder_hidden_size": schema.integer(1, 4096),
    "num_hidden_layers": schema.integer(1, 64), "depths": schema.integers(1, 64, most=8),
    "num_encoder_blocks": schema.integer(1, 8),
    "num_attention_heads": schema.either(schema.integer(1, 128), schema.integers(1, 128, most=8)),
    "num_labels": schema.integer(1, MAX_LABELS),
    "num_channels": schema.Bound(schema.integer(3, 3).check, "3: vizattn feeds RGB images"),
    "image_size": schema.either(SIDE, schema.integers(8, 2048, 2)),
    "patch_size": schema.either(schema.integer(1, 1024), schema.integers(1, 1024, 2)),
    "patch_sizes": schema.integers(1, 64, most=8), "strides": schema.integers(1, 64, most=8),
    "sr_ratios": schema.integers(1, 64, most=8), "mlp_ratios": schema.integers(1, 16, most=8),
    "mlp_ratio": schema.number(0.1, 16), "num_register_tokens": schema.integer(0, 64),
}


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
    """A local transformers model directory, offline: weights only from model.safetensors (never a pickle), no
    remote code. As our own checkpoints: its JSON read bounded (no link out of the folder), every size typed and
    bounded, the model built on the meta device, its weights' names and shapes checked against it and its forward
    costed at the input size, all before the real model exists. Semantic-segmentation models get `segment`; other
    models are returned as they are."""
    from vizattn.sources import file_sha256

    path = Path(path)
    name = path.name or str(path)
    config = _read_json(path, "config.json")
    if config is None:
        raise VizattnError(f"'{path}' has no config.json; a transformers model directory needs one.")
    _check_config(config, name)
    weights = _own_file(path, "model.safetensors")
    if weights is None:
        raise VizattnError(f"'{path}' has no model.safetensors; vizattn loads transformers weights only from safetensors.")
    size = _input_size(_read_json(path, "preprocessor_config.json"), config, name)
    header = _weight_shapes(weights, name)
    try:
        import transformers
    except ImportError:
        raise VizattnError("Opening a transformers model directory needs the transformers package "
                           "(pip install transformers).") from None
    with _quiet(transformers):
        shell = _meta_model(transformers, config, name)
        _check_weights(shell, header, name)
        _check_cost(shell, size, name)
        try:  # weights read by transformers into the class checked above, with a fresh config of the same values
            model, info = type(shell).from_pretrained(
                str(path), config=_config_object(transformers, config, name), local_files_only=True,
                use_safetensors=True, trust_remote_code=False, output_loading_info=True, dtype=torch.float32)
        except Exception as err:  # transformers raises many types for a broken directory; all mean the same to a user
            raise VizattnError(f"'{name}' could not be opened as a transformers model ({type(err).__name__}: "
                               f"{plain(err, 200)}).") from None
    left = sorted(k for k in info.get("missing_keys") or [] if not k.endswith("num_batches_tracked"))
    left += sorted(k[0] for k in info.get("mismatched_keys") or [])
    if left:  # after transformers' own renaming: what the check above could not see (a fused or split weight)
        raise VizattnError(f"'{name}' leaves {len(left)} weights of its model unset ({', '.join(left[:3])}); it "
                           "would predict from random weights, so it was not loaded.")
    model.eval()
    provenance = Provenance("transformers folder", "transformers", name, sha256 or file_sha256(weights),
                            "unknown (a transformers model)", f"{model.config.model_type} ({type(model).__name__})",
                            "the folder's config.json", "the model's config (id2label)")
    if _is_segmenter(model):
        seg = HFSegmenter(model, size, name)
        return adopt(seg, provenance, seg.card["classes"], seg.card["palette"])
    return adopt(model, replace(provenance, classes_from="none (the model predicts no classes)"))


def _is_segmenter(model: nn.Module) -> bool:
    return type(model).__name__.endswith("ForSemanticSegmentation")


def _own_file(folder: Path, file: str) -> Path | None:
    """folder/file if it is there, or None; a link is refused (it may lead anywhere on this machine)."""
    path = folder / file
    if path.is_symlink():
        raise VizattnError(f"'{folder.name}/{file}' is a link; vizattn reads only a model folder's own files, so "
                           "copy the real file into the folder.")
    return path if path.exists() else None


def _read_json(folder: Path, file: str) -> dict | None:
    """A JSON object from folder/file (None when absent), read through no link and no further than MAX_JSON_BYTES."""
    path = _own_file(folder, file)
    if path is None:
        return None
    return read_json_object(path, f"'{folder.name}/{file}'", MAX_JSON_BYTES, "the JSON object transformers writes",
                            "a transformers model folder needs one")


def _check_config(config: dict, name: str, depth: int = 0) -> None:
    """Types and bounds of every size in a config (and in the configs nested in it), or one sentence."""
    if depth == 0:
        if not isinstance(config.get("model_type"), str):
            raise VizattnError(f"'{name}' has a config.json without a model_type string; it is not a transformers "
                               "model folder vizattn can read.")
        archs = config.get("architectures")
        if archs is not None and not (isinstance(archs, list) and len(archs) <= 8
                                      and all(isinstance(a, str) for a in archs)):
            raise VizattnError(f"'{name}' has a config.json whose architectures is not a short list of class names; "
                               "it was not loaded.")
    schema.check(config, CONFIG_BOUNDS, name, "config.json")
    labels = config.get("id2label")
    if labels is not None and not (isinstance(labels, dict) and len(labels) <= MAX_LABELS
                                   and all(isinstance(v, str) for v in labels.values())):
        raise VizattnError(f"'{name}' has a config.json whose id2label is not a map of at most {MAX_LABELS} class "
                           "names; it was not loaded.")
    for key, value in config.items():
        if isinstance(value, dict) and key not in ("id2label", "label2id") and depth < 3:
            _check_config(value, name, depth + 1)


def _input_size(preprocessor: dict | None, config: dict, name: str) -> tuple[int, int]:
    """The size the model's image processor resizes to (preprocessor_config.json; without one, the config's
    image_size), else 512×512 (SegFormer's); typed and bounded."""
    if preprocessor is None:
        size, where = config.get("image_size"), "config.json's image_size"
    else:
        size, where = preprocessor.get("size"), "preprocessor_config.json's size"
    if isinstance(size, dict):
        size = {k: size[k] for k in ("height", "width") if k in size}
        if len(size) == 2 and all(SIDE.check(v) for v in size.values()):
            return size["height"], size["width"]
        if not size:
            return 512, 512  # shortest_edge and other resize rules: SegFormer's size
    elif size is None:
        return 512, 512
    elif SIDE.check(size):
        return size, size
    elif isinstance(size, (list, tuple)) and len(size) == 2 and all(SIDE.check(v) for v in size):
        return size[0], size[1]
    shown = repr(size) if len(repr(size)) <= 40 else repr(size)[:37] + "..."
    raise VizattnError(f"'{name}' has {where} {shown}; vizattn takes a height and width of 8..2048 px (integers), "
                       "so it was not loaded.")


def _weight_shapes(weights: Path, name: str) -> dict[str, tuple[int, ...]]:
    """Names and shapes of model.safetensors' tensors, from its header alone (nothing else is read)."""
    from safetensors import SafetensorError, safe_open

    with open(weights, "rb") as f:
        length = int.from_bytes(f.read(8), "little")
    if length > MAX_HEADER_BYTES:
        raise VizattnError(f"'{name}/model.safetensors' has a {length / 2**20:,.0f} MB header, far beyond any vision "
                           "model's; it was not read.")
    try:
        with safe_open(str(weights), "pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise VizattnError(f"'{name}/model.safetensors' is not a readable safetensors file (it may be truncated); "
                           f"save the model again. ({type(err).__name__})") from None


def _config_object(transformers, config: dict, name: str):
    mapping = transformers.CONFIG_MAPPING
    if config["model_type"] not in mapping:
        raise VizattnError(f"'{name}' is a '{plain(config['model_type'], 40)}' model, which this transformers "
                           f"({transformers.__version__}) does not know; it was not loaded.")
    try:
        return mapping[config["model_type"]].from_dict(dict(config))
    except Exception as err:  # a config class rejects values in many ways
        raise VizattnError(f"'{name}' has a config.json transformers rejects ({type(err).__name__}: "
                           f"{plain(err, 150)}); it was not loaded.") from None


def _meta_model(transformers, config: dict, name: str) -> nn.Module:
    """The model its config describes, on the meta device: shapes only, nothing allocated. Its class is the first
    of `architectures` that transformers has, else the AutoModel for its type; never remote code."""
    named = [getattr(transformers, a, None) for a in config.get("architectures") or []]
    cls = next((c for c in named if isinstance(c, type) and issubclass(c, transformers.PreTrainedModel)), None)
    conf = _config_object(transformers, config, name)
    try:
        with torch.device("meta"):
            build = cls._from_config if cls else transformers.AutoModel.from_config
            return build(conf, dtype=torch.float32).eval()  # as it will be loaded, whatever dtype it was saved in
    except Exception as err:
        raise VizattnError(f"'{name}' describes a model transformers cannot build ({type(err).__name__}: "
                           f"{plain(err, 150)}); it was not loaded.") from None


def _check_weights(shell: nn.Module, header: dict[str, tuple[int, ...]], name: str) -> None:
    """The file's tensors against the model's state dict, named as transformers will load them (its renamings of
    older checkpoints, the base-model prefix added or dropped): missing weights (they would stay random), shape
    mismatches and, for a full model, unexpected ones, in one sentence."""
    own = {k: tuple(v.shape) for k, v in shell.state_dict().items()}
    rename = _renamer(shell)
    found, unexpected, mismatched, converted = set(), [], [], False
    for key, shape in header.items():
        new, fused = rename(key)
        if fused:  # a converter splits or fuses tensors: transformers' own report decides after loading
            converted = True
        elif new not in own:
            unexpected.append(key)
        elif own[new] != shape:
            mismatched.append(f"{key} {shape} vs {own[new]}")
        found.add(new)
    tied = set(getattr(shell, "all_tied_weights_keys", None) or {})
    ignored = [re.compile(p) for p in getattr(shell, "_keys_to_ignore_on_load_missing", None) or ()]
    needed = [k for k in own if k not in tied and not k.endswith("num_batches_tracked")
              and not any(p.search(k) for p in ignored)]
    missing = [] if converted else sorted(k for k in needed if k not in found)
    if getattr(shell, shell.base_model_prefix, None) is None:  # a base model may come from a task checkpoint
        unexpected = []
    if not (missing or unexpected or mismatched):
        return
    parts = []
    if missing and len(missing) == len(needed):
        parts.append(f"none of its {len(needed)} weights is in model.safetensors")
    for label, keys in (("missing weights", missing if len(missing) < len(needed) else []),
                        ("unexpected weights", sorted(unexpected)), ("shape mismatches", sorted(mismatched))):
        if keys:
            parts.append(f"{label}: {', '.join(keys[:5])}" + (f", … ({len(keys)} in all)" if len(keys) > 5 else ""))
    raise VizattnError(f"'{name}' holds weights that do not fit the {type(shell).__name__} its config.json describes "
                       f"— {'; '.join(parts)}; it would predict from random weights, so it was not loaded.")


def _renamer(shell: nn.Module):
    """key -> (the name transformers loads it under, whether a converter fuses or splits it)."""
    meta_state = shell.state_dict()
    prefix = shell.base_model_prefix
    try:
        from transformers.conversion_mapping import get_model_conversion_mapping
        from transformers.core_model_loading import WeightConverter, WeightRenaming, rename_source_key

        mapping = get_model_conversion_mapping(shell)
        renamings = [m for m in mapping if isinstance(m, WeightRenaming)]
        converters = [m for m in mapping if isinstance(m, WeightConverter)]
    except (ImportError, AttributeError, TypeError):  # other transformers versions: names as they are
        def plain_rename(key):
            if prefix and key.startswith(prefix + ".") and key[len(prefix) + 1:] in meta_state:
                return key[len(prefix) + 1:], False
            if prefix and f"{prefix}.{key}" in meta_state:
                return f"{prefix}.{key}", False
            return key, False
        return plain_rename

    def rename(key):
        new, pattern = rename_source_key(key, renamings, converters, prefix, meta_state)
        return new, pattern is not None
    return rename


def _check_cost(shell: nn.Module, size: tuple[int, int], name: str) -> None:
    """The forward's compute and largest tensor at the size images are resized to, on the meta device."""
    costed = _Logits(shell) if _is_segmenter(shell) else shell
    try:
        schema.check_cost(costed, name, size, schema.MAX_FOREIGN_GFLOPS)
    except VizattnError:
        raise
    except Exception as err:  # a model whose forward cannot run on shapes alone cannot be costed, so is not built
        raise VizattnError(f"'{name}' could not be costed before loading (its forward fails on shapes alone: "
                           f"{type(err).__name__}); it was not loaded.") from None


class _Logits(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pixel_values):
        return self.model(pixel_values=pixel_values).logits


@contextmanager
def _quiet(transformers):
    """transformers' own reports (its MISSING/UNEXPECTED table), warnings and progress bars held back: what goes
    wrong is said once, in our sentence."""
    log = transformers.utils.logging
    level, bars = log.get_verbosity(), log.is_progress_bar_enabled()
    log.set_verbosity_error()
    log.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        log.set_verbosity(level)
        if bars:
            log.enable_progress_bar()
