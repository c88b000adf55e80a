"""Two models' attention at one pixel, and their difference: A, B and A − B for every module they share (or their
one module each), on their common grid or, where the grids differ, on the image grid — with the statistics of
both and their deltas. `vizattn diff` and the exports take their files from here."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vizattn.errors import VizattnError
from vizattn.explore import Forward, Panel, panels


@dataclass
class Difference:
    """One pair of maps and their difference."""

    a: Panel
    b: Panel
    delta: np.ndarray  # A − B on `grid`
    grid: str  # "common" (the modules' own grid) or "image" (the grids differ: both spread to image pixels)
    stats_a: dict = field(default_factory=dict)
    stats_b: dict = field(default_factory=dict)

    @property
    def maps(self) -> tuple[np.ndarray, np.ndarray]:
        """A and B on the grid the difference was taken on."""
        if self.grid == "common":
            return self.a.grid_map, self.b.grid_map
        return self.a.image_map, self.b.image_map

    @property
    def where(self) -> str:
        """What the page and the figure say about the grid."""
        (ha, wa), (hb, wb) = self.a.grid_map.shape, self.b.grid_map.shape
        if self.grid == "common":
            return f"on their common {ha}×{wa} grid"
        h, w = self.a.image_map.shape
        return f"on the {h}×{w} image grid (their grids differ: {ha}×{wa} and {hb}×{wb})"

    @property
    def deltas(self) -> dict:
        return {k: self.stats_a[k] - self.stats_b[k] for k in self.stats_a if k in self.stats_b}


def pairs(fw_a: Forward, fw_b: Forward) -> list[tuple[str, str]]:
    """Which module of A is compared with which of B: the modules both have (two checkpoints of one architecture),
    else each model's one module; anything else is ambiguous and refused."""
    shared = [m for m in fw_a.records if m in fw_b.records]
    if shared:
        return [(m, m) for m in shared]
    if len(fw_a.records) == 1 and len(fw_b.records) == 1:
        return [(next(iter(fw_a.records)), next(iter(fw_b.records)))]
    if not fw_a.records or not fw_b.records:
        raise VizattnError("One of the two models has no attention module vizattn can read, so there is no "
                           "difference to show; pick two models with attention.")
    raise VizattnError(f"The two models share no module name and have {len(fw_a.records)} and {len(fw_b.records)} "
                       "attention modules; compare two checkpoints of one architecture, or two one-module models.")


def check_comparable(fw_a: Forward, fw_b: Forward, names: tuple[str, str]) -> None:
    if fw_a.shape != fw_b.shape:
        raise VizattnError(f"'{names[0]}' and '{names[1]}' saw images of different sizes ({fw_a.shape} vs {fw_b.shape}); "
                           "a difference needs one image.")
    if list(fw_a.classes) != list(fw_b.classes):
        raise VizattnError(f"'{names[0]}' and '{names[1]}' predict different classes ({len(fw_a.classes)} vs "
                           f"{len(fw_b.classes)}); their per-class statistics cannot be compared. Diff two models "
                           "of one label set.")


def pair_panels(fw_a: Forward, fw_b: Forward, y: int, x: int, view: str | None = None,
                names=("A", "B")) -> list[tuple[Panel, Panel]]:
    """(A's panel, B's panel) at pixel (y, x) for every module pair (`pairs`), in each module's `view` where it has
    one, else its main view."""
    check_comparable(fw_a, fw_b, names)
    out = []
    for ma, mb in pairs(fw_a, fw_b):
        va = view if view in fw_a.records[ma].views() else fw_a.records[ma].default_view
        vb = view if view in fw_b.records[mb].views() else fw_b.records[mb].default_view
        out.append((next(p for p in panels(fw_a, y, x, {ma: [va]}) if p.module == ma),
                    next(p for p in panels(fw_b, y, x, {mb: [vb]}) if p.module == mb)))
    return out


def live_grid_args(fw_a: Forward, fw_b: Forward, names: tuple[str, str], pixel: tuple[int, int], opts: dict,
                   title: str = "", base: str | None = None, factors=None) -> dict:
    """The panel grid's args for A, B and A − B, one row of three per module pair, where the browser computes the
    difference from A's and B's own rows as the pointer moves (hover.js `difference`: diverging around 0 on a
    symmetric scale). `opts`: cmap, norm, alpha, clip, under; `factors(panels)`: the A and B panels' factors, from
    the caller's cache (default: `live_factors`, packed here). Refused, in one sentence, where a pair's grids
    differ or the factors pass the browser's budget."""
    from vizattn.viz.panel_grid import grid_args, live_factors

    pp = pair_panels(fw_a, fw_b, *pixel, None, names)
    for pa, pb in pp:
        if pa.grid_shape != pb.grid_shape:
            raise VizattnError(f"{pa.module} of '{names[0]}' and {pb.module} of '{names[1]}' attend on different grids "
                               f"({pa.grid_shape} and {pb.grid_shape}); the live difference needs one grid: "
                               "`vizattn diff` takes A − B on the image grid.")
    flat = [p for pair in pp for p in pair]
    live = (factors or live_factors)(flat)
    if not live:
        raise VizattnError("These two models' maps are too large for the browser to follow the pointer (or of a kind "
                           "it cannot compute); `vizattn diff` writes A, B and A − B at one pixel.")
    titles = [t for pa, pb in pp for t in (f"A: {names[0]} · {pa.module} · {pa.view}",
                                           f"B: {names[1]} · {pb.module} · {pb.view}")]
    args = grid_args(fw_a.image, flat, titles, opts["cmap"], opts["norm"], opts["alpha"], 3, title, base=base,
                     clip=opts["clip"], under=opts["under"], live=live)
    shown, specs = [], []
    for k, (pa, _) in enumerate(pp):
        a, b = args["panels"][2 * k], args["panels"][2 * k + 1]
        h, w = pa.grid_shape
        shown += [a, b, dict(title=f"A − B · {pa.module}", kind="diff",
                             subtitle=f"on their common {h}×{w} grid · red: A attends more, blue: B",
                             grid=a["grid"], keys=None)]
        sa = args["specs"][2 * k]
        specs += [sa, args["specs"][2 * k + 1], {"f": "diff", "a": 3 * k, "b": 3 * k + 1, "grid": sa["grid"],
                                                 "out": sa["out"]}]
    return dict(args, panels=shown, specs=specs)


def differences(fw_a: Forward, fw_b: Forward, y: int, x: int, view: str | None = None, names=("A", "B"),
                labels: np.ndarray | None = None, instances: np.ndarray | None = None) -> list[Difference]:
    """A, B and A − B at pixel (y, x) for every module pair, in each module's `view` where it has one, else its
    main view. Statistics from `labels` (ground truth) or A's prediction."""
    from vizattn.analysis.stats import panel_statistics

    truth = labels if labels is not None else fw_a.prediction
    out = []
    for pa, pb in pair_panels(fw_a, fw_b, y, x, view, names):
        common = pa.grid_map.shape == pb.grid_map.shape
        delta = pa.grid_map - pb.grid_map if common else pa.image_map - pb.image_map
        d = Difference(pa, pb, delta, "common" if common else "image")
        if pa.distribution and pb.distribution:
            d.stats_a, d.stats_b = panel_statistics(pa, truth, instances), panel_statistics(pb, truth, instances)
        out.append(d)
    return out


def diff_figure(image: np.ndarray, diffs: list[Difference], names: tuple[str, str], pixel: tuple[int, int],
                shas: tuple[str | None, str | None] = (None, None), under: str = "dimmed photo"):
    """One row per pair: A and B on one sequential scale, A − B on a diverging scale centred on 0 with a
    symmetric colorbar; the figure names both models (and their sha256), the view, the pixel and the grid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vizattn.viz.overlay import backdrop

    n = len(diffs)
    fig, axes = plt.subplots(n, 3, figsize=(11, 3.6 * n + 0.9), squeeze=False)
    base = backdrop(image, under)
    h, w = image.shape[:2]
    for row, d in zip(axes, diffs):
        ma, mb = d.maps
        top = float(max(ma.max(), mb.max(), 1e-12))
        span = float(max(np.abs(d.delta).max(), 1e-12))
        for ax, m, title, cmap, lo, hi in ((row[0], ma, f"A: {names[0]} · {d.a.module} · {d.a.view}", "inferno", 0.0, top),
                                           (row[1], mb, f"B: {names[1]} · {d.b.module} · {d.b.view}", "inferno", 0.0, top),
                                           (row[2], d.delta, "A − B", "RdBu_r", -span, span)):
            ax.imshow(base, extent=(0, w, h, 0))
            im = ax.imshow(m, cmap=cmap, vmin=lo, vmax=hi, alpha=0.75, extent=(0, w, h, 0), interpolation="nearest")
            ax.plot([pixel[1] + 0.5], [pixel[0] + 0.5], "+", color="black" if cmap == "RdBu_r" else "white",
                    ms=10, mew=2)
            ax.set_title(title, fontsize=8)
            ax.set_xticks([]), ax.set_yticks([])
            bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
            bar.ax.tick_params(labelsize=7)
            bar.set_label("weight" if cmap != "RdBu_r" else "A − B (0 at white)", fontsize=7)
        row[2].set_xlabel(d.where, fontsize=7)
    sha = " · ".join(f"{n} sha256 {s[:12]}…" for n, s in zip(names, shas) if s)
    fig.suptitle(f"Attention at pixel {pixel}: {names[0]} (A) vs {names[1]} (B)" + (f"\n{sha}" if sha else ""),
                 fontsize=9)
    fig.tight_layout()
    return fig


def diff_files(fw_a: Forward, fw_b: Forward, names: tuple[str, str], pixel: tuple[int, int], view: str | None,
               shas: tuple[str | None, str | None], formats=("png", "npz", "json"), labels=None,
               instances=None) -> tuple[dict[str, bytes], list[Difference]]:
    """file name -> bytes: the figure (PNG/SVG/PDF), the maps (NPZ: a, b and a_minus_b per pair) and the
    metadata (JSON: both models, their sha256, the grid each difference was taken on, statistics and deltas)."""
    import io

    from vizattn import jsonsafe
    from vizattn.sources import safe_name
    from vizattn.viz.figures import FORMATS, figure_bytes

    diffs = differences(fw_a, fw_b, *pixel, view, names, labels, instances)
    stem = f"diff_{safe_name(names[0])}_vs_{safe_name(names[1])}_y{pixel[0]}x{pixel[1]}"
    files: dict[str, bytes] = {}
    unknown = sorted(set(formats) - {*FORMATS, "npz", "json"})
    if unknown:
        raise VizattnError(f"Unknown diff format {', '.join(unknown)}; choose from png, svg, pdf, npz, json.")
    if any(f in FORMATS for f in formats):
        fig = diff_figure(fw_a.image, diffs, names, pixel, shas)
        for fmt in (f for f in FORMATS if f in formats):
            files[f"{stem}.{fmt}"] = figure_bytes(fig, fmt)
    if "npz" in formats:
        arrays = {}
        for i, d in enumerate(diffs):
            ma, mb = d.maps
            arrays.update({f"{i}_a": ma, f"{i}_b": mb, f"{i}_a_minus_b": d.delta})
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        files[f"{stem}.npz"] = buf.getvalue()
    if "json" in formats:
        meta = {"models": {"A": {"name": names[0], "sha256": shas[0]}, "B": {"name": names[1], "sha256": shas[1]}},
                "pixel": list(pixel),
                "pairs": [{"npz_prefix": str(i), "A": [d.a.module, d.a.view], "B": [d.b.module, d.b.view],
                           "grid": d.grid, "where": d.where, "statistics_A": d.stats_a, "statistics_B": d.stats_b,
                           "deltas": d.deltas, "max_abs_delta": float(np.abs(d.delta).max())}
                          for i, d in enumerate(diffs)]}
        files[f"{stem}.json"] = jsonsafe.dumps(meta, indent=2).encode()
    return files, diffs


def export_diff(models: list[str], image: str, pixel: tuple[int, int], view: str | None, out,
                formats=("png", "npz", "json")):
    """`vizattn diff`: load both models, run both on the image, write the files into `out`."""
    from vizattn.explore import run_model
    from vizattn.outputs import check_names, output_dir, write_into
    from vizattn.sources import image_source
    from vizattn.zoo import load

    if len(models) != 2:
        raise VizattnError(f"vizattn diff takes exactly two models (--models A B), not {len(models)}.")
    src = image_source(image)
    loaded = [load(m) for m in models]
    fws = [run_model(m, src.image) for m in loaded]
    names = tuple(m.provenance.name for m in loaded)
    labels = src.labels if src.labels is not None and all(m.provenance.scene_trained for m in loaded) else None
    files, diffs = diff_files(*fws, names, pixel, view, tuple(m.provenance.sha256 for m in loaded), formats, labels,
                              src.instances if labels is not None else None)
    folder = output_dir(out)
    check_names(folder, files)
    paths = [write_into(folder, name, data) for name, data in files.items()]
    lines = [f"{d.a.module} · {d.a.view} (A) − {d.b.module} · {d.b.view} (B) {d.where}: max |A − B| "
             f"{float(np.abs(d.delta).max()):.3g}" for d in diffs]
    return paths, lines
