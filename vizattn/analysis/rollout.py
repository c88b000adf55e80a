"""Attention rollout (Abnar & Zuidema, ACL 2020, "Quantifying Attention Flow in Transformers"): how much of what a
query token holds after the last layer came from each input token, if every layer mixed its tokens by its
attention plus the residual connection: row_q(A'_L · … · A'_1), with A' = r·I + (1 − r)·A, rows renormalised.

One query's row is propagated backwards (v ← v · A'_l, from the last layer to the first), never the product:
the rows of a layer are computed in chunks, only where v is not zero, so the working memory is
heads × chunk × keys float64 (chunks of ≤ 8 MiB; a step holds about three such arrays) plus a few vectors of the
token count, and no
N×N matrix is ever formed here (what the capture itself keeps is its own: eager models' rows, SDPA's q and k).

Layers are the capture's foreign self-attention records in forward order (transformers ViT/DeiT/DINOv2/SegFormer,
hand-written softmax or SDPA blocks, nn.MultiheadAttention). Their choices, stated once:
- class/register tokens (ViT, DeiT, DINOv2) take part in every layer as tokens; at the end their columns are
  set aside and their share reported (`Rollout.extra_share`); the map keeps the rest (map + share = 1);
- SegFormer's spatially-reduced keys: within a stage each reduced key is spread evenly over the sr×sr query
  cells it pools (sr read as ⌊h/kh⌋, as its stride-sr convolution floors), so each layer is a row-stochastic
  N×N matrix on the stage grid (applied in factored form, never built);
- between stages (or any change of grid) the running row is moved to the earlier layer's grid by area: each
  cell's weight is split over the cells of the other grid in proportion to their overlap (mass is kept);
- `discard` zeroes the lowest ⌊discard·M⌋ weights of every fused row (M keys, class/register included) before
  the residual is added and the row renormalised. vit-explain discards over the whole fused matrix at once
  (sparing the class token's own entry); per row keeps one query's answer independent of other rows;
- the query is the last layer's grid cell that holds the image pixel (SegFormer: its deepest, coarsest stage).
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

import numpy as np
import torch

from vizattn.errors import VizattnError
from vizattn.explore import Forward, cell_of, check_pixel
from vizattn.foreign.observe import ForeignRecord

FUSIONS = ("mean", "max", "min")
CHUNK_FLOATS = 1 << 20  # heads × chunk × keys float64 values of one chunk of rows (8 MiB)


@dataclass
class Layer:
    """One self-attention record as a token-mixing matrix: queries on `grid` after `extra` leading tokens,
    keys on `key_grid` (same extra tokens), each key pooling `pool` query cells (1×1 unless reduced)."""

    name: str
    record: ForeignRecord
    pool: tuple[int, int] = (1, 1)

    @property
    def grid(self) -> tuple[int, int]:
        return self.record.grid

    @property
    def extra(self) -> int:
        return self.record.config["query_extra"]

    @property
    def tokens(self) -> int:
        return self.extra + self.grid[0] * self.grid[1]

    @property
    def heads(self) -> int:
        return self.record.config["heads"]

    @property
    def keys(self) -> int:
        kh, kw = self.record.config["key_grid"]
        return self.record.config["key_extra"] + kh * kw

    def stacks(self, batch: int) -> slice:
        return slice(batch * self.heads, (batch + 1) * self.heads)

    def chunks(self, queries: torch.Tensor):
        """`queries` in pieces small enough that heads × piece × keys stays near CHUNK_FLOATS."""
        step = max(1, CHUNK_FLOATS // (self.heads * self.keys))
        return queries.split(step)

    def spread(self, u: torch.Tensor) -> torch.Tensor:
        """A vector over the keys as one over the query tokens: each reduced key's weight split evenly over the
        pool of query cells it averages (cells no key pools, at a ragged edge, get none)."""
        if self.pool == (1, 1) and self.keys == self.tokens:
            return u
        (h, w), (kh, kw), (sy, sx) = self.grid, self.record.config["key_grid"], self.pool
        cells = (u.view(kh, kw) / (sy * sx)).repeat_interleave(sy, 0).repeat_interleave(sx, 1)
        out = u.new_zeros(h, w)
        out[: kh * sy, : kw * sx] = cells
        return out.flatten()


def layers_of(records: dict, modules=None) -> list[Layer]:
    """The foreign self-attention records (in forward order) as `Layer`s; `modules` picks names or globs."""
    chosen = []
    for name, rec in records.items():
        if modules and not any(name == p or fnmatch.fnmatchcase(name, p) for p in modules):
            continue
        if isinstance(rec, ForeignRecord) and rec.views() and not rec.config.get("query_independent"):
            chosen.append(Layer(name, rec, _pool(name, rec)))
    if not chosen:
        raise VizattnError("No self-attention layer to follow across layers: this needs a transformer's attention "
                           "(ViT, DeiT, DINOv2, SegFormer) or another softmax/SDPA over the image grid captured "
                           "from a model vizattn did not write" + (f" among {', '.join(modules)}." if modules else "."))
    return chosen


def _pool(name: str, rec: ForeignRecord) -> tuple[int, int]:
    (h, w), (kh, kw) = rec.grid, rec.config["key_grid"]
    qe, ke = rec.config["query_extra"], rec.config["key_extra"]
    if (h, w) == (kh, kw) and qe == ke:
        return 1, 1
    sy, sx = h // kh, w // kw
    if qe or ke or not (sy >= 1 and sx >= 1 and h - kh * sy < sy and w - kw * sx < sx):
        raise VizattnError(f"{name}: its keys ({kh}×{kw} grid, {ke} extra tokens) are not its queries' tokens "
                           f"({h}×{w}, {qe} extra) nor a pooled grid of them, so it is no self-attention layer to "
                           "follow across layers; name the layers to use with modules=[...].")
    return sy, sx


def area_matrix(src: int, dst: int) -> torch.Tensor:
    """src × dst: cell i of a src-cell axis split over the dst cells it overlaps, by overlap (rows sum to 1)."""
    edges_s = torch.arange(src + 1, dtype=torch.float64) / src
    edges_d = torch.arange(dst + 1, dtype=torch.float64) / dst
    lo = torch.maximum(edges_s[:-1, None], edges_d[None, :-1])
    hi = torch.minimum(edges_s[1:, None], edges_d[None, 1:])
    return (hi - lo).clamp(min=0) * src


def move(v: torch.Tensor, source: Layer, target: Layer) -> torch.Tensor:
    """The row over `source`'s query tokens as one over `target`'s: the same when the layouts agree, else
    resampled by area (mass kept; only between grids without extra tokens)."""
    if (source.grid, source.extra) == (target.grid, target.extra):
        return v
    if source.extra or target.extra:
        raise VizattnError(f"{source.name} and {target.name} hold different tokens ({source.extra} and "
                           f"{target.extra} extra, {source.grid} and {target.grid} grids); rollout follows one "
                           "token sequence or grids without class tokens.")
    (h, w), (H, W) = source.grid, target.grid
    return (area_matrix(h, H).T @ v.view(h, w) @ area_matrix(w, W)).flatten()


def fuse(rows: torch.Tensor, fusion: str) -> torch.Tensor:
    """heads × c × M -> c × M."""
    if rows.shape[0] == 1:
        return rows[0]
    if fusion == "mean":
        return rows.mean(0)
    return rows.amax(0) if fusion == "max" else rows.amin(0)


def drop_lowest(rows: torch.Tensor, discard: float) -> torch.Tensor:
    """Zero the ⌊discard·M⌋ lowest weights of every row (c × M)."""
    k = int(discard * rows.shape[-1])
    if k == 0:
        return rows
    return rows.scatter(-1, rows.topk(k, dim=-1, largest=False).indices, 0.0)


def query_token(layer: Layer, y: int, x: int, shape: tuple[int, int]) -> tuple[int, tuple[int, int]]:
    gy, gx = cell_of(y, x, shape, layer.grid)
    return layer.extra + gy * layer.grid[1] + gx, (gy, gx)


@dataclass
class Rollout:
    """A rollout (or relevance) row for one query pixel, on the first layer's grid."""

    map: np.ndarray = field(repr=False)  # h × w: the row's patch columns
    extra_share: float  # what went to class/register tokens (set aside; map.sum() + extra_share = row total)
    grid: tuple[int, int]  # the map's grid (the first layer's)
    cell: tuple[int, int]  # the query's cell on the last layer's grid
    layers: list[str]  # the layers followed, in forward order
    skipped: list[str] = field(default_factory=list)  # layers captured but not followed (relevance: no gradient)


def records_and_shape(source, shape) -> tuple[dict, tuple[int, int]]:
    if isinstance(source, Forward):
        return source.records, shape or source.shape
    records = source if isinstance(source, dict) else getattr(source, "records", None)
    if not isinstance(records, dict):
        raise VizattnError("rollout reads a Forward (vizattn.explore.run_model), a capture or its records dict.")
    if shape is None:
        raise VizattnError("A capture does not know its image's size; pass shape=(H, W) of the image the model "
                           "saw, so the pixel can be placed on each layer's grid.")
    return records, tuple(shape)


def rollout_details(source, y: int, x: int, fusion: str = "mean", residual: float = 0.5, discard: float = 0.0, *,
                    shape: tuple[int, int] | None = None, modules=None, batch: int = 0) -> Rollout:
    """The rollout row of image pixel (y, x) with what was set aside; see the module docstring for the choices.
    `source`: a Forward, or a capture / records dict with `shape` = the image's (H, W)."""
    if fusion not in FUSIONS:
        raise VizattnError(f"fusion '{fusion}' is not one of {', '.join(FUSIONS)}.")
    if not (0.0 <= residual <= 1.0 and 0.0 <= discard < 1.0):
        raise VizattnError(f"residual must lie in 0..1 and discard in 0..1 (excluded); got {residual} and {discard}.")
    records, shape = records_and_shape(source, shape)
    y, x = check_pixel(y, x, shape)
    layers = layers_of(records, modules)
    q, cell = query_token(layers[-1], y, x, shape)
    v = torch.zeros(layers[-1].tokens, dtype=torch.float64)
    v[q] = 1.0
    for i in range(len(layers) - 1, -1, -1):
        layer = layers[i]
        if i < len(layers) - 1:
            v = move(v, layers[i + 1], layer)
        v = _rollout_step(layer, v, fusion, residual, discard, batch)
    return finish(v, layers, cell)


def _rollout_step(layer: Layer, v: torch.Tensor, fusion: str, r: float, discard: float, batch: int) -> torch.Tensor:
    """v · A'_l with A' = rows-renormalised (r·I + (1 − r)·spread(drop(fuse(A)))), in factored form: with s_i
    the kept row sums, w_i = v_i / (r + (1 − r)·s_i) and v·A' = r·w + (1 − r)·spread(w · Ã)."""
    self_part = torch.zeros_like(v)
    key_part = torch.zeros(layer.keys, dtype=torch.float64)
    if layer.record.batch <= batch:
        raise VizattnError(f"Batch index {batch} does not exist; the capture holds {layer.record.batch} image(s).")
    for idx in layer.chunks(v.nonzero().flatten()):
        rows = drop_lowest(fuse(layer.record.rows_at(idx, layer.stacks(batch)), fusion), discard)
        w = v[idx] / (r + (1 - r) * rows.sum(-1))
        self_part[idx] += r * w
        key_part += (1 - r) * (w @ rows)
    return self_part + layer.spread(key_part)


def finish(v: torch.Tensor, layers: list[Layer], cell, skipped=()) -> Rollout:
    first = layers[0]
    return Rollout(v[first.extra:].view(first.grid).numpy(), float(v[: first.extra].sum()), first.grid, cell,
                   [layer.name for layer in layers], list(skipped))


def rollout(source, y: int, x: int, fusion: str = "mean", residual: float = 0.5, discard: float = 0.0, *,
            shape: tuple[int, int] | None = None, modules=None, batch: int = 0) -> np.ndarray:
    """Attention rollout for the query at image pixel (y, x): an (h, w) array on the first layer's grid (the
    patch grid; SegFormer: its first stage), the class/register tokens' share set aside (`rollout_details`
    reports it). fusion over heads: mean, max or min; residual r: A' = r·I + (1 − r)·A, rows renormalised;
    discard: the fraction of each fused row's lowest weights dropped first."""
    return rollout_details(source, y, x, fusion, residual, discard, shape=shape, modules=modules, batch=batch).map
