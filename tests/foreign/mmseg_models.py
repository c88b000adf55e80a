"""mmseg models built from mmseg's own shipped configs with random weights, saved as mmseg saves checkpoints
(nothing is downloaded). Shared by the equivalence, CLI, app and browser tests."""
from __future__ import annotations

import io
from pathlib import Path

import torch

from benchmarks.fidelity import NaivePSAMask, import_mmseg, randomise

CONFIGS = {
    "nl": "nonlocal_net/nonlocal_r50-d8_4xb2-40k_cityscapes-512x1024.py",
    "isa": "isanet/isanet_r50-d8_4xb2-40k_cityscapes-512x1024.py",
    "cc": "ccnet/ccnet_r50-d8_4xb2-40k_cityscapes-512x1024.py",
    "gc": "gcnet/gcnet_r50-d8_4xb2-40k_cityscapes-512x1024.py",
    "ann": "ann/ann_r50-d8_4xb2-40k_cityscapes-512x1024.py",
    "da": "danet/danet_r50-d8_4xb2-40k_cityscapes-512x1024.py",
    "psa": "psanet/psanet_r50-d8_4xb2-40k_cityscapes-512x1024.py",
    "nl-ade": "nonlocal_net/nonlocal_r50-d8_4xb4-80k_ade20k-512x512.py",
    "psa-ade": "psanet/psanet_r50-d8_4xb4-80k_ade20k-512x512.py",
}


def config(key: str, narrow: bool = False, num_classes: int | None = None):
    """mmseg's shipped config; `narrow` shrinks every width 16× (same layout) for small, fast checkpoints."""
    import_mmseg()
    import mmseg
    from mmengine.config import Config

    cfg = Config.fromfile(str(Path(mmseg.__file__).parent / ".mim" / "configs" / CONFIGS[key]))
    cfg.model.pop("data_preprocessor", None)
    cfg.model.backbone.pop("init_cfg", None)
    cfg.model.pretrained = None
    cfg.model.backbone.norm_cfg = cfg.model.decode_head.norm_cfg = dict(type="BN", requires_grad=True)
    cfg.model.auxiliary_head.norm_cfg = dict(type="BN", requires_grad=True)
    if narrow:
        cfg.model.backbone.update(stem_channels=8, base_channels=4)  # stages 16, 32, 64, 128 wide
        head = cfg.model.decode_head
        head.in_channels = [64, 128] if isinstance(head.in_channels, (list, tuple)) else 128
        head.channels = 32
        for k, v in (("isa_channels", 16), ("project_channels", 16), ("pam_channels", 4)):
            if k in head:
                head[k] = v
        cfg.model.auxiliary_head.update(in_channels=64, channels=16)
    if num_classes is not None:
        cfg.model.decode_head.num_classes = cfg.model.auxiliary_head.num_classes = num_classes
    return cfg


def build(key: str, narrow: bool = False, seed: int = 0, num_classes: int | None = None):
    """(randomised mmseg EncoderDecoder in eval mode, its config); PSANet gets the PSAMask op written from its kernel."""
    import_mmseg()
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    register_all_modules()
    cfg = config(key, narrow, num_classes)
    model = MODELS.build(cfg.model)
    head = model.decode_head
    if hasattr(head, "psamask_collect"):
        head.psamask_collect = NaivePSAMask("collect", head.mask_size)
        head.psamask_distribute = NaivePSAMask("distribute", head.mask_size)
    randomise(model, seed)
    scale_down_bn(model)
    return model.eval(), cfg


def scale_down_bn(model: torch.nn.Module) -> None:
    """Random BN scales compound over 50 layers; scaling each block's last BN keeps activations O(1)-O(10)."""
    with torch.no_grad():
        for name, m in model.named_modules():
            if name.endswith("bn3"):
                m.weight.mul_(0.2)


def checkpoint_bytes(model, cfg, style: str = "1.x", classes=None, palette=None) -> bytes:
    """What mmseg's runner writes, minus optimizer state: {'meta': ..., 'state_dict': ...}."""
    import mmseg

    meta = {"mmseg_version": mmseg.__version__ if style == "1.x" else "0.30.0", "seed": 0, "iter": 40000}
    text = cfg.pretty_text
    if style == "1.x":
        meta["cfg"] = text
        if classes is not None:
            meta["dataset_meta"] = {"classes": list(classes), "palette": [list(p) for p in palette]}
    else:
        meta["config"] = text
        if classes is not None:
            meta["CLASSES"], meta["PALETTE"] = tuple(classes), [list(p) for p in palette]
    buf = io.BytesIO()
    torch.save({"meta": meta, "state_dict": model.state_dict()}, buf)
    return buf.getvalue()


def narrow_checkpoint(key: str, meta_config: str | None = None, **changes) -> bytes:
    """A narrow mmseg checkpoint of `key` (built once), its state dict changed by `changes` (key -> tensor, or None
    to drop it) and carrying `meta_config` as its 0.x config text: the seed of a hostile file."""
    state = dict(_narrow_state(key))
    for name, tensor in changes.items():
        if tensor is None:
            state.pop(name, None)
        else:
            state[name] = tensor
    buf = io.BytesIO()
    torch.save({"meta": {"config": meta_config} if meta_config is not None else {}, "state_dict": state}, buf)
    return buf.getvalue()


_STATES: dict[str, dict] = {}


def _narrow_state(key: str) -> dict:
    if key not in _STATES:
        _STATES[key] = build(key, narrow=True)[0].state_dict()
    return _STATES[key]
