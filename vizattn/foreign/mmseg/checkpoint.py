"""Opening an mmseg checkpoint: recognising its state dict, and rebuilding, loading and adopting the model
with its classes, palette and provenance."""
from __future__ import annotations

import torch

from vizattn import schema
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
    # as our own checkpoints: built on the meta device (shapes only), checked against the file's tensors and costed
    # at the largest input it will be given, before a byte of the real model exists
    with torch.device("meta"):
        shell = MMSegModel(cfg)
    weights = shell.fitted_state(state, name)
    schema.check_cost(shell.eval(), name, shell.largest_input(), schema.MAX_FOREIGN_GFLOPS)
    with torch.device("meta"):  # a fresh shell: the costing forward may have left meta tensors in caches
        model = MMSegModel(cfg)
    # the file's tensors become the parameters (no random initialisation, no second copy), as float32 inputs need
    model.load_state_dict({k: v.float().contiguous() if v.is_floating_point() else v for k, v in weights.items()},
                          strict=True, assign=True)
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
