"""The papers' per-image statistics reduced to a small, mergeable summary: sums, counts and sums of squares per
statistic, histograms, extremes. `merge` is associative and commutative (up to float rounding), so images can be
analysed in any order, in any process or on any machine, and only these summaries travel — never N×N maps.

One code path for a statistic: `analyse_forward` is what `vizattn report`, `vizattn analyze` (local or Ray) and
the app's Analysis tab compute for one (model, image); `sections` turns a summary into the report's numbers."""
from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from vizattn.analysis import coverage as cov
from vizattn.analysis import query_independence as qi
from vizattn.analysis import unary
from vizattn.analysis.maps import maps_at, sample_queries
from vizattn.analysis.psa import SATURATION
from vizattn.analysis.where import where_attention_goes
from vizattn.explore import cell_centre

SEP = "|"
HIST_BINS = 20
TAIL_K = 5  # the highest and lowest queries kept per statistic × class × module/view (vizattn analyze's extremes)


class Summary:
    """moments: key -> [sum, count, sum of squares]; hists: key -> counts over [0, 1] in HIST_BINS bins;
    extremes: key -> [min, max]; info: key -> a string (e.g. PSA's mode); tails: key -> {"top": [...], "bottom":
    [...]}, the TAIL_K queries with the highest and lowest values, each [value, image, y, x] (image pixels)."""

    def __init__(self, moments=None, hists=None, extremes=None, info=None, tails=None):
        self.moments: dict[str, list[float]] = moments or {}
        self.hists: dict[str, list[int]] = hists or {}
        self.extremes: dict[str, list[float]] = extremes or {}
        self.info: dict[str, str] = info or {}
        self.tails: dict[str, dict[str, list]] = tails or {}

    def add_tail(self, key: tuple, value: float, image: str, y: int, x: int) -> None:
        """One query's value, kept if it is among the TAIL_K highest or lowest of its key."""
        if not math.isfinite(value):
            return
        k = SEP.join(map(str, key))
        entry = [float(value), str(image), int(y), int(x)]
        old = self.tails.get(k, {"top": [], "bottom": []})
        self.tails[k] = _trim(old["top"] + [entry], old["bottom"] + [entry])

    def add(self, key: tuple, values) -> None:
        """Add one value or many (NaN and ±Inf are skipped, as nanmean would)."""
        v = np.asarray(values, np.float64).ravel()
        v = v[np.isfinite(v)]
        if not v.size:
            return
        k = SEP.join(map(str, key))
        m = self.moments.setdefault(k, [0.0, 0, 0.0])
        m[0] += float(v.sum())
        m[1] += int(v.size)
        m[2] += float((v * v).sum())

    def add_distribution(self, key: tuple, values) -> None:
        """A weight distribution in [0, 1]: its moments, histogram, extremes and saturated share."""
        v = np.asarray(values, np.float64).ravel()
        self.add(key, v)
        self.add((*key, "saturated"), ((v < SATURATION) | (v > 1 - SATURATION)).astype(np.float64))
        k = SEP.join(map(str, key))
        hist = np.histogram(v, bins=HIST_BINS, range=(0.0, 1.0))[0]
        self.hists[k] = (np.asarray(self.hists.get(k, np.zeros(HIST_BINS, np.int64))) + hist).tolist()
        lo, hi = self.extremes.get(k, [math.inf, -math.inf])
        self.extremes[k] = [min(lo, float(v.min())), max(hi, float(v.max()))]

    def merge(self, other: Summary) -> Summary:
        out = Summary({k: list(v) for k, v in self.moments.items()}, {k: list(v) for k, v in self.hists.items()},
                      {k: list(v) for k, v in self.extremes.items()}, dict(self.info))
        for k, (s, n, q) in other.moments.items():
            m = out.moments.setdefault(k, [0.0, 0, 0.0])
            m[0] += s
            m[1] += n
            m[2] += q
        for k, h in other.hists.items():
            out.hists[k] = (np.asarray(out.hists.get(k, np.zeros(len(h), np.int64))) + np.asarray(h)).tolist()
        for k, (lo, hi) in other.extremes.items():
            a, b = out.extremes.get(k, [math.inf, -math.inf])
            out.extremes[k] = [min(a, lo), max(b, hi)]
        out.info.update(other.info)
        out.tails = {k: dict(v) for k, v in self.tails.items()}
        for k, t in other.tails.items():
            mine = out.tails.get(k, {"top": [], "bottom": []})
            out.tails[k] = _trim(mine["top"] + t["top"], mine["bottom"] + t["bottom"])
        return out

    def mean(self, key: str) -> float:
        s, n, _ = self.moments[key]
        return s / n

    def keys(self, *prefix) -> list[list[str]]:
        p = [str(x) for x in prefix]
        return [k.split(SEP) for k in self.moments if k.split(SEP)[: len(p)] == p]

    def to_dict(self) -> dict:
        return {"moments": self.moments, "hists": self.hists, "extremes": self.extremes, "info": self.info,
                "tails": self.tails}

    @classmethod
    def from_dict(cls, d: dict) -> Summary:
        return cls({k: list(v) for k, v in d["moments"].items()}, {k: list(v) for k, v in d["hists"].items()},
                   {k: list(v) for k, v in d["extremes"].items()}, dict(d["info"]),
                   {k: {"top": [list(e) for e in v["top"]], "bottom": [list(e) for e in v["bottom"]]}
                    for k, v in d.get("tails", {}).items()})

    def per_image_rows(self, image: str, model: str) -> list[dict]:
        """One row per statistic of a one-image summary (mean over its queries or values), for Parquet."""
        return [{"image": image, "model": model, "statistic": k, "value": s / n, "count": int(n)}
                for k, (s, n, _) in sorted(self.moments.items())]


def _trim(top: list, bottom: list) -> dict:
    """The TAIL_K highest and lowest entries, ties broken by (image, y, x): the same whatever the merge order."""
    top = sorted({tuple(e) for e in top}, key=lambda e: (-e[0], e[1], e[2], e[3]))[:TAIL_K]
    bottom = sorted({tuple(e) for e in bottom}, key=lambda e: (e[0], e[1], e[2], e[3]))[:TAIL_K]
    return {"top": [list(e) for e in top], "bottom": [list(e) for e in bottom]}


def tail_rows(s: Summary) -> list[dict]:
    """The extremes as rows: statistic, class, module, view, image, y, x, value, rank (1 = most extreme), end."""
    rows = []
    for key, t in sorted(s.tails.items()):
        _, module, view, cls, stat = key.split(SEP)
        for end in ("top", "bottom"):
            for rank, (value, image, y, x) in enumerate(t[end], 1):
                rows.append({"statistic": stat, "class": cls, "module": module, "view": view, "image": image,
                             "y": y, "x": x, "value": value, "rank": rank,
                             "end": "highest" if end == "top" else "lowest"})
    return rows


def merge_all(summaries) -> Summary:
    total = Summary()
    for s in summaries:
        total = total.merge(s)
    return total


def module_label(model: str, module: str, records: int) -> str:
    return f"{model}:{module.split('.')[-1]}" if records > 1 else model


def analyse_forward(name: str, fw, module_io: dict | None, labels: np.ndarray | None, instances: np.ndarray | None,
                    classes: list[str], queries: int = 64, seed: int = 0, image: str | None = None) -> Summary:
    """Every per-image statistic of the report for one model's captured forward on one image. With `image` (its
    name in a data set) the per-query values also feed the extremes (`tails`) at their image pixels.
    `labels` (H×W class indices in the model's classes: ground truth, else its prediction) and `instances`
    (optional) feed the class/instance mass; `module_io` (module name -> (input, output)) the GCNet analysis.
    Which statistics a record gets is its class's `statistics`."""
    s = Summary()
    for mod, rec in fw.records.items():
        label = module_label(name, mod, len(fw.records))
        stats = rec.statistics
        # each image's value enters once (a mean over its queries), as the papers average over images
        if "query_independence" in stats:
            if module_io and mod in module_io:  # the paper's three columns: input, attention, output
                inp, outp = module_io[mod]
                for k, v in qi.query_independence(rec, inp, outp, queries, seed=seed).items():
                    s.add(("query_independence", label, k), v)
            else:  # a module whose input and output were not kept: the attention column alone
                q = sample_queries(rec.grid, queries, seed)
                s.add(("query_independence", label, "attention"),
                      qi.mean_cosine_distance(maps_at(rec, q).reshape(len(q), -1)))
        if "unary_share" in stats:
            for k, v in unary.unary_share(rec, queries * 4, seed=seed).items():
                s.add(("unary_binary", f"{label} (softmax self weight)", k), v)
        if "gate_shares" in stats:
            for k, v in unary.gate_shares(rec).items():
                s.add(("unary_binary", f"{label} (gate 1/(1+w))", k), v)
        if "loop_coverage" in stats:
            for k, v in cov.loop_coverage(rec, queries, seed=seed).items():
                s.add(("coverage", k), v)
        if "where" in stats:
            rows = where_attention_goes(rec, labels if labels is not None else fw.prediction, instances, queries,
                                        seed=seed, image_shape=fw.shape)
            for row in rows:  # every query counts: class means over all queries of all images
                if not 0 <= row["class"] < len(classes):  # an ignored label (255) or a class the model lacks
                    continue
                py, px = cell_centre(row["y"], row["x"], fw.shape, rec.grid)
                for k in ("own_class", "own_instance", "distance_px", "entropy"):
                    if k in row:
                        s.add(("where", label, classes[row["class"]], k), row[k])
                        if image is not None:
                            s.add_tail(("where", label, rec.default_view, classes[row["class"]], k), row[k],
                                       image, py, px)
        if "psa_weights" in stats:
            s.info[SEP.join(("psa", name, "mode"))] = rec.config["mode"]
            for branch, key in (("channel", "channel_weights"), ("spatial", "spatial_weights")):
                s.add_distribution(("psa", name, branch), rec.data[key].cpu().numpy())
    return s


def _distribution(s: Summary, key: str) -> dict:
    total, n, sq = s.moments[key]
    mean = total / n
    hist = s.hists[key]
    return {"mean": mean, "std": math.sqrt(max(0.0, sq / n - mean * mean)), "min": s.extremes[key][0],
            "max": s.extremes[key][1], "saturated_share": s.mean(f"{key}{SEP}saturated"), "histogram": hist,
            "edges": np.linspace(0.0, 1.0, len(hist) + 1).tolist()}


def sections(s: Summary) -> dict:
    """The report's numbers from a (merged) summary: the same keys and shapes `vizattn report` has always written."""
    out: dict = {}
    nested = defaultdict(dict)
    for section in ("query_independence", "unary_binary"):
        for _, label, k in s.keys(section):
            nested[section].setdefault(label, {})[k] = s.mean(SEP.join((section, label, k)))
        out[section] = dict(nested[section])
    cover = {k: s.mean(SEP.join(("coverage", k))) for _, k in s.keys("coverage")}
    if cover:
        out["coverage"] = cover
    where: dict = {}
    for _, label, cls, k in s.keys("where"):
        key = SEP.join(("where", label, cls, k))
        where.setdefault(label, {}).setdefault(cls, {})[k] = s.mean(key)
        if k == "own_class":
            where[label][cls]["queries"] = int(s.moments[key][1])
    out["where"] = where
    psa = {}
    for parts in s.keys("psa"):
        if len(parts) == 3:
            _, name, branch = parts
            psa.setdefault(name, {"mode": s.info.get(SEP.join(("psa", name, "mode")))})[branch] = \
                _distribution(s, SEP.join(parts))
    if psa:
        out["psa"] = psa
    return out
