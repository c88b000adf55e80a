"""The live panel grid in a notebook: `vizattn.show(model, image)` returns an anywidget whose front end is the
app's (vizattn/viz/panel_grid_frontend/: hover-follow, click-to-pin, colorbars), with the pinned pixel and the
display options as traits, the records as `capture`, and `export` writing the files the app and CLI write.

Models and images are resolved as the CLI resolves them (vizattn.zoo.load, vizattn.sources.image_source), before
any widget exists: a bad one raises one VizattnError sentence in the cell, never a traceback inside the widget."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from vizattn.errors import VizattnError
from vizattn.explore import check_pixel, run_model
from vizattn.export import compare_export, figure_options, output_dir, query_export, write_into
from vizattn.sources import ImageSource, image_source
from vizattn.viz.figures import EXPORT_FORMATS
from vizattn.viz.panel_grid import frontend_text, live_factors, photo_uri, split_blob, standalone_html, widget_esm

try:
    import anywidget
    import traitlets
except ImportError:  # the widget needs them; `show` says so in one sentence
    anywidget = None

#: the display options a widget takes, as the page names them (and the names a reader may also use)
ALIASES = {"opacity": "alpha", "backdrop": "under", "colormap": "cmap"}
DISPLAY = ("cmap", "norm", "alpha", "clip", "under", "columns")


def show(model, image, pixel=None, views=None, compare=None, diff=None, **display):
    """A notebook widget of `model`'s attention on `image` at `pixel` (default the centre): every module's views
    (or `views`, one name or several), and with `compare` (one model or several) each model's main views side by
    side, as `vizattn compare`; with `diff` (one model B) A, B and A − B per module pair, the difference following
    the pointer too, as `vizattn diff`. `model`/`compare`/`diff`: a bundled name, a checkpoint path, a transformers
    folder, `package.module:function` or a loaded model; `image`: a path, `scene:SEED` or an H×W(×3) array.
    `display`: cmap, norm, alpha (opacity), clip, under (backdrop), columns."""
    _one_line_errors()
    if anywidget is None:
        raise VizattnError("vizattn.show needs anywidget (and a Jupyter kernel): pip install 'vizattn[notebook]' (or anywidget).")
    if diff is not None and (compare is not None or views is not None):
        raise VizattnError("diff= shows A, B and A − B in each module's main view: give it without compare= and views=.")
    options = _display(display)
    src = _image(image)
    specs = [model] + ([diff] if diff is not None else [] if compare is None
                       else list(compare) if isinstance(compare, (list, tuple)) else [compare])
    nets = {}
    for spec in specs:
        net = _model(spec)
        name = _name(spec, net)
        while name in nets:  # the same model twice is still two panels, named apart
            name += "'"
        nets[name] = net
    forwards = {name: run_model(net, src.image) for name, net in nets.items()}
    main = next(iter(forwards.values()))
    if not any(fw.records for fw in forwards.values()):
        raise VizattnError(f"'{next(iter(nets))}' has no attention module to show (fcn is the baseline without "
                           "one); choose a model with one.")
    pixel = check_pixel(*(pixel if pixel is not None else (main.shape[0] // 2, main.shape[1] // 2)), main.shape)
    views = [views] if isinstance(views, str) else list(views) if views else None
    if diff is not None:  # two models that cannot be diffed, or grids that differ: the sentence now
        from vizattn.diff import live_grid_args

        (a, fa), (b, fb) = forwards.items()
        packed: dict = {}  # the four panels' factors, packed once here and handed to the widget

        def factors(flat):
            packed["diff"] = live_factors(flat)
            return packed["diff"]

        live_grid_args(fa, fb, (a, b), pixel, figure_options(options), factors=factors)
        return Widget(nets, forwards, src, views, options, pixel, diff=True, live=packed)
    # a view no module has, or models without attention: the sentence now, before any widget exists
    _export(nets, forwards, src, views, figure_options(options), pixel)
    return Widget(nets, forwards, src, views, options, pixel)


def _export(nets: dict, forwards: dict, src: ImageSource, views, opts: dict, pixel):
    """The Export (vizattn.export) of these panels at `pixel`: the CLI's query, or its compare with several models."""
    view = views[0] if views and len(views) == 1 else None
    if len(forwards) == 1:
        (name, fw), net = next(iter(forwards.items())), next(iter(nets.values()))
        made = query_export(name, fw, src, pixel, view, net.provenance.sha256, opts, net)
    else:
        shown = {n: fw for n, fw in forwards.items() if fw.records}
        made = compare_export(shown, src, pixel, view, {n: nets[n].provenance.sha256 for n in shown}, opts)
    if views and len(views) > 1:
        keep = [i for i, p in enumerate(made.panels) if p.view in views]
        if not keep:
            raise VizattnError(f"No module has a view {', '.join(views)}; leave views out to see every view.")
        made.panels = [made.panels[i] for i in keep]
        made.titles = [made.titles[i] for i in keep]
        made.meta["panels"] = [made.meta["panels"][i] for i in keep]
    return made


def _display(display: dict) -> dict:
    options = {}
    for key, value in display.items():
        name = ALIASES.get(key, key)
        if name not in DISPLAY:
            raise VizattnError(f"vizattn.show has no display option '{key}'; choose from {', '.join(DISPLAY)} "
                               "(or opacity, backdrop).")
        options[name] = value
    opts = figure_options(options)
    check_options(opts)
    return {**opts, "columns": int(options.get("columns", 0))}


def check_options(opts: dict) -> None:
    """One sentence for a display option the figures cannot draw with (before a widget is made or repainted)."""
    from matplotlib import colormaps

    from vizattn.viz.overlay import BACKDROPS, NORMALISATIONS

    if opts["under"] not in BACKDROPS:
        raise VizattnError(f"under='{opts['under']}' is not a backdrop; choose from {', '.join(BACKDROPS)}.")
    if opts["norm"] not in NORMALISATIONS:
        raise VizattnError(f"norm='{opts['norm']}' is not a normalisation; choose from {', '.join(NORMALISATIONS)}.")
    if opts["cmap"] not in colormaps:
        raise VizattnError(f"cmap='{opts['cmap']}' is not a matplotlib colormap; try inferno, viridis or magma.")
    if not 0 <= float(opts["alpha"]) <= 1 or not 0 < float(opts["clip"]) <= 100:
        raise VizattnError("alpha (opacity) is 0…1 and clip a percentile in (0, 100].")


def _image(image) -> ImageSource:
    """`scene:SEED` or a path through the CLI's reader; an array (or a PIL image) through the same safe reader."""
    if isinstance(image, (str, Path)):
        return image_source(str(image))
    from PIL import Image

    from vizattn.io import read_image

    try:
        arr = np.asarray(image)
        if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)) or arr.dtype.kind not in "biuf":
            raise ValueError(f"an array of shape {arr.shape} and dtype {arr.dtype}")
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[..., 0]
        if arr.dtype.kind == "f":  # floats in 0…1, as matplotlib shows them
            arr = np.round(np.clip(arr, 0, 1) * 255)
        buf = io.BytesIO()
        Image.fromarray(arr.astype(np.uint8)).save(buf, "PNG")
    except (TypeError, ValueError) as err:
        raise VizattnError(f"The image is neither a path, scene:SEED nor an H×W or H×W×3 array ({err}); "
                           "give one of those.") from None
    return ImageSource(read_image(buf.getvalue(), "array"), "array")


def _model(spec):
    import torch

    if isinstance(spec, torch.nn.Module):
        from vizattn.model import as_model

        return as_model(spec.eval())
    from vizattn.zoo import load

    if not isinstance(spec, (str, Path)):
        raise VizattnError(f"A model is a bundled name, a path, a folder or package.module:function, not a "
                           f"{type(spec).__name__}.")
    return load(spec)


def _name(spec, net) -> str:
    text = str(spec) if isinstance(spec, (str, Path)) else net.provenance.name  # a loaded model says its own
    return Path(text.split(":")[-1]).stem or text


def _one_line_errors() -> None:
    """In IPython, a VizattnError shows as its sentence: what the user did wrong is not a bug to trace."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    ip = get_ipython()
    if ip is None or getattr(ip, "_vizattn_one_line", False):
        return

    def one_line(shell, etype, value, tb, tb_offset=None):
        shell._showtraceback(etype, value, [f"{etype.__name__}: {value}"])

    ip.set_custom_exc((VizattnError,), one_line)
    ip._vizattn_one_line = True


if anywidget is not None:

    class Widget(anywidget.AnyWidget):
        """The live panel grid. `pixel` follows clicks in the browser and repaints when set here; `cmap`, `norm`,
        `alpha`, `clip`, `under`, `columns` repaint too. `capture`: the main model's records (module name ->
        AttentionRecord); `export(path, format)` writes what the app's export tab writes."""

        _esm = widget_esm()
        _css = frontend_text("style.css")
        _args = traitlets.Dict().tag(sync=True)
        _blob = traitlets.Bytes(b"").tag(sync=True)
        pixel = traitlets.Tuple(traitlets.Int(), traitlets.Int(), default_value=(0, 0)).tag(sync=True)
        cmap = traitlets.Unicode("inferno").tag(sync=True)
        norm = traitlets.Unicode("per-map").tag(sync=True)
        alpha = traitlets.Float(0.85).tag(sync=True)
        clip = traitlets.Float(100.0).tag(sync=True)
        under = traitlets.Unicode("dimmed photo").tag(sync=True)
        columns = traitlets.Int(0).tag(sync=True)  # 0: as many as the panels, up to 3

        def __init__(self, nets: dict, forwards: dict, src: ImageSource, views, options: dict, pixel,
                     diff: bool = False, live: dict | None = None):
            self.nets, self.forwards, self.src, self.views, self.diff = nets, forwards, src, views, diff
            self._live, self._photos = dict(live or {}), {}  # factors by panels, photo URIs by backdrop
            super().__init__(**options, pixel=tuple(int(v) for v in pixel))
            self._refresh()
            self.observe(lambda _: self._refresh(), names=["pixel", *DISPLAY])

        @traitlets.validate("pixel")
        def _inside(self, proposal):
            return check_pixel(*proposal["value"], self.forwards[next(iter(self.forwards))].shape)

        @property
        def capture(self) -> dict:
            """The main model's attention records (module name -> AttentionRecord), for further analysis."""
            return self.forwards[next(iter(self.forwards))].records

        @property
        def options(self) -> dict:
            return figure_options({k: getattr(self, k) for k in ("cmap", "norm", "alpha", "clip", "under")})

        @traitlets.validate("cmap", "norm", "alpha", "clip", "under")
        def _drawable(self, proposal):
            check_options({**self.options, proposal["trait"].name: proposal["value"]})
            return proposal["value"]

        def export_of(self, pixel):
            """The Export (vizattn.export) of what the widget shows at `pixel`: the CLI's query or compare."""
            return _export(self.nets, self.forwards, self.src, self.views, self.options, pixel)

        def grid_args(self) -> dict:
            """The grid's args as the app's page would send them for these panels (one front end, same numbers)."""
            under = self.options["under"]
            if under not in self._photos:
                self._photos[under] = photo_uri(self.src.image, under=under)
            if self.diff:
                return self._diff_args(self._photos[under])
            made = self.export_of(self.pixel)
            key = tuple((p.module, p.view) for p in made.panels)
            if key not in self._live:
                self._live[key] = live_factors(made.panels) or False
            args = made.grid_args(made.heading.split("\n")[0], live=self._live[key], base=self._photos[under])
            if self.columns > 0:
                args["columns"] = int(self.columns)
            return args

        def _diff_args(self, base: str) -> dict:
            """A, B and A − B per module pair (vizattn.diff.live_grid_args), the four panels' factors packed once."""
            from vizattn.diff import live_grid_args

            (a, fa), (b, fb) = self.forwards.items()

            def factors(flat):  # the four panels' factors do not change with the pixel: packed on the first call
                if "diff" not in self._live:
                    self._live["diff"] = live_factors(flat)
                return self._live["diff"]

            title = f"{a} (A) vs {b} (B) at pixel {tuple(self.pixel)} · {self.src.name}"
            args = live_grid_args(fa, fb, (a, b), self.pixel, self.options, title, base, factors)
            if self.columns > 0:
                args["columns"] = int(self.columns)
            return args

        def _refresh(self) -> None:
            args, blob = split_blob(self.grid_args())
            with self.hold_sync():
                if blob and blob != self._blob:
                    self._blob = blob
                self._args = args

        def export(self, path, format: str | None = None) -> Path:
            """Write what the widget shows at its pinned pixel as one file: PNG, SVG, PDF, HTML (the live grid),
            NPZ or JSON, told by `format` or the path's suffix; a folder receives the export's own file name."""
            path = Path(path)
            fmt = (format or path.suffix.lstrip(".")).lower()
            if fmt not in EXPORT_FORMATS:
                raise VizattnError(f"Unknown export format '{fmt}'; choose from {', '.join(EXPORT_FORMATS)}.")
            notes = []
            if self.diff:
                files = self._diff_files(fmt)
            else:
                made = self.export_of(self.pixel)
                files, notes = made.files((fmt,)), made.notes
            data = next(iter(files.values()))
            if path.is_dir():
                path = path / next(iter(files))
            elif path.suffix.lower() != f".{fmt}":
                path = path.with_name(path.name + f".{fmt}")
            written = write_into(output_dir(path.parent), path.name, data)
            for note in notes:
                print(note)
            return written

        def _diff_files(self, fmt: str) -> dict[str, bytes]:
            """`vizattn diff`'s files at the pinned pixel (figure, NPZ, JSON), or the live grid of A, B and A − B as one
            HTML file."""
            from vizattn.diff import diff_files

            (a, fa), (b, fb) = self.forwards.items()
            shas = (self.nets[a].provenance.sha256, self.nets[b].provenance.sha256)
            if fmt != "html":
                return diff_files(fa, fb, (a, b), tuple(self.pixel), None, shas, (fmt,))[0]
            from vizattn.sources import safe_name

            args = self.grid_args()
            heading = [args["title"], " · ".join(f"{n} sha256 {s}" for n, s in zip((a, b), shas) if s)]
            name = f"diff_{safe_name(a)}_vs_{safe_name(b)}_y{self.pixel[0]}x{self.pixel[1]}.html"
            return {name: standalone_html(args, heading).encode()}
