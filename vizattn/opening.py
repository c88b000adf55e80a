"""The page's opening, kept: what the first screen reads of the default model's forward on the default scene, so
the first map is drawn before PyTorch is imported (its import alone takes ≈1.1 s of a quiet 2-core machine, more
while Streamlit's server starts beside it).

What is kept is the forward's prediction and confidence and, per record, what the page asks of it at the centre
pixel: its views, notes and uniform levels, each view's map at that pixel, and the factors from which the
browser computes every other pixel's rows (`AttentionRecord.hover_spec`). `KeptRecord` answers those questions
and no others; a click elsewhere, another tab or another model is the live forward's work (vizattn.app.cache
decides). `vizattn opening` writes the file from the live forward of the bundled model; the page uses it only
while the bundled weights are the ones it was written from (their sha256) and the image is the one it was written
for (its key); tests/test_opening.py holds it to a live forward. Arrays travel in safetensors, the rest as JSON in
its metadata: nothing is unpickled.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vizattn.bundled import PRETRAINED
from vizattn.errors import VizattnError
from vizattn.explore import Forward, cell_of
from vizattn.records import AttentionRecord, Factor

OPENINGS = PRETRAINED / "opening"  # package data, beside the bundled models
MODEL, SCENE, SIZE = "criss_cross", "scene:1000000007", 384  # the sidebar's defaults (vizattn.app.sidebar)
FORMAT = 1


@dataclass
class KeptRecord(AttentionRecord):
    """A record as an opening kept it: its maps at one query cell and the browser's factors for every cell."""

    kept: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        k = self.kept
        self.family, self.statistics, self.outside_label = k["family"], tuple(k["statistics"]), k["outside_label"]
        self.query_independent_views = tuple(k["query_independent_views"])
        self.distribution_views = tuple(k["distribution_views"])
        self.verified, self.verified_tolerance = k["verified"], k["verified_tolerance"]

    def views(self):
        return tuple(self.kept["views"])

    @property
    def default_view(self) -> str:
        return self.kept["default_view"]

    def note(self, view=None):
        return self.kept["notes"][view or self.default_view]

    def hover_spec(self, view):
        return self.kept["specs"][view]

    @property
    def verification(self) -> str:
        return self.kept["verification"]

    def tokens(self, view):
        return self.kept["tokens"][view]

    def map_shape(self, view=None):
        return tuple(self.kept["maps"][view or self.default_view].shape)

    def query_map(self, y, x, view=None, batch=0):
        view = self._check(y, x, view, batch)
        self._at(y, x)
        return self.kept["maps"][view]

    def outside_share(self, y, x, view=None, batch=0):
        view = self._check(y, x, view, batch)
        self._at(y, x)
        return self.kept["outside"][view]

    def _at(self, y, x) -> None:
        if (int(y), int(x)) != tuple(self.kept["cell"]):
            raise VizattnError(f"The kept opening holds query cell {tuple(self.kept['cell'])} only, not ({y}, {x}); "
                               "the model's own forward answers every other cell.")


@dataclass(frozen=True)
class Opening:
    """One kept opening: the model and image it was written from, the query pixel, and the forward's parts."""

    model: str
    sha256: str  # of the bundled weights it was written from
    scene: str  # the image_source spec and size it was written for
    size: int
    image_key: str  # vizattn.sources.ImageSource.key of that scene
    pixel: tuple[int, int]
    prediction: np.ndarray = field(repr=False)
    confidence: np.ndarray = field(repr=False)
    classes: list[str] = field(repr=False)
    palette: np.ndarray = field(repr=False)
    records: dict[str, KeptRecord] = field(repr=False)

    def forward(self, image: np.ndarray) -> Forward:
        """The kept forward over `image` (the scene it was written for: the caller checked its key)."""
        return Forward(image, self.prediction, self.records, self.confidence, self.classes, self.palette)


def path_for(model: str = MODEL, directory: Path = OPENINGS) -> Path:
    return Path(directory) / f"{model}.safetensors"


def _spec_out(spec, pack):
    """`spec` as JSON, each Factor's tensor added to `pack` (vizattn.viz.hover.Pack: once per tensor, in the dtype
    it travels in) and named by its index there."""
    if isinstance(spec, Factor):
        return {"factor": f"factor{pack.add(spec.tensor, spec.probability)}", "probability": spec.probability}
    if isinstance(spec, dict):
        return {k: _spec_out(v, pack) for k, v in spec.items()}
    if isinstance(spec, (list, tuple)):
        return [_spec_out(v, pack) for v in spec]
    return spec


def _spec_in(spec, arrays: dict):
    if isinstance(spec, dict) and set(spec) == {"factor", "probability"}:
        return Factor(arrays[spec["factor"]], spec["probability"])
    if isinstance(spec, dict):
        return {k: _spec_in(v, arrays) for k, v in spec.items()}
    if isinstance(spec, list):
        return [_spec_in(v, arrays) for v in spec]
    return spec


def write_opening(model: str = MODEL, scene: str = SCENE, size: int = SIZE, directory: Path = OPENINGS) -> Path:
    """Run the bundled `model` on `scene` and keep what the page's first screen reads (see the module's text)."""
    from safetensors.numpy import save_file

    from vizattn.explore import run_model
    from vizattn.sources import file_sha256, image_source
    from vizattn.viz.hover import Pack, unpack
    from vizattn.zoo import load

    net, src = load(model), image_source(scene, size)
    fw = run_model(net, src.image)
    h, w = fw.shape
    pixel = (h // 2, w // 2)
    arrays = {"prediction": np.ascontiguousarray(fw.prediction), "confidence": np.ascontiguousarray(fw.confidence),
              "palette": np.ascontiguousarray(fw.palette, np.uint8)}
    pack, records = Pack(), {}
    for i, (name, rec) in enumerate(fw.records.items()):
        if rec.follows_layers:
            raise VizattnError(f"{name}: an opening keeps no layers for rollout to follow; keep one of vizattn's own "
                               "models.")
        cell = cell_of(*pixel, fw.shape, rec.grid)
        views = list(rec.views())
        specs = {v: rec.hover_spec(v) for v in views}
        if any(s is None for s in specs.values()):
            raise VizattnError(f"{name}: a {rec.kind} record has no browser formula, so an opening cannot keep it.")
        for v in views:
            arrays[f"map{i}/{v}"] = np.ascontiguousarray(rec.query_map(*cell, v))
        records[name] = dict(
            kind=rec.kind, grid=list(rec.grid), batch=rec.batch, cell=list(cell), views=views,
            default_view=rec.default_view,
            family=rec.family, statistics=list(rec.statistics), outside_label=rec.outside_label,
            query_independent_views=[v for v in views if rec.query_independent(v)],
            distribution_views=[v for v in views if v in rec.distribution_views],
            verified=rec.verified, verified_tolerance=rec.verified_tolerance, verification=rec.verification,
            notes={v: rec.note(v) for v in views}, tokens={v: rec.tokens(v) for v in views},
            outside={v: rec.outside_share(*cell, v) for v in views},
            specs={v: _spec_out(s, pack) for v, s in specs.items()})
    arrays.update((f"factor{i}", a) for i, a in enumerate(unpack(pack.table, pack.blob())))
    meta = dict(format=FORMAT, model=model, sha256=file_sha256(PRETRAINED / f"{model}.safetensors"),
                image_key=src.key, scene=scene, size=size, pixel=list(pixel), classes=list(fw.classes),
                records=records)
    path = path_for(model, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(arrays, str(path), metadata={"opening": json.dumps(meta)})
    return path


def read_opening(model: str = MODEL, directory: Path = OPENINGS) -> Opening | None:
    """The kept opening of bundled `model`, or None: no file, a damaged one, another format, or weights it was not
    written from."""
    from safetensors import SafetensorError, safe_open

    from vizattn.sources import file_sha256

    path = path_for(model, directory)
    weights = PRETRAINED / f"{model}.safetensors"
    if not (path.is_file() and weights.is_file()):
        return None
    try:
        with safe_open(str(path), "np") as f:
            meta = json.loads((f.metadata() or {}).get("opening", "{}"))
            if meta.get("format") != FORMAT or meta.get("sha256") != file_sha256(weights):
                return None
            arrays = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError):  # damaged: the page runs the model for its first screen instead
        return None
    records = {}
    for i, (name, r) in enumerate(meta["records"].items()):
        kept = dict(r, maps={v: arrays[f"map{i}/{v}"] for v in r["views"]},
                    specs={v: _spec_in(s, arrays) for v, s in r["specs"].items()})
        for m in kept["maps"].values():
            m.flags.writeable = False  # shared by every session that draws the opening
        records[name] = KeptRecord(r["kind"], tuple(r["grid"]), r["batch"], {}, kept=kept)
    return Opening(meta["model"], meta["sha256"], meta["scene"], meta["size"], meta["image_key"], tuple(meta["pixel"]),
                   arrays["prediction"], arrays["confidence"], meta["classes"], arrays["palette"], records)
