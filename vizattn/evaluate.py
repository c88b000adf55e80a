"""Prediction and evaluation on freshly generated scenes: per-class IoU and mIoU."""
from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from vizattn.data import AMBIGUOUS_PAIRS, CLASSES, generate_scene
from vizattn.model import MEAN, STD, as_model, to_tensor  # noqa: F401 (train and report take them from here)

#: held-out scenes come from seeds at and above this; training never draws from here
EVAL_SEED_BASE = 1_000_000_000
AMBIGUOUS = tuple(c for pair in AMBIGUOUS_PAIRS for c in pair)


@torch.no_grad()
def predict(model: torch.nn.Module, image: np.ndarray) -> np.ndarray:
    """Class labels (H×W; uint8 up to 256 classes, int32 beyond) for one H×W×3 uint8 RGB image, through the
    model's own pipeline where it has one (an mmseg checkpoint's resize and normalisation)."""
    logits = as_model(model).eval().segment(image)
    return logits.argmax(1)[0].to("cpu", torch.uint8 if logits.shape[1] <= 256 else torch.int32).numpy()


def confusion(pred: np.ndarray, target: np.ndarray, k: int = len(CLASSES)) -> np.ndarray:
    valid = target < k
    return np.bincount(k * target[valid].astype(np.int64) + pred[valid], minlength=k * k).reshape(k, k)


def iou_from_confusion(conf: np.ndarray) -> np.ndarray:
    """Per-class IoU; NaN for a class absent from both prediction and truth."""
    tp = np.diag(conf).astype(np.float64)
    denom = conf.sum(0) + conf.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, tp / denom, np.nan)


def _mean_present(values) -> float:
    """Mean over the classes that occur (NaN, silently, when none does)."""
    v = np.asarray(values, np.float64)
    return float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")


def summarise(conf: np.ndarray) -> dict:
    iou = iou_from_confusion(conf)
    per_class = {c: (None if np.isnan(v) else round(float(v), 4)) for c, v in zip(CLASSES, iou)}
    amb = [iou[CLASSES.index(c)] for c in AMBIGUOUS]
    return {
        "miou": round(_mean_present(iou), 4),
        "miou_ambiguous": round(_mean_present(amb), 4),
        "pixel_accuracy": round(float(np.diag(conf).sum() / max(1, conf.sum())), 4),
        "iou": per_class,
    }


@torch.no_grad()
def evaluate(model: torch.nn.Module, scenes: int = 100, seed: int = EVAL_SEED_BASE, size=(256, 256),
             batch: int = 8, progress: bool = True) -> dict:
    """Per-class IoU and mIoU (overall and on the context-ambiguous classes) on scenes seed..seed+scenes-1."""
    model.eval()
    conf = np.zeros((len(CLASSES), len(CLASSES)), np.int64)
    device = next(model.parameters()).device
    for start in tqdm(range(0, scenes, batch), desc="evaluate", unit="batch", disable=not progress):
        group = [generate_scene(seed + i, size) for i in range(start, min(scenes, start + batch))]
        pred = model(to_tensor(np.stack([s.image for s in group])).to(device)).argmax(1).cpu().numpy()
        for p, s in zip(pred, group):
            conf += confusion(p, s.labels)
    out = summarise(conf)
    out.update({"scenes": scenes, "seed": seed, "size": list(size)})
    return out
