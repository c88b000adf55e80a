"""Exports of a query (one model) or a comparison (several models): figures as PNG/SVG/PDF, the live panel grid
as one self-contained HTML file, the raw maps as NPZ and the metadata as JSON. The app's download buttons, the
`vizattn query` / `vizattn compare` commands and the notebook widget's `export` all take their bytes from here."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vizattn import jsonsafe
from vizattn.errors import VizattnError
from vizattn.explore import Forward, Panel, panels, run_model
from vizattn.outputs import check_names, output_dir, write_into  # noqa: F401 (output_dir: re-exported)
from vizattn.sources import DEFAULT_SCENE_SIZE, ImageSource, digest, image_source, safe_name  # noqa: F401 (re-exported)
from vizattn.viz.figures import (EXPORT_FORMATS, FIGURE_DEFAULTS, FORMATS, figure_bytes, maps_npz, matplotlib_grid,
                                 panel_scales, plotly_grid, scale_heading)
from vizattn.viz.hover import BUDGET
from vizattn.viz.overlay import NEARLY_UNIFORM, RELATIVE, RELATIVE_CMAP, RELATIVE_SPAN
from vizattn.viz.panel_grid import grid_args, standalone_html

STATIC_HTML = (f"This grid's attention factors do not fit the {BUDGET >> 20} MiB budget of a live file (or one of its "
               "maps has no in-browser formula), so this HTML is the static figure, without hover-follow.")


def main_view(forward: Forward, module: str, wanted: str | None) -> str:
    rec = forward.records[module]
    return wanted if wanted in rec.views() else rec.default_view


def base_name(model: str, image: str, pixel: tuple[int, int], view: str) -> str:
    return f"{safe_name(model)}_{image}_y{pixel[0]}x{pixel[1]}_{safe_name(view)}"


def figure_options(opts: dict | None = None) -> dict:
    """The display options a figure is drawn with: the page's (colormap `cmap`, `norm`, opacity `alpha`, `clip`
    percentile, backdrop `under`), FIGURE_DEFAULTS for any it does not give."""
    return {**FIGURE_DEFAULTS, **{k: v for k, v in (opts or {}).items() if k in FIGURE_DEFAULTS}}


@dataclass
class Export:
    """One set of panels ready to be written: what every file of it is made from."""

    image: np.ndarray
    panels: list[Panel]
    titles: list[str]
    meta: dict
    stem: str
    heading: str  # the figure's title lines: what, where, and how it is drawn
    opts: dict
    grid_title: str = ""  # the live grid's title: model(s), view and image (the pixel is added as it is pinned)
    notes: list[str] = field(default_factory=list)  # sentences about what was written (a static HTML fallback)

    def figure(self):
        """The matplotlib figure (PNG, SVG, PDF)."""
        return matplotlib_grid(self.image, self.panels, self.titles, title=self.heading, **self.opts)

    def interactive(self):
        """The plotly figure (HTML)."""
        o = self.opts
        return plotly_grid(self.image, self.panels, self.titles, o["cmap"], o["norm"], o["alpha"], title=self.heading,
                           clip=o["clip"], under=o["under"])

    def columns(self) -> int:
        return min(3, max(1, len(self.panels)))

    def grid_args(self, title: str, budget: int = BUDGET, live=None, base: str | None = None) -> dict:
        """The panel grid's args for these panels (vizattn.viz.panel_grid.grid_args), drawn as the figures are. A
        comparison's panels are titled without the prediction at one pixel: the grid also shows other pixels."""
        o = self.opts
        return grid_args(self.image, self.panels, self.meta.get("titles") or self.titles, o["cmap"], o["norm"],
                         o["alpha"], self.columns(), title, base=base, clip=o["clip"], under=o["under"], live=live,
                         budget=budget)

    def html(self, budget: int = BUDGET) -> bytes:
        """The live grid as one self-contained page; over `budget` (or with a map the browser cannot compute),
        the static plotly figure with one sentence saying so, which `notes` receives too."""
        args = self.grid_args(self.grid_title or self.heading.split("\n")[0], budget)
        if args.get("specs"):
            return standalone_html(args, self.heading.split("\n")).encode()
        self.notes.append(STATIC_HTML)
        page = self.interactive().to_html(include_plotlyjs=True, full_html=True)
        return page.replace("<body>", f'<body>\n<p style="font-family: sans-serif">{STATIC_HTML}</p>', 1).encode()

    def files(self, formats=EXPORT_FORMATS) -> dict[str, bytes]:
        """file name -> bytes for each of `formats` (EXPORT_FORMATS); only what is asked is drawn."""
        unknown = sorted(set(formats) - set(EXPORT_FORMATS))
        if unknown:
            raise VizattnError(f"Unknown export format {', '.join(unknown)}; choose from {', '.join(EXPORT_FORMATS)}.")
        files = {}
        figures = [f for f in FORMATS if f in formats]
        if figures:
            fig = self.figure()
            for fmt in figures:
                files[f"{self.stem}.{fmt}"] = figure_bytes(fig, fmt)
        if "html" in formats:
            files[f"{self.stem}.html"] = self.html()
        if "npz" in formats:
            files[f"{self.stem}.npz"] = maps_npz(self.panels, self.meta)
        if "json" in formats:
            files[f"{self.stem}.json"] = jsonsafe.dumps(self.meta, indent=2).encode()
        return files


def _figure_meta(opts: dict) -> dict:
    """How the exported figures were drawn and by what: the same display options as every file of the export."""
    from vizattn import __version__

    meta = {"vizattn_version": __version__, "colormap": opts["cmap"], "normalisation": opts["norm"],
            "backdrop": opts["under"], "opacity": float(opts["alpha"]), "clip_percentile": float(opts["clip"]),
            "uniform_level": "1/N for a distribution over N grid cells; colorbars mark it",
            "nearly_uniform_when": f"max |w·N − 1| < {NEARLY_UNIFORM:g}",
            "image_maps": "image-size maps are the grid maps upsampled (nearest) and keep the grid's weights per "
                          "cell, so they do not sum to 1; the __grid arrays are the distributions"}
    if opts["norm"] == RELATIVE:
        meta["relative_to_uniform"] = {"colormap": RELATIVE_CMAP, "scale": "log of w·N",
                                       "range": [1 / RELATIVE_SPAN, RELATIVE_SPAN],
                                       "gates": f"absolute 0…1 in {opts['cmap']}",
                                       "clip_percentile": "not applied: the scale is fixed"}
    return meta


def panel_meta(p: Panel, model: str, sc: dict | None = None) -> dict:
    """What a panel is and, with its scale `sc` (figures.panel_scales), how it was coloured."""
    meta = {"model": model, "module": p.module, "kind": p.kind, "view": p.view, "pixel_yx": list(p.pixel),
            "cell_yx": list(p.cell), "grid": list(p.grid_map.shape), "query_independent": p.query_independent,
            "sums_to_one": p.distribution, "padding_share": p.outside_share, "note": p.note,
            "max_weight": float(p.grid_map.max())}
    if sc is not None:
        u = sc["uniform"]
        meta.update(uniform_level=u, max_ratio_to_uniform=float(p.grid_map.max() / u) if u else None,
                    nearly_uniform=sc["nearly_uniform"], colorbar=[float(v) for v in sc["range"]],
                    colorbar_colormap=sc["cmap"], colorbar_log=sc["log"], colorbar_means=sc["caption"])
    return meta


def query_export(model_name: str, forward: Forward, src: ImageSource, pixel, view: str | None,
                 sha256: str | None = None, opts: dict | None = None, model=None, layer=None, details=None) -> Export:
    """One model's panels at `pixel`, drawn with the display options `opts` (FIGURE_DEFAULTS for any not given).
    `view` "rollout" or "relevance": the layers composed for the pixel (relevance needs `model`, or its rows for
    this pixel in `details`). `layer`: a
    `vizattn.layers.LayerGroup`, its panels only, with its short titles (the page shows a transformer one layer
    at a time, and exports what it shows)."""
    from vizattn.analysis.composed import COMPOSED_VIEWS, composed_panel

    titles = None
    if forward.records and view in COMPOSED_VIEWS:
        chosen = [composed_panel(forward, *pixel, view, model, details)]
    elif layer is not None:
        by = {(p.module, p.view): p for p in panels(forward, *pixel)}
        entries = [e for e in layer.entries if (e.name, e.view) in by]
        chosen, titles, view = [by[e.name, e.view] for e in entries], [e.title for e in entries], layer.label
    else:
        chosen = [p for p in panels(forward, *pixel) if view is None or p.view == view]
    if not forward.records:
        raise VizattnError(f"'{model_name}' has no attention module to show (fcn is the baseline without one); "
                           "choose a model with one.")
    if not chosen:
        raise VizattnError(f"No module of '{model_name}' has a view '{view}'; leave --view out to see every view.")
    opts = figure_options(opts)
    scales = panel_scales(chosen, opts["cmap"], opts["norm"], opts["clip"])
    pixel = tuple(int(v) for v in pixel)
    heading = (f"{prediction_line(model_name, forward, pixel)} · {view or 'all views'} · {src.name}\n"
               + scale_heading(opts["norm"], opts["clip"], opts["cmap"], opts["alpha"], opts["under"]))
    meta = {**_figure_meta(opts), "image": src.name, "image_shape": list(forward.shape), "pixel_yx": list(pixel),
            "view": view or "all", "figure_title": heading.split("\n"),
            "panels": [panel_meta(p, model_name, sc) for p, sc in zip(chosen, scales)], "classes": list(forward.classes),
            "prediction_at_pixel": int(forward.prediction[pixel]),
            "predicted_class": forward.classes[int(forward.prediction[pixel])],
            "confidence_at_pixel": float(forward.confidence[pixel]) if forward.confidence is not None else None,
            "model_sha256": sha256}
    return Export(forward.image, chosen, titles or [p.title for p in chosen], meta,
                  base_name(model_name, src.name, pixel, view or "all"), heading, opts,
                  f"{model_name} · {view or 'all views'} · {src.name}")


def query_files(model_name: str, forward: Forward, src: ImageSource, pixel, view: str | None,
                sha256: str | None = None, formats=EXPORT_FORMATS, opts: dict | None = None, model=None) -> dict[str, bytes]:
    """One model's panels at `pixel` as files; `sha256`: the model's weights, named in the metadata; `opts`: the
    display options (the page's), so that every file shows what the page shows; `model`: for --view relevance."""
    return query_export(model_name, forward, src, pixel, view, sha256, opts, model).files(formats)


def compare_panels(forwards: dict[str, Forward], pixel, view: str | None) -> tuple[list[Panel], list[str], list[str]]:
    """One panel per module of every model (its main view, or `view`), each titled once "model · view" (the
    module named too when a model has several), and what each model predicts at the pixel."""
    chosen, titles, predictions = [], [], []
    for model, fw in forwards.items():
        # one view per module, all modules in one pass (a module not named in `views` would get all its views)
        for p in panels(fw, *pixel, views={m: [main_view(fw, m, view)] for m in fw.records}):
            chosen.append(p)
            titles.append(f"{model} · {p.module} · {p.view}" if len(fw.records) > 1 else f"{model} · {p.view}")
            predictions.append(f"predicts {fw.classes[fw.prediction[pixel]]} ({fw.confidence[pixel]:.0%})"
                               if fw.confidence is not None else f"predicts {fw.classes[fw.prediction[pixel]]}")
    return chosen, titles, predictions


def compare_export(forwards: dict[str, Forward], src: ImageSource, pixel, view: str | None,
                   sha256: dict[str, str | None] | None = None, opts: dict | None = None) -> Export:
    """Several models' main views at `pixel`, drawn with the display options `opts`."""
    chosen, titles, predictions = compare_panels(forwards, pixel, view)
    if not chosen:
        raise VizattnError("None of these models has an attention module; add one that does (fcn has none).")
    opts = figure_options(opts)
    scales = panel_scales(chosen, opts["cmap"], opts["norm"], opts["clip"])
    pixel = tuple(int(v) for v in pixel)
    heading = (f"{len(forwards)} models · {view or 'main views'} · pixel {pixel} · {src.name}\n"
               + scale_heading(opts["norm"], opts["clip"], opts["cmap"], opts["alpha"], opts["under"]))
    meta = {**_figure_meta(opts), "image": src.name, "image_shape": list(src.image.shape[:2]), "pixel_yx": list(pixel),
            "view": view or "main", "figure_title": heading.split("\n"), "titles": titles,
            "panels": [panel_meta(p, t.split(" · ")[0], sc) for p, t, sc in zip(chosen, titles, scales)],
            "predicted_class": {m: fw.classes[int(fw.prediction[pixel])] for m, fw in forwards.items()},
            "model_sha256": {m: (sha256 or {}).get(m) for m in forwards}}
    meta["figure_titles"] = [f"{t} · {pr}" for t, pr in zip(titles, predictions)]
    return Export(src.image, chosen, meta["figure_titles"], meta, base_name("compare", src.name, pixel, view or "main"),
                  heading, opts, f"{' vs '.join(forwards)} · {view or 'main views'} · {src.name}")


def compare_files(forwards: dict[str, Forward], src: ImageSource, pixel, view: str | None,
                  sha256: dict[str, str | None] | None = None, formats=EXPORT_FORMATS,
                  opts: dict | None = None) -> dict[str, bytes]:
    """Several models' main views at `pixel` as one set of files; `sha256`: model name -> its weights' hash."""
    return compare_export(forwards, src, pixel, view, sha256, opts).files(formats)


def _write(files: dict[str, bytes], out: Path) -> list[Path]:
    out = output_dir(out)
    check_names(out, files)  # every file first, so a refusal leaves the folder as it was
    return [write_into(out, name, data) for name, data in files.items()]


def forward_with_bar(model, image: np.ndarray, label: str) -> Forward:
    """run_model with a tqdm bar that advances with the forward (slide crops of a large checkpoint)."""
    from tqdm import tqdm

    bars = []  # made on the first report: models that report nothing (ours take milliseconds) print nothing

    def progress(done, total):
        if not bars:
            bars.append(tqdm(desc=f"forward {label}", total=total, unit="step", leave=False))
        bars[0].n = done
        bars[0].refresh()

    try:
        return run_model(model, image, progress)
    finally:
        for bar in bars:
            bar.close()


def prediction_line(name: str, forward: Forward, pixel) -> str:
    """'criss_cross predicts terrain (55%) at pixel (120, 64)': what the CLI prints beside the files."""
    cls = forward.classes[int(forward.prediction[pixel])]
    conf = f" ({forward.confidence[pixel]:.0%})" if forward.confidence is not None else ""
    return f"{name} predicts {cls}{conf} at pixel {tuple(int(v) for v in pixel)}"


def export_query(model: str, image: str, pixel, view: str | None, out: Path, head: str | None = None,
                 formats=EXPORT_FORMATS) -> tuple[list[Path], list[str]]:
    """(files written, the prediction line)."""
    from vizattn.zoo import load

    src = image_source(image)
    net = load(model, head=head)
    fw = forward_with_bar(net, src.image, Path(model).stem)
    files = query_files(Path(model).stem, fw, src, pixel, view, net.provenance.sha256, formats)
    return _write(files, out), [prediction_line(Path(model).stem, fw, pixel)]


def export_compare(models: list[str], image: str, pixel, view: str | None, out: Path,
                   formats=EXPORT_FORMATS) -> tuple[list[Path], list[str]]:
    """(files written, one prediction line per model)."""
    from vizattn.zoo import load

    src = image_source(image)
    nets = {Path(m).stem: load(m) for m in models}
    forwards = {n: forward_with_bar(net, src.image, n) for n, net in nets.items()}
    files = compare_files(forwards, src, pixel, view, {n: net.provenance.sha256 for n, net in nets.items()},
                          formats)
    return _write(files, out), [prediction_line(n, fw, pixel) for n, fw in forwards.items()]
