"""ISA's analysis: how close the sparse factorisation's effective routing map comes to a dense non-local
map at the same pixel, as a distance between distributions."""
from __future__ import annotations

import numpy as np


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    """½ Σ |p − q| between two maps normalised to sum 1: 0 identical, 1 disjoint support."""
    p, q = _norm(p), _norm(q)
    return float(0.5 * np.abs(p - q).sum())


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen–Shannon divergence in bits (0..1)."""
    p, q = _norm(p), _norm(q)
    m = 0.5 * (p + q)

    def kl(a, b):
        nz = a > 0
        return float((a[nz] * np.log2(a[nz] / b[nz])).sum())

    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def _norm(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, np.float64).ravel()
    return m / m.sum()


def map_distances(maps_a: np.ndarray, maps_b: np.ndarray) -> dict[str, float]:
    """Mean TV and JS between paired maps (n × h × w each), and the same against a uniform map as a yardstick."""
    uniform = np.ones_like(maps_b[0])
    return {
        "tv": float(np.mean([total_variation(a, b) for a, b in zip(maps_a, maps_b)])),
        "js": float(np.mean([jensen_shannon(a, b) for a, b in zip(maps_a, maps_b)])),
        "tv_uniform_vs_b": float(np.mean([total_variation(uniform, b) for b in maps_b])),
    }
