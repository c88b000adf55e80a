"""Opening an mmseg checkpoint: recognising its state dict, and rebuilding, loading and adopting the model
with its classes, palette and provenance."""
from __future__ import annotations

import torch

from vizattn.data.palettes import classes_and_palette
from vizattn.foreign.mmseg.config import config_from_state
from vizattn.foreign.mmseg.heads import HEADS
from vizattn.foreign.mmseg.model import MMSegModel
from vizattn.model import Provenance, adopt


def is_mmseg_state(state: dict) -> bool:
    return any(k.startswith("backbone.stem.") for k in state) and any(k.startswith("decode_head.") for k in state)


def from_checkpoint(state: dict[str, torch.Tensor], meta: dict, name: str, sha256: str | None = None) -> MMSegModel:
    if all(k.startswith("module.") for k in state):  # saved from DistributedDataParallel
        state = {k[len("module."):]: v for k, v in state.items()}
    cfg = config_from_state(state, meta, name)
    model = MMSegModel(cfg).load_mmseg_state(state, name)
    classes, palette, source = classes_and_palette(meta, cfg.num_classes)
    version = meta.get("mmseg_version") or "unknown"
    head = HEADS[cfg.head]
    model.card = {"name": name, "module": head.module,
                  "source": "mmsegmentation", "mmseg_head": head.mmseg_name, "backbone": f"ResNetV1c-{cfg.depth}-D8",
                  "mmseg_version": str(version), "classes": classes, "palette": [list(p) for p in palette],
                  "classes_from": source, "config": cfg.to_dict(), "trained_on": "unknown (an mmseg checkpoint)"}
    adopt(model, Provenance("mmseg checkpoint", "mmsegmentation", name, sha256, "unknown (an mmseg checkpoint)",
                            f"mmseg {head.mmseg_name} on ResNetV1c-{cfg.depth}-D8",
                            "its parameter names and shapes", source), classes, palette)
    if torch.cuda.is_available():  # tens of seconds per forward on a CPU; records and maps come back to the CPU
        model = model.cuda()
    return model.eval()
