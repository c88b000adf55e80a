"""Capture what attention modules attended, without hooks and without changing their output.

Modules report their internals through `AttentionModule.emit`, which is a no-op unless a `capture` session
of the current thread/task owns the module; sessions live in a ContextVar, so concurrent forwards of one
shared model (Streamlit sessions are threads) never record into each other's captures.
"""
from __future__ import annotations

import sys
import types
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from vizattn.errors import VizattnError

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

_SESSIONS: ContextVar[tuple["Capture", ...]] = ContextVar("vizattn_capture_sessions", default=())


@dataclass
class AttentionRecord:
    """What one attention module computed in one forward pass.

    `data` holds the captured tensors (detached, on the module's device); subclasses turn them into
    per-query maps on demand so that nothing of size N×N is ever stored.
    """

    kind: str
    grid: tuple[int, int]
    batch: int
    data: dict[str, torch.Tensor] = field(repr=False)
    config: dict = field(default_factory=dict)

    #: views whose map does not depend on the query (GC's mask, PSA's weights)
    query_independent_views = ()
    #: views whose maps are probability distributions over the grid (they sum to 1)
    distribution_views = ()
    #: what `outside_share` measures, for the page
    outside_label = "zero padding"

    def views(self) -> tuple[str, ...]:
        raise NotImplementedError

    @property
    def default_view(self) -> str:
        return self.views()[-1] if "effective" in self.views() else self.views()[0]

    def query_independent(self, view: str | None = None) -> bool:
        return (view or self.default_view) in self.query_independent_views

    def query_map(self, y: int, x: int, view: str | None = None, batch: int = 0) -> np.ndarray:
        """What position (y, x) of the query grid attended, as an (h, w) float array."""
        view = self._check(y, x, view, batch)
        return self._query_map(int(y), int(x), view, int(batch)).detach().to("cpu", torch.float64).numpy()

    def _query_map(self, y: int, x: int, view: str, batch: int) -> torch.Tensor:
        raise NotImplementedError

    def outside_share(self, y: int, x: int, view: str | None = None, batch: int = 0) -> float:
        """The share of the query's weight that landed outside the map (ISA's zero padding); 0 elsewhere."""
        self._check(y, x, view, batch)
        return 0.0

    def reconstruction(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """view -> (values, output), both B×C×h×w, with output[:, :, q] = Σ_p map_q[p] · values[:, :, p].

        This is how tests prove the captured maps are the ones the module used: summing the module's own
        values with the maps of `reconstruction_map` must give the module's own intermediate output.
        """
        return {}

    def reconstruction_map(self, y: int, x: int, view: str, batch: int = 0) -> torch.Tensor:
        """The map `query_map` shows, over the grid the reconstruction lives on (ISA: the padded grid)."""
        return self._query_map(y, x, view, batch)

    def _check(self, y, x, view, batch) -> str:
        view = view or self.default_view
        if view not in self.views():
            raise VizattnError(
                f"'{view}' is not a view of a {self.kind} module; choose one of {', '.join(self.views())}."
            )
        h, w = self.grid
        if not (0 <= int(y) < h and 0 <= int(x) < w):
            raise VizattnError(
                f"Pixel ({y}, {x}) lies outside the {h}×{w} feature grid; pick y in 0..{h - 1} and x in 0..{w - 1}."
            )
        if not (0 <= int(batch) < self.batch):
            raise VizattnError(f"Batch index {batch} does not exist; the capture holds {self.batch} image(s).")
        return view


class Capture:
    """Context manager collecting one `AttentionRecord` per attention module of `model`, in forward order."""

    def __init__(self, model: "nn.Module", modules=None):
        from vizattn.foreign import foreign_targets
        from vizattn.modules.base import AttentionModule

        self.model = model
        self._names = {
            id(m): (name or m.kind) for name, m in model.named_modules() if isinstance(m, AttentionModule)
        }
        # modules vizattn did not write: the known families, or the ones named (names or globs)
        self._foreign, self._interpreters = foreign_targets(model, modules, exclude=set(self._names))
        self.records: dict[str, AttentionRecord] = {}
        self._token = None
        self._observer = None

    def __enter__(self) -> "Capture":
        self.records = {}
        self._token = _SESSIONS.set(_SESSIONS.get() + (self,))
        if self._foreign:
            from vizattn.foreign.observe import Observer

            self._observer = Observer(self._foreign, self, self.model, self._interpreters)
            self._observer.__enter__()
        return self

    def __exit__(self, *exc) -> bool:
        try:
            if self._observer is not None:
                self._observer.__exit__(*exc)
        finally:
            self._observer = None
            _SESSIONS.reset(self._token)
            self._token = None
        return False

    def add_named(self, name: str, record: AttentionRecord) -> None:
        """A record of a module vizattn did not write (from the foreign observer), under its own name."""
        self.records[name] = record

    def owns(self, module: "nn.Module") -> bool:
        return id(module) in self._names

    def add(self, module: "nn.Module", record: AttentionRecord) -> None:
        name = self._names[id(module)]
        self.records.pop(name, None)  # a module run again is re-recorded, at its new place in forward order
        self.records[name] = record


def capture(model: "nn.Module", modules=None) -> Capture:
    """`with capture(model) as cap: model(x)` fills `cap.records` with what every attention module attended:
    ours, the foreign families vizattn knows (HF SegFormer/ViT/DINOv2, nn.MultiheadAttention, mmcv/mmseg
    blocks), and every softmax or fused attention inside the modules named in `modules` (names or globs)."""
    return Capture(model, modules)


def active_sessions(module: "nn.Module") -> tuple[Capture, ...]:
    return tuple(s for s in _SESSIONS.get() if s.owns(module))


class _CallableModule(types.ModuleType):
    """`vizattn.capture` is both this module and the function `capture`. The package imports it lazily (so the
    app's first page need not wait for PyTorch), and Python binds a submodule over the package attribute of the
    same name when it is first imported; calling the module therefore calls the function."""

    def __call__(self, model: "nn.Module", modules=None) -> Capture:
        return capture(model, modules)


sys.modules[__name__].__class__ = _CallableModule
