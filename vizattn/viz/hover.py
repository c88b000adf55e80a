"""Hover-follow: what the browser needs to compute every panel's attention row itself, for any query pixel.

A click reran the page (≈300 ms at 384², ≈900 ms at 1024²) while computing one row is about a millisecond, so
the panel grid gets each record's factors once per (model, image) — q/k rows, anchors, loop affinities, gates —
and computes the rows for the pixel under the pointer in `panel_grid_frontend/hover.js`. Each record class says
which formula and which tensors its kind needs (`AttentionRecord.hover_spec`); this file packs the tensors into
one blob, and `hover.js` holds the formulas. The two are kept in step by a test that feeds the same records to
`AttentionRecord.query_map` and to `hover.js` in chromium (tests/viz).

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
    """Tensors (or numpy arrays) appended into one little-endian blob, each once (a view of a record's tensor is
    keyed by its storage, shape and strides), 4-byte aligned so the browser can view them without copying."""

    def __init__(self):
        self.table: list[dict] = []
        self._parts: list[bytes] = []
        self.size = 0
        self._seen: dict[tuple, int] = {}

    def add(self, t, probability: bool = False) -> int:
        """The index of tensor `t` in the table (float16 if `probability`), appended if new."""
        dtype = "<f2" if probability else "<f4"
        if isinstance(t, np.ndarray):  # a kept opening's factors (vizattn.opening), already in the dtype they travel in
            key = (t.__array_interface__["data"][0], t.shape, t.strides, dtype)
        else:
            key = (t.data_ptr(), tuple(t.shape), tuple(t.stride()), dtype)
        if key in self._seen:
            return self._seen[key]
        values = t if isinstance(t, np.ndarray) else t.detach().float().cpu().numpy()
        data = np.ascontiguousarray(values, dtype).tobytes()
        pad = -self.size % 4
        self._parts.append(b"\0" * pad + data)
        self.size += pad
        self.table.append({"dtype": "f2" if probability else "f4", "offset": self.size, "shape": list(t.shape)})
        self.size += len(data)
        self._seen[key] = len(self.table) - 1
        return self._seen[key]

    def blob(self) -> bytes:
        return b"".join(self._parts)


def unpack(table: list[dict], blob: bytes) -> list[np.ndarray]:
    """The arrays of a pack's `table` in its `blob`, as the browser views them (hover.js `tensors`): read-only
    views of the blob, in the dtype they travel in."""
    return [np.frombuffer(blob, "<" + t["dtype"], int(np.prod(t["shape"])), t["offset"]).reshape(t["shape"])
            for t in table]


def packed(spec, pack: Pack):
    """`spec` with every `Factor` replaced by its tensor's index in `pack` (added in the spec's own order)."""
    from vizattn.records import Factor  # records import PyTorch: only once there are records to pack

    if isinstance(spec, Factor):
        return pack.add(spec.tensor, spec.probability)
    if isinstance(spec, dict):
        return {k: packed(v, pack) for k, v in spec.items()}
    if isinstance(spec, list):
        return [packed(v, pack) for v in spec]
    return spec


def spec_for(record, view: str, pack: Pack) -> dict | None:
    """The browser's recipe for `record`'s rows in `view` (the record's own `hover_spec`), its tensors added to
    `pack`; None for a kind the browser has no formula for (its grid keeps the server path)."""
    from vizattn.records import AttentionRecord

    spec = record.hover_spec(view) if isinstance(record, AttentionRecord) else None
    return None if spec is None else packed(spec, pack)


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
