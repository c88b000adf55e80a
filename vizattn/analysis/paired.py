"""Two models on the same images: per statistic × class (× module where both have it), the mean over images of the
per-image difference A − B, with a seeded percentile-bootstrap 95% interval that resamples images.

Pure: per-image rows in (the `rows.parquet` rows `vizattn analyze` writes for each model), rows out. Images weigh
equally (each image's value is the mean over its queries), so the delta is not the difference of the pooled query
means of summary.json."""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from vizattn.analysis.summary import SEP

WHOLE_MODEL = "mean over modules"  # the module column of a statistic averaged over each model's modules
RESAMPLES = 2000
UNARY_KINDS = (" (softmax self weight)", " (gate 1/(1+w))")


def parts(key: str, model: str) -> tuple[str, str, str] | None:
    """(statistic, class, module) of a per-image row's key; module is '' for a statistic of the whole model (or a
    model with one attention module). None for a key this comparison does not pair."""
    p = key.split(SEP)

    def module(label: str) -> str:
        return label[len(model) + 1:] if label.startswith(f"{model}:") else ""

    if p[0] == "query_independence" and len(p) == 3:
        return f"query_independence.{p[2]}", "", module(p[1])
    if p[0] == "unary_binary" and len(p) == 3:
        kind = next((k for k in UNARY_KINDS if p[1].endswith(k)), "")
        return f"unary_binary.{p[2]}{kind}", "", module(p[1][: len(p[1]) - len(kind)])
    if p[0] == "coverage" and len(p) == 2:
        return f"coverage.{p[1]}", "", ""
    if p[0] == "where" and len(p) == 4:
        return f"where.{p[3]}", p[2], module(p[1])
    if p[0] == "psa" and len(p) in (3, 4):
        return f"psa.{' '.join(p[2:])}", "", ""
    return None


def per_image(rows: list[dict], model: str) -> dict[tuple[str, str, str], dict[str, float]]:
    """(statistic, class, module) -> {image: value}: each module's own, and the mean over the model's modules
    (module WHOLE_MODEL) of those that have a value for that image."""
    own: dict[tuple, dict[str, float]] = defaultdict(dict)
    pooled: dict[tuple, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        key = parts(r["statistic"], model)
        if key is None:
            continue
        stat, cls, mod = key
        if mod:
            own[(stat, cls, mod)][r["image"]] = r["value"]
        pooled[(stat, cls, WHOLE_MODEL)][r["image"]].append(r["value"])
    whole = {k: {im: float(np.mean(v)) for im, v in d.items()} for k, d in pooled.items()}
    return {**whole, **own}


def bootstrap_interval(deltas, seed: int = 0, resamples: int = RESAMPLES) -> tuple[float, float]:
    """The 2.5th and 97.5th percentiles of the mean of `deltas` resampled with replacement `resamples` times; the
    draws are `default_rng(seed).integers(0, n, (resamples, n))`, the same for every statistic with n images."""
    d = np.asarray(deltas, np.float64)
    idx = np.random.default_rng(seed).integers(0, len(d), (resamples, len(d)))
    lo, hi = np.percentile(d[idx].mean(axis=1), [2.5, 97.5])
    return float(lo), float(hi)


def paired_rows(rows_a: list[dict], model_a: str, rows_b: list[dict], model_b: str, images: list[str],
                seed: int = 0, resamples: int = RESAMPLES) -> list[dict]:
    """One row per (statistic, class, module) both models have: over the images where both have a value (in the
    order of `images`), their means, the mean delta A − B and its bootstrap interval. Modules are paired by name
    where both models name theirs alike; the whole-model mean is always paired."""
    a, b = per_image(rows_a, model_a), per_image(rows_b, model_b)
    out = []
    for key in sorted(set(a) & set(b), key=lambda k: (k[0], k[1], k[2] != WHOLE_MODEL, k[2])):
        shared = [im for im in images if im in a[key] and im in b[key]]
        if not shared:
            continue
        va = np.array([a[key][im] for im in shared])
        vb = np.array([b[key][im] for im in shared])
        d = va - vb
        lo, hi = bootstrap_interval(d, seed, resamples)
        stat, cls, mod = key
        out.append({"statistic": stat, "class": cls, "module": mod, "images": len(shared),
                    "mean_a": float(va.mean()), "mean_b": float(vb.mean()), "delta": float(d.mean()),
                    "ci_low": lo, "ci_high": hi, "seed": seed, "resamples": resamples})
    return out
