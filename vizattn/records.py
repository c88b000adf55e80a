"""What an attention module attended, as a record that keeps factors (never N×N matrices), and the session
protocol modules report through: the bottom layer of vizattn, above only errors.

A module reports through `AttentionModule.emit` (or a foreign observer) to every capture session of the current
thread/task that owns it; sessions live in a ContextVar, so concurrent forwards of one shared model (Streamlit
sessions are threads) never record into each other's captures.
"""
from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from vizattn.errors import VizattnError

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn


class Session(Protocol):
    """A capture session as modules see it: whether it owns a module, and where its records go."""

    def owns(self, module: nn.Module) -> bool: ...

    def add(self, module: nn.Module, record: AttentionRecord) -> None: ...


SESSIONS: ContextVar[tuple[Session, ...]] = ContextVar("vizattn_capture_sessions", default=())


#: what an attention kind's maps are (`AttentionRecord.family`)
FAMILIES = ("distribution", "gate", "anchors", "composition")

#: the per-image statistics of `vizattn.analysis.summary.analyse_forward` (`AttentionRecord.statistics`)
STATISTICS = ("query_independence", "unary_share", "gate_shares", "loop_coverage", "where", "psa_weights")


@dataclass(frozen=True)
class Factor:
    """A captured tensor the browser's hover formula reads (`AttentionRecord.hover_spec`); `probability`: its
    values are probabilities or gates in 0..1, so they may travel in float16."""

    tensor: torch.Tensor
    probability: bool = False


def rows_spec(grid, out, src: dict, heads: int = 1, pick: int = 0, qextra: int = 0, kextra: int = 0,
              qindep: bool = False, keep=None, boxes=None) -> dict:
    """The browser's "rows" formula: softmax rows of query `qextra + gy·gw + gx` from `src` (precomputed rows,
    or q/k with a scale, an additive bias and LESA's relative-position terms), one head or their mean (pick −1),
    extra key tokens dropped, optionally one key range kept and pooled anchors spread over the pixels they
    average."""
    return dict(f="rows", grid=list(grid), out=list(out), src=src, heads=heads, pick=pick, qextra=qextra,
                kextra=kextra, qindep=qindep, keep=keep, boxes=boxes)


def const_spec(grid, tensor: torch.Tensor) -> dict:
    """The browser's "const" formula: the same map (a probability or gate, h×w) for every query."""
    return dict(f="const", grid=list(grid), out=list(grid), map=Factor(tensor, True))


@dataclass
class AttentionRecord:
    """What one attention module computed in one forward pass.

    `data` holds the captured tensors (detached, on the module's device); subclasses turn them into
    per-query maps on demand so that nothing of size N×N is ever stored.

    Everything vizattn knows about an attention kind lives on its record class — what its maps are
    (`family`), its main view (`default_view`), the captions under its panels (`notes`, `note`), which
    statistics apply to it (`statistics`) and the browser's formula for its rows (`hover_spec`) — so a new
    kind is one new record class, and no layer above switches on `kind`.
    """

    kind: str
    grid: tuple[int, int]
    batch: int
    data: dict[str, torch.Tensor] = field(repr=False)
    config: dict = field(default_factory=dict)

    #: What the maps are, one of FAMILIES:
    #: "distribution" — softmax rows over the grid, one per query (non-local, DANet's position attention, LESA,
    #: PSANet's windows, transformers' rows, mmcv's single criss-cross softmax), or one for every query (GC's
    #: mask is a softmax over positions: a query-independent distribution, not a gate);
    #: "gate" — sigmoid weights in 0..1 that scale features rather than average them (PSA);
    #: "anchors" — rows over pooled anchors, each weight spread over the pixels its anchor averages (ANN);
    #: "composition" — the main map composes several sparse softmax steps (ISA's A_S·A_L, criss-cross's loops).
    family = "distribution"
    #: the statistics of `analyse_forward` that apply to this kind (names from STATISTICS): "query_independence"
    #: (do queries get the same map?), "unary_share" (the softmax's weight on the query itself), "gate_shares"
    #: (LESA's unary/binary gate), "loop_coverage" (criss-cross's reach per loop), "where" (own class, own
    #: instance and distance of the attended pixels: pairwise maps over the query's own feature only),
    #: "psa_weights" (PSA's channel and spatial weight distributions)
    statistics = ()
    #: the caption under a panel, by view; "*" is the caption of every view not named
    notes = {}
    #: views whose map does not depend on the query (GC's mask, PSA's weights)
    query_independent_views = ()
    #: views whose maps are probability distributions over the grid (they sum to 1)
    distribution_views = ()
    #: what `outside_share` measures, for the page
    outside_label = "zero padding"
    #: rows a rollout or relevance can follow from layer to layer (vizattn.analysis.rollout): a foreign
    #: self-attention's softmax over its own tokens; none of vizattn's own kinds
    follows_layers = False
    #: max |Δ| between the kept maps · the module's values and the module's own output, at a sample of queries
    #: (set by the foreign observer where it saw both); None: not checked. Plain class attributes, not dataclass
    #: fields, so that subclasses may still declare fields without defaults.
    verified = None
    #: the largest |Δ| that still counts as verified (set with `verified`: it depends on the dtype and scale)
    verified_tolerance = None

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if cls.family not in FAMILIES or not set(cls.statistics) <= set(STATISTICS):
            raise TypeError(f"{cls.__name__}: family must be one of {FAMILIES} and statistics among {STATISTICS}.")

    def views(self) -> tuple[str, ...]:
        raise NotImplementedError

    @property
    def default_view(self) -> str:
        """The main view: the one every panel list starts with (a class whose main view is the combination of
        the others — effective, all, mean — names it)."""
        return self.views()[0]

    def note(self, view: str | None = None) -> str:
        """The caption under `view`'s panel ("" for none)."""
        view = view or self.default_view
        return self.notes.get(view, self.notes.get("*", ""))

    def hover_spec(self, view: str) -> dict | None:
        """What the browser needs to compute `view`'s rows itself (`vizattn.viz.hover`, batch 0): the formula
        hover.js runs (`f`: rows, cross, isa, psanet or const), its parameters, and the tensors it reads as
        `Factor`s; None when the browser has no formula for this kind (its grid keeps the server path)."""
        return None

    @property
    def verification(self) -> str:
        """Whether the kept maps are the ones the module used, in words: records of vizattn's own modules are
        verified by construction (their tests rebuild each module's output from its records); a foreign record
        says what the rebuild at sampled queries found, or that it could not be checked."""
        if self.verified is not None:
            delta = _short(self.verified)
            if self.verified_tolerance is None or self.verified <= self.verified_tolerance:
                return f"verified (max |Δ| {delta})"
            return (f"NOT verified: max |Δ| {delta} between the kept rows · values and the module's own output "
                    f"(tolerance {_short(self.verified_tolerance)}); these maps are not what it used")
        if type(self).__module__.startswith("vizattn.modules."):
            return "verified by construction (vizattn's own module)"
        return "softmax as computed; its use not verified"

    def query_independent(self, view: str | None = None) -> bool:
        return (view or self.default_view) in self.query_independent_views

    def query_map(self, y: int, x: int, view: str | None = None, batch: int = 0) -> np.ndarray:
        """What position (y, x) of the query grid attended, as an (h, w) float array."""
        import torch  # here, not above: the page reads a kept opening's records before PyTorch is imported

        view = self._check(y, x, view, batch)
        return self._query_map(int(y), int(x), view, int(batch)).detach().to("cpu", torch.float64).numpy()

    def _query_map(self, y: int, x: int, view: str, batch: int) -> torch.Tensor:
        raise NotImplementedError

    def map_shape(self, view: str | None = None) -> tuple[int, int]:
        """(h, w) of `view`'s maps (the keys' grid: the query grid for most kinds, not for AFNB's), measured on the
        first query's map once per view and kept: a browser grid needs the shape of maps it computes itself."""
        shapes = self.__dict__.setdefault("_map_shapes", {})
        if view not in shapes:
            shapes[view] = tuple(int(v) for v in self.query_map(0, 0, view).shape)
        return shapes[view]

    def tokens(self, view: str) -> int | None:
        """How many keys a uniform row of `view` spreads over when its map shows only part of a distribution (a
        ViT's patches beside its class and register tokens): the uniform level is then 1/tokens, not one over the
        map's cells. None where the map is the whole distribution, or no distribution at all (a gate)."""
        return None

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


def _short(value: float) -> str:
    """1 significant digit, compact exponent: 3e-7, 0.4, 0."""
    if value == 0:
        return "0"
    if 1e-3 <= abs(value) < 9.5:  # .1g would round 9.5 up to an exponent
        return f"{value:.1g}"
    mant, exp = f"{value:.0e}".split("e")
    return f"{mant}e{int(exp)}"


def active_sessions(module: nn.Module) -> tuple[Session, ...]:
    """The capture sessions of this thread/task that own `module` (empty when nothing is capturing)."""
    return tuple(s for s in SESSIONS.get() if s.owns(module))
