"""PSA's analysis: how its channel and spatial weights are distributed and how saturated ("polarized")
they are, parallel against sequential."""
from __future__ import annotations

import numpy as np

SATURATION = 0.1  # a sigmoid weight below 0.1 or above 0.9 counts as saturated


def weight_summary(weights: np.ndarray, bins: int = 20) -> dict:
    w = np.asarray(weights, np.float64).ravel()
    hist, edges = np.histogram(w, bins=bins, range=(0.0, 1.0))
    return {
        "mean": float(w.mean()), "std": float(w.std()), "min": float(w.min()), "max": float(w.max()),
        "saturated_share": float(((w < SATURATION) | (w > 1 - SATURATION)).mean()),
        "histogram": hist.tolist(), "edges": edges.tolist(),
    }


def psa_summary(rec) -> dict:
    return {
        "mode": rec.config["mode"],
        "channel": weight_summary(rec.data["channel_weights"].cpu().numpy()),
        "spatial": weight_summary(rec.data["spatial_weights"].cpu().numpy()),
    }
