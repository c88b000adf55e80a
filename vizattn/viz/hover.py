"""Hover-follow: what the browser needs to compute every panel's attention row itself, for any query pixel.

A click reran the page (≈300 ms at 384², ≈900 ms at 1024²) while computing one row is about a millisecond, so
the panel grid gets each record's factors once per (model, image) — q/k rows, anchors, loop affinities, gates —
and computes the rows for the pixel under the pointer in `panel_grid_frontend/hover.js`. This file says which
formula and which tensors each record kind needs; `hover.js` holds the formulas. The two are kept in step by a
test that feeds the same records to `AttentionRecord.query_map` and to `hover.js` in chromium (tests/viz).

Tensors travel as one binary blob: float16 for weights that are already probabilities or gates (each in 0..1,
so float16's 2⁻¹¹ relative step is at most 4.9e-4 absolute), float32 for q/k and logits, which a softmax
would amplify. Above `BUDGET` bytes a grid keeps the server path: each pinned query is drawn by the server.
"""
from __future__ import annotations

import numpy as np

#: largest factor blob (bytes) a grid sends for hover-follow; above it, the server draws each clicked query.
#: 64 MiB holds the comparison grid of the 11-model zoo at 1024² (37.2 MiB; criss-cross's loops take 16 MiB).
BUDGET = 64 * 2**20


class Pack:
    """Tensors appended into one little-endian blob, each once (a view of a record's tensor is keyed by its
    storage, shape and strides), 4-byte aligned so the browser can view them without copying."""

    def __init__(self):
        self.table: list[dict] = []
        self._parts: list[bytes] = []
        self.size = 0
        self._seen: dict[tuple, int] = {}

    def add(self, t, probability: bool = False) -> int:
        """The index of tensor `t` in the table (float16 if `probability`), appended if new."""
        dtype = "<f2" if probability else "<f4"
        key = (t.data_ptr(), tuple(t.shape), tuple(t.stride()), dtype)
        if key in self._seen:
            return self._seen[key]
        data = np.ascontiguousarray(t.detach().float().cpu().numpy(), dtype).tobytes()
        pad = -self.size % 4
        self._parts.append(b"\0" * pad + data)
        self.size += pad
        self.table.append({"dtype": "f2" if probability else "f4", "offset": self.size, "shape": list(t.shape)})
        self.size += len(data)
        self._seen[key] = len(self.table) - 1
        return self._seen[key]

    def blob(self) -> bytes:
        return b"".join(self._parts)


# ---- one spec per record kind: the formula hover.js runs and the tensors it reads (batch 0) ----

def _rows(grid, out, src: dict, heads: int = 1, pick: int = 0, qextra: int = 0, kextra: int = 0,
          qindep: bool = False, keep=None, boxes=None) -> dict:
    """softmax rows of query `qextra + gy·gw + gx` from `src` (precomputed rows, or q/k with a scale, an
    additive bias and LESA's relative-position terms), one head or their mean, extra key tokens dropped,
    optionally one key range kept and pooled anchors spread over the pixels they average."""
    return dict(f="rows", grid=list(grid), out=list(out), src=src, heads=heads, pick=pick, qextra=qextra,
                kextra=kextra, qindep=qindep, keep=keep, boxes=boxes)


def _pairwise(rec, view, pk):
    src = dict(q=pk.add(rec.data["q"][:1]), k=pk.add(rec.data["k"][:1]), scale=float(rec.config["scale"]))
    return _rows(rec.grid, rec.grid, src)


def _anchor(rec, view, pk):
    from vizattn.modules.ann import level_range

    sizes, key_grid = list(rec.config["sizes"]), rec.config["key_grid"]
    keep = None if view == "all" else list(level_range(sizes, int(view[5:])))
    src = dict(q=pk.add(rec.data["q"][:1]), k=pk.add(rec.data["k"][:1]), scale=float(rec.config["scale"]))
    return _rows(rec.grid, key_grid, src, keep=keep, boxes=sizes)


def _anchor_rows(rec, view, pk):
    return _rows(rec.grid, rec.config["key_grid"], dict(rows=pk.add(rec.data["rows"][:1], True)),
                 boxes=list(rec.config["sizes"]))


def _lesa(rec, view, pk):
    src = dict(q=pk.add(rec.data["q"][0]), k=pk.add(rec.data["k"][0]), scale=1.0)
    if "rel_q" in rec.data:
        src.update(rel_q=pk.add(rec.data["rel_q"]), rel_k=pk.add(rec.data["rel_k"]), terms=pk.add(rec.data["term_scale"]))
    heads = rec.config["heads"]
    return _rows(rec.grid, rec.grid, src, heads, -1 if view == "mean" else int(view[4:]))


def _foreign(rec, view, pk):
    heads = rec.config["heads"]
    if "rows" in rec.data:
        src = dict(rows=pk.add(rec.data["rows"][:heads], True))
    else:
        src = dict(q=pk.add(rec.data["q"][:heads]), k=pk.add(rec.data["k"][:heads]), scale=float(rec.config["scale"]))
        if "mask" in rec.data:
            src["bias"] = pk.add(rec.data["mask"][:heads])
    return _rows(rec.grid, rec.config["key_grid"], src, heads, -1 if view == "mean" else int(view[4:]),
                 rec.config["query_extra"], rec.config["key_extra"], bool(rec.config.get("query_independent")))


def _criss_cross(rec, view, pk):
    loops = rec.config["recurrence"]
    apply = list(range(loops, 0, -1)) if view == "effective" else [int(view[4:])]
    return dict(f="cross", grid=list(rec.grid), out=list(rec.grid), apply=apply,
                loops=[pk.add(rec.data[f"att{r}"][0], True) for r in range(1, loops + 1)])


def _mmcv_cross(rec, view, pk):
    return dict(f="cross", grid=list(rec.grid), out=list(rec.grid), apply=[1], loops=[pk.add(rec.data["rows"][0], True)])


def _isa_spec(rec, view, long: dict, short: dict) -> dict:
    return dict(f="isa", grid=list(rec.grid), out=list(rec.grid), view=view, long=long, short=short,
                group=list(rec.config["group"]), lattice=list(rec.config["lattice"]), pad=list(rec.config["pad"]))


def _isa(rec, view, pk):
    dh, dw = rec.config["group"]
    oh, ow = rec.config["lattice"]
    return _isa_spec(rec, view,
                     dict(q=pk.add(rec.data["q_long"][: dh * dw]), k=pk.add(rec.data["k_long"][: dh * dw]),
                          scale=float(rec.config["scale_long"])),
                     dict(q=pk.add(rec.data["q_short"][: oh * ow]), k=pk.add(rec.data["k_short"][: oh * ow]),
                          scale=float(rec.config["scale_short"])))


def _isa_rows(rec, view, pk):
    dh, dw = rec.config["group"]
    oh, ow = rec.config["lattice"]
    return _isa_spec(rec, view, dict(rows=pk.add(rec.data["long_rows"][: dh * dw], True)),
                     dict(rows=pk.add(rec.data["short_rows"][: oh * ow], True)))


def _psanet(rec, view, pk):
    return dict(f="psanet", grid=list(rec.grid), out=list(rec.grid), direction=view, mask=list(rec.config["mask"]),
                logits=pk.add(rec.data[f"logits_{view}"][0].flatten(1)))


def _constant(name_of_view):
    def spec(rec, view, pk):
        return dict(f="const", grid=list(rec.grid), out=list(rec.grid), map=pk.add(rec.data[name_of_view(view)][0], True))
    return spec


def _specs() -> dict:
    from vizattn.foreign.mmcv_blocks import AnchorRowsRecord, CrossRecord, ISARowsRecord
    from vizattn.foreign.observe import ForeignRecord
    from vizattn.modules.ann import AnchorRecord
    from vizattn.modules.criss_cross import CrissCrossRecord
    from vizattn.modules.gc import GlobalMaskRecord
    from vizattn.modules.isa import ISARecord
    from vizattn.modules.lesa import LESARecord
    from vizattn.modules.non_local import PairwiseRecord
    from vizattn.modules.psa import PSARecord
    from vizattn.modules.psanet import PSANetRecord

    return {
        PairwiseRecord: _pairwise, AnchorRecord: _anchor, AnchorRowsRecord: _anchor_rows, LESARecord: _lesa,
        ForeignRecord: _foreign, CrissCrossRecord: _criss_cross, CrossRecord: _mmcv_cross,
        ISARowsRecord: _isa_rows, ISARecord: _isa, PSANetRecord: _psanet,
        GlobalMaskRecord: _constant(lambda view: "mask"),
        PSARecord: _constant(lambda view: {"spatial": "spatial_weights"}.get(view, view)),
    }


_SPECS: dict | None = None


def spec_for(record, view: str, pack: Pack) -> dict | None:
    """The browser's recipe for `record`'s rows in `view`, its tensors added to `pack`; None for a kind the
    browser has no formula for (its grid keeps the server path)."""
    global _SPECS
    if _SPECS is None:
        _SPECS = _specs()
    for cls in type(record).__mro__:  # the most specific class first (ISARowsRecord before ISARecord)
        if cls in _SPECS:
            return _SPECS[cls](record, view, pack)
    return None


def factors(items, budget: int = BUDGET) -> tuple[list[dict], list[dict], bytes] | None:
    """For (record, view) pairs: one spec per pair, the table of tensors they index and the blob holding them;
    None when a kind has no browser formula or the blob would exceed `budget` bytes."""
    pack, specs = Pack(), []
    for record, view in items:
        spec = spec_for(record, view, pack)
        if spec is None or pack.size > budget:
            return None
        specs.append(spec)
    return specs, pack.table, pack.blob()


def lookup_table(cmap: str) -> list[list[int]]:
    """The colormap's 256 colours as `overlay.colormap` picks them (index ⌊v·256⌋, 1 → 255)."""
    from vizattn.viz.overlay import colormap

    return colormap(np.arange(256) / 256 + 1 / 512, cmap).tolist()
