"""How far each ambiguous pixel is from the nearest disambiguating context, in pixels.
Shows how much of the road/sidewalk and vegetation/terrain decision lies beyond a CNN's receptive field."""

from __future__ import annotations

import numpy as np

from .scenes import AMBIGUOUS_PAIRS, CLASSES


def _pair_name(pair: tuple[str, str]) -> str:
    return "/".join(pair)


def _pair_masks(labels: np.ndarray) -> dict[str, np.ndarray]:
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"expected one (H, W) label map, got shape {labels.shape}")
    return {
        _pair_name(pair): np.isin(labels, [CLASSES.index(c) for c in pair]) for pair in AMBIGUOUS_PAIRS
    }


def ambiguous_mask(labels: np.ndarray) -> np.ndarray:
    """Bool (H, W): pixels whose class belongs to any pair in AMBIGUOUS_PAIRS."""
    masks = list(_pair_masks(labels).values())
    return np.logical_or.reduce(masks)


def cue_distance(labels: np.ndarray) -> np.ndarray:
    """Float32 (H, W): for a pixel of an ambiguous pair, the Euclidean distance (px, between pixel
    centres) to the nearest pixel whose class is outside that pair; 0 for all other pixels.

    A pair with no outside pixel anywhere in the map gets the image diagonal.  The frame border is
    not a cue: distances are measured only to pixels inside the map.
    """
    from scipy.ndimage import distance_transform_edt  # on first use: the app's first page need not import scipy

    labels = np.asarray(labels)
    out = np.zeros(labels.shape, np.float32)
    diagonal = np.float32(np.hypot(*labels.shape))
    for mask in _pair_masks(labels).values():
        if not mask.any():
            continue
        if mask.all():
            out[mask] = diagonal
        else:
            out[mask] = distance_transform_edt(mask)[mask]
    return out


def beyond_rf_counts(labels: np.ndarray, rf: int) -> dict[str, tuple[int, int]]:
    """Per pair and "all": (pixels with cue_distance > rf / 2, pixels of the pair)."""
    dist = cue_distance(labels)
    far = dist > rf / 2.0
    counts = {name: (int(far[m].sum()), int(m.sum())) for name, m in _pair_masks(labels).items()}
    counts["all"] = (sum(c[0] for c in counts.values()), sum(c[1] for c in counts.values()))
    return counts


def beyond_rf_share(labels: np.ndarray, rf: int) -> dict[str, float]:
    """Share of each pair's pixels (and of all ambiguous pixels, key "all") whose cue_distance
    exceeds rf / 2, i.e. whose rf x rf window, centred on the pixel, holds only the pair's own
    classes.  A pair absent from the map gets 0.0."""
    counts = beyond_rf_counts(labels, rf)
    return {name: (far / total if total else 0.0) for name, (far, total) in counts.items()}


def pooled_beyond_rf_share(label_maps, rf: int) -> dict[str, float]:
    """beyond_rf_share pooled over many label maps (ratio of summed pixel counts)."""
    far: dict[str, int] = {}
    total: dict[str, int] = {}
    for labels in label_maps:
        for name, (f, t) in beyond_rf_counts(labels, rf).items():
            far[name] = far.get(name, 0) + f
            total[name] = total.get(name, 0) + t
    return {name: (far[name] / total[name] if total[name] else 0.0) for name in far}
