"""One matplotlib figure per paper analysis: numbers and arrays in, a Figure out (Agg, no browser)."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from vizattn.statnames import paired_name
from vizattn.viz.overlay import heat_overlay


def _bars(ax, labels, series: dict[str, list[float]], ylabel: str):
    width = 0.8 / max(1, len(series))
    x = np.arange(len(labels))
    for i, (name, values) in enumerate(series.items()):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, label=name)
    ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7)


def query_independence_figure(ours: dict[str, dict[str, float]], paper: dict[str, dict[str, float]]) -> Figure:
    """Grouped bars of the three cosine distances per module, the paper's rows beside ours."""
    fig = Figure(figsize=(8, 3.6), dpi=110)
    ax = fig.add_subplot()
    rows = {**{f"paper: {k}": v for k, v in paper.items()}, **ours}
    _bars(ax, list(rows), {c: [rows[r][c] for r in rows] for c in ("input", "attention", "output")},
          "mean cosine distance")
    ax.set_title("Query-independence (GCNet): distances between positions", fontsize=10)
    fig.tight_layout()
    return fig


def query_maps_figure(image: np.ndarray, maps: list[np.ndarray], points: list[tuple[int, int]], title: str) -> Figure:
    """The GCNet figure: the maps of several query points of one image, side by side."""
    fig = Figure(figsize=(2.4 * len(maps), 2.7), dpi=110)
    for i, (m, p) in enumerate(zip(maps, points)):
        ax = fig.add_subplot(1, len(maps), i + 1)
        ax.imshow(heat_overlay(image, m, 0.65, pixel=p))
        ax.set_title(f"query {p}", fontsize=8)
        ax.set_axis_off()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def shares_figure(shares: dict[str, dict[str, float]]) -> Figure:
    fig = Figure(figsize=(6, 3.2), dpi=110)
    ax = fig.add_subplot()
    names = list(shares)
    _bars(ax, names, {"unary": [shares[n]["unary"] for n in names], "binary": [shares[n]["binary"] for n in names]},
          "weight share")
    ax.set_title("Unary (self) vs binary (others) weight (LESA)", fontsize=10)
    fig.tight_layout()
    return fig


def coverage_figure(coverage: dict[str, float], miou_by_loops: dict[int, float]) -> Figure:
    fig = Figure(figsize=(7.5, 3), dpi=110)
    ax = fig.add_subplot(1, 2, 1)
    ax.bar(list(coverage), list(coverage.values()), color=["tab:blue", "tab:orange"])
    ax.set_ylim(0, 1.05)
    ax.set_title("share of positions reached", fontsize=9)
    ax = fig.add_subplot(1, 2, 2)
    ax.plot(list(miou_by_loops), list(miou_by_loops.values()), "o-")
    ax.set_xticks(list(miou_by_loops))
    ax.set_xlabel("loops R at evaluation")
    ax.set_ylabel("mIoU")
    ax.set_title("criss-cross model, R = 1, 2, 3", fontsize=9)
    fig.tight_layout()
    return fig


def isa_figure(image: np.ndarray, maps: dict[str, np.ndarray], pixel: tuple[int, int], distances: dict) -> Figure:
    fig = Figure(figsize=(2.4 * len(maps), 2.9), dpi=110)
    for i, (name, m) in enumerate(maps.items()):
        ax = fig.add_subplot(1, len(maps), i + 1)
        ax.imshow(heat_overlay(image, m, 0.65, pixel=pixel))
        ax.set_title(name, fontsize=8)
        ax.set_axis_off()
    fig.suptitle(f"ISA factorisation vs NL at {pixel}: mean TV {distances['tv']:.2f}, "
                 f"JS {distances['js']:.2f} (uniform vs NL: TV {distances['tv_uniform_vs_b']:.2f})", fontsize=9)
    fig.tight_layout()
    return fig


def efficiency_figure(rows: list[dict], claims: dict[str, float]) -> Figure:
    """Time, memory and GFLOPs against grid size per module; claimed ratios drawn as reference lines."""
    fig = Figure(figsize=(12, 3.6), dpi=110)
    modules = sorted({r["module"] for r in rows})
    for i, (key, label) in enumerate((("time_ms", "time ms"), ("peak_mib", "peak MiB"), ("gflops", "GFLOPs"))):
        ax = fig.add_subplot(1, 3, i + 1)
        for m in modules:
            pts = sorted((r["positions"], r[key]) for r in rows if r["module"] == m and r[key] is not None)
            if pts:
                ax.plot(*zip(*pts), "o-", label=m, markersize=3)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("positions N (ANN set-up, 2048 ch)")
        ax.set_title(label, fontsize=9)
    nl = sorted((r["positions"], r["time_ms"]) for r in rows if r["module"] == "nonlocal (dense)")
    if nl and "apnb_speedup" in claims:
        fig.axes[0].plot([p for p, _ in nl], [t / claims["apnb_speedup"] for _, t in nl], "k--", label="NL / 6 (ANN claim)")
    nlm = sorted((r["positions"], r["peak_mib"]) for r in rows if r["module"] == "nonlocal (dense)")
    if nlm and "apnb_memory" in claims:
        fig.axes[1].plot([p for p, _ in nlm], [m / claims["apnb_memory"] for _, m in nlm], "k--", label="NL / 28 (ANN claim)")
    fig.axes[0].legend(fontsize=6)
    fig.axes[1].legend(fontsize=6)
    fig.tight_layout()
    return fig


def psa_figure(summaries: dict[str, dict]) -> Figure:
    fig = Figure(figsize=(8, 3.2 + 0.22 * len(summaries)), dpi=110)
    for i, part in enumerate(("channel", "spatial")):
        ax = fig.add_subplot(1, 2, i + 1)
        for name, s in summaries.items():
            edges = np.array(s[part]["edges"])
            hist = np.array(s[part]["histogram"], float)
            ax.step(edges[:-1], hist / max(hist.sum(), 1), where="post",
                    label=f"{name} (saturated {s[part]['saturated_share']:.0%})")
        ax.set_title(f"PSA {part} weights", fontsize=9)
        ax.set_xlabel("weight", fontsize=8)
        ax.set_ylabel("share of weights" if i == 0 else "", fontsize=8)
        # below the axes, so no curve is hidden behind it
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)
    fig.tight_layout()
    return fig


def where_figure(table: dict[str, dict[str, dict[str, float]]], classes: list[str], key: str) -> Figure:
    modules = list(table)
    data = np.array([[table[m].get(c, {}).get(key, np.nan) for c in classes] for m in modules])
    fig = Figure(figsize=(2 + 0.8 * len(classes), 1.6 + 0.35 * len(modules)), dpi=110)  # room for the rotated class names
    ax = fig.add_subplot()
    im = ax.imshow(data, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(classes)), classes, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(modules)), modules, fontsize=8)
    lo, hi = np.nanmin(data), np.nanmax(data)
    for (i, j), v in np.ndenumerate(data):
        if not np.isnan(v):  # dark text on the bright end of viridis, white on the dark end
            bright = (v - lo) / (hi - lo or 1.0) > 0.6
            ax.text(j, i, f"{v:.2f}" if v < 10 else f"{v:.0f}", ha="center", va="center", fontsize=7,
                    color="k" if bright else "w")
    fig.colorbar(im, ax=ax)
    ax.set_title(f"{key} by query class", fontsize=9)
    fig.tight_layout()
    return fig


ATTRIBUTION_NAMES = {"integrated_gradients": "Integrated Gradients", "saliency": "Saliency",
                     "layer_gradcam": "LayerGradCam"}


def attribution_figure(image: np.ndarray, attention: np.ndarray, maps: dict[str, np.ndarray], pixel, rho: dict,
                       attention_title: str = "attention", cmap: str = "inferno", under: str = "dimmed photo",
                       columns: int | None = None) -> Figure:
    """The attention map beside each attribution of the query pixel, every panel over the dimmed photo (so the
    colormap reads at full strength) with its own colorbar: each map is scaled to its own top. `columns`: panels
    per row (default: all in one row)."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    from vizattn.explore import to_image
    from vizattn.viz.overlay import scale_range

    panels = {attention_title: attention, **maps}
    h, w = image.shape[:2]
    cols = max(1, min(columns or len(panels), len(panels)))
    rows = -(-len(panels) // cols)
    fig = Figure(figsize=(2.6 * cols, rows * (2.4 * h / w + 1.2)), dpi=110)  # titles above, colorbars below
    for i, (name, m) in enumerate(panels.items()):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.imshow(heat_overlay(image, to_image(m, (h, w)), 0.9, cmap, pixel=pixel, under=under))
        title = ATTRIBUTION_NAMES.get(name, name)
        ax.set_title(title if name == attention_title else f"{title}\nρ = {rho.get(name, float('nan')):.2f} with attention",
                     fontsize=8)
        ax.set_axis_off()
        lo, hi = scale_range(m)
        bar = fig.colorbar(ScalarMappable(Normalize(lo, hi), cmap), ax=ax, orientation="horizontal", fraction=0.06,
                           pad=0.03)
        bar.ax.tick_params(labelsize=7)
        bar.set_label("attention weight" if name == attention_title else "|attribution|", fontsize=7)
    fig.tight_layout()
    return fig


def _deltas(ax, rows: list[dict], labels: list[str], title: str) -> None:
    y = np.arange(len(rows))[::-1]
    delta = np.array([p["delta"] for p in rows])
    err = np.array([[p["delta"] - p["ci_low"] for p in rows], [p["ci_high"] - p["delta"] for p in rows]])
    ax.errorbar(delta, y, xerr=np.clip(err, 0, None), fmt="o", color="#1f4e9c", ecolor="#6b8fd1", capsize=3,
                markersize=4)
    ax.axvline(0.0, color="0.4", linewidth=0.8, linestyle="--")
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_title(title, fontsize=9)
    ax.tick_params(axis="x", labelsize=8)


def paired_figure(whole: list[dict], model_a: str, model_b: str) -> Figure:
    """Mean delta A − B over images with its 95% interval as whiskers, and a line at 0: one panel for the
    statistics without a query class (a row each), then one per class statistic (a row per class), each on its own
    scale. `whole`: paired.parquet's rows of the whole models (mean over modules)."""
    plain = [p for p in whole if not p["class"]]
    by_class = {}
    for p in whole:
        if p["class"]:
            by_class.setdefault(p["statistic"], []).append(p)
    stats = list(by_class)
    cols = 1 if len(stats) < 2 else 2
    lines = [stats[i : i + cols] for i in range(0, len(stats), cols)]
    heights = ([len(plain) + 1.5] if plain else []) + [max(len(by_class[s]) for s in line) + 1.5 for line in lines]
    fig = Figure(figsize=(6.5 * cols, 0.9 + 0.3 * sum(heights)), dpi=110)
    grid = fig.add_gridspec(len(heights), cols, height_ratios=heights)
    if plain:
        _deltas(fig.add_subplot(grid[0, :]), plain, [f"{paired_name(p['statistic'])} (n={p['images']})" for p in plain],
                "statistics without a query class")
    for r, line in enumerate(lines, 1 if plain else 0):
        for c, stat in enumerate(line):
            rows = by_class[stat]
            _deltas(fig.add_subplot(grid[r, c]), rows, [f"{p['class']} (n={p['images']})" for p in rows],
                    paired_name(stat))
    fig.suptitle(f"{model_a} − {model_b}: mean over images of the per-image difference (n = images with a value), "
                 "95% bootstrap interval",
                 fontsize=10)
    fig.tight_layout()
    return fig
