"""Attention in modules vizattn did not write, recorded without hooks: the generic fallback every foreign
family builds on.

While a capture with foreign targets runs, a TorchFunctionMode (thread-local in torch) sees every softmax
(`F.softmax`, `Tensor.softmax`, `nn.Softmax`) and every `F.scaled_dot_product_attention` the forward computes.
Each one is attributed to the innermost target module whose `forward` is on the Python stack; nothing is
registered on the model, so nothing can be left behind, and other threads (other Streamlit sessions on the
same model) never pass through it. A softmax's rows are kept as the module computed them (it materialised
them already); fused attention is kept as its q and k, and rows are computed on demand, never N×N.
The rows become maps once their length is matched to a grid: the module's own height/width arguments, its
4-D input, or the model's input image at some stride, with leading class/register tokens set aside; a length
that fits no grid gives a record that says so instead of a guess.
Where a module's values and output are seen too (an SDPA call; a softmax whose rows are multiplied next), the
capture rebuilds rows · values at 16 sampled queries when it closes and compares them with the module's own
output: `record.verified` is that max |Δ| and `record.verification` says it in words.
"""
from __future__ import annotations

import fnmatch
import math
import sys
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from vizattn.records import AttentionRecord, Factor, rows_spec
from vizattn.errors import VizattnError

# an interpreter's answer for a softmax it keeps for a later one (ISA's two steps make one record)
SKIP = object()
SOFTMAX = {F.softmax, torch.softmax, torch.Tensor.softmax}
MATMUL = {torch.matmul, torch.Tensor.matmul, torch.bmm, torch.Tensor.bmm, torch.Tensor.__matmul__}
MAX_EXTRA_TOKENS = 17  # a class token and up to 16 register tokens
VERIFY_QUERIES = 16  # queries per record whose rows · values are compared with the module's output


def select(model: nn.Module, patterns) -> dict[int, str]:
    """id(module) -> qualified name for every module whose name matches one of the names or globs."""
    chosen = {}
    for name, m in model.named_modules():
        if any(name == p or fnmatch.fnmatchcase(name, p) for p in patterns):
            chosen[id(m)] = name or type(m).__name__
    if not chosen:
        raise VizattnError(f"No module of this model matches {', '.join(patterns)}; name one from "
                           f"model.named_modules() (globs like 'decode_head.*' work).")
    return chosen


def fit_grid(length: int, hints: list[tuple[int, int]], max_extra: int = MAX_EXTRA_TOKENS) -> tuple[tuple[int, int], int] | None:
    """(grid, leading extra tokens) with grid[0]·grid[1] + extra == length, from the first hint that fits at
    some stride (floor or ceil, as convs and patch embeddings round)."""
    for h0, w0 in hints:
        for extra in range(0, max_extra + 1):
            n = length - extra
            if n <= 0:
                break
            for s in range(1, 65):
                for a, b in ((h0 // s, w0 // s), (-(-h0 // s), -(-w0 // s))):
                    if a > 0 and b > 0 and a * b == n and abs(math.log((a / b) / (h0 / w0))) < 0.35:
                        return (a, b), extra
    return None


@dataclass
class ForeignRecord(AttentionRecord):
    """Rows of a foreign module's attention. Data: `rows` (S×N×M as computed, S = batch·heads) or `q`/`k`
    (S×N×d, S×M×d) with config `scale`; optionally `values` (S×M×e) and `output` (S×N×e) to rebuild the
    attention output. Config: heads, query grid and extra tokens, key grid and extra tokens, family (the
    module's library and class, as `kind`), query_independent."""

    family = "distribution"
    outside_label = "the class/register tokens set aside"
    follows_layers = True

    def views(self):
        heads = self.config["heads"]
        return tuple(f"head{i}" for i in range(heads)) + (("mean",) if heads > 1 else ())

    @property
    def distribution_views(self):
        return () if self.config["key_extra"] else self.views()

    @property
    def query_independent_views(self):
        return self.views() if self.config.get("query_independent") else ()

    def tokens(self, view):
        """Every key of the row, the set-aside class/register tokens included: a row spread evenly over them gives
        each patch 1/tokens (the map shows the patches only, so it does not sum to 1)."""
        extra = self.config["key_extra"]
        return math.prod(self.config["key_grid"]) + extra if extra else None

    @property
    def default_view(self):
        return self.views()[-1]

    def note(self, view=None) -> str:
        """What differs from a plain map over the query grid (the same caption for every view)."""
        c = self.config
        parts = []
        if c.get("key_grid") != self.grid:
            parts.append(f"keys on a {c['key_grid'][0]}×{c['key_grid'][1]} grid (queries {self.grid[0]}×{self.grid[1]})")
        if c.get("key_extra"):
            parts.append(f"{c['key_extra']} leading token(s) set aside (class/register); their share is reported")
        if c.get("query_independent"):
            parts.append("one query for all positions: the same map for every pixel")
        return (f"{c.get('family', self.kind)}: " + "; ".join(parts) + ".") if parts else ""

    def hover_spec(self, view):
        heads = self.config["heads"]
        if "rows" in self.data:
            src = dict(rows=Factor(self.data["rows"][:heads], True))
        else:
            src = dict(q=Factor(self.data["q"][:heads]), k=Factor(self.data["k"][:heads]),
                       scale=float(self.config["scale"]))
            if "mask" in self.data:
                src["bias"] = Factor(self.data["mask"][:heads])
        return rows_spec(self.grid, self.config["key_grid"], src, heads, -1 if view == "mean" else int(view[4:]),
                         self.config["query_extra"], self.config["key_extra"],
                         bool(self.config.get("query_independent")))

    def _rows(self, y: int, x: int, batch: int) -> torch.Tensor:
        """heads × M: the full rows (extra key tokens included) of query cell (y, x)."""
        heads = self.config["heads"]
        i = 0 if self.config.get("query_independent") else self.config["query_extra"] + y * self.grid[1] + x
        s = slice(batch * heads, (batch + 1) * heads)
        if "rows" in self.data:
            return self.data["rows"][s, i].float()
        q, k = self.data["q"][s, i].float(), self.data["k"][s].float()
        logits = torch.einsum("hd,hmd->hm", q, k) * self.config["scale"]
        if "mask" in self.data:
            logits = logits + self.data["mask"][s, i].float()
        return torch.softmax(logits, dim=-1)

    def _query_map(self, y, x, view, batch):
        rows = self._rows(y, x, batch)[:, self.config["key_extra"]:]
        row = rows.mean(0) if view == "mean" else rows[int(view[4:])]
        return row.reshape(self.config["key_grid"])

    def outside_share(self, y, x, view=None, batch=0) -> float:
        view = self._check(y, x, view, batch)
        e = self.config["key_extra"]
        if not e:
            return 0.0
        rows = self._rows(int(y), int(x), int(batch))[:, :e].sum(-1)
        return float(rows.mean() if view == "mean" else rows[int(view[4:])])

    def rows_at(self, queries: torch.Tensor, stacks: slice = slice(None)) -> torch.Tensor:
        """S × len(queries) × M in float64: the full rows (extra tokens included) of the query tokens `queries`
        for the stacks (batch·heads) in `stacks`; only these rows are computed, never N×N."""
        if "rows" in self.data:
            return self.data["rows"][stacks][:, queries].double()
        q, k = self.data["q"][stacks][:, queries].double(), self.data["k"][stacks].double()
        logits = q @ k.transpose(-1, -2) * self.config["scale"]
        if "mask" in self.data:
            logits = logits + self.data["mask"][stacks][:, queries].double()
        return torch.softmax(logits, dim=-1)

    def all_rows(self, batch: int = 0) -> torch.Tensor:
        """heads × N × M, every row (for tests and small grids)."""
        heads = self.config["heads"]
        s = slice(batch * heads, (batch + 1) * heads)
        if "rows" in self.data:
            return self.data["rows"][s].float()
        logits = self.data["q"][s].float() @ self.data["k"][s].float().transpose(-1, -2) * self.config["scale"]
        return torch.softmax(logits + (self.data["mask"][s].float() if "mask" in self.data else 0), dim=-1)


@dataclass
class UnmappedRecord(AttentionRecord):
    """A softmax inside a chosen module whose length fits no grid: kept, and said so, never guessed. It has no
    views, so no panel, caption, statistic or browser formula."""

    reason: str = ""

    family = "distribution"  # a softmax's rows, on no grid

    def views(self):
        return ()

    @property
    def default_view(self):
        return None


@dataclass
class _Call:
    name: str
    module: nn.Module
    frame_locals: dict
    model_input: tuple[int, int] | None
    first_arg: object = None  # the module's first argument (its input feature map, for conv-style blocks)
    state: dict | None = None  # the session's scratch space, for interpreters that combine several calls


class Observer(TorchFunctionMode):
    """Sees softmax / fused attention inside the target modules for one capture session, in this thread.
    `interpreters`: id(module) -> callable(call, payload) -> record or None, a family's own reading."""

    def __init__(self, targets: dict[int, str], session, model: nn.Module, interpreters: dict | None = None):
        super().__init__()
        self.targets, self.session, self.model = targets, session, model
        self.interpreters = interpreters or {}
        self._pending: dict[int, ForeignRecord] = {}  # id(softmax output) -> its record, until its values are seen
        self.counts: dict[str, int] = {}
        self.state: dict = {}
        self._made: list[ForeignRecord] = []  # verified when the capture closes (rows may change until then)

    def _owner(self) -> _Call | None:
        frame, model_hw, owner = sys._getframe(2), None, None
        while frame is not None:
            obj = frame.f_locals.get("self")
            if isinstance(obj, nn.Module):
                if owner is None and id(obj) in self.targets:
                    code = frame.f_code
                    first = frame.f_locals.get(code.co_varnames[1]) if code.co_argcount > 1 else None
                    owner = (self.targets[id(obj)], obj, dict(frame.f_locals), first)
                if obj is self.model:
                    for v in frame.f_locals.values():
                        if isinstance(v, torch.Tensor) and v.dim() == 4:
                            model_hw = tuple(v.shape[2:])
                            break
            frame = frame.f_back
        return _Call(owner[0], owner[1], owner[2], model_hw, owner[3], self.state) if owner else None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func in SOFTMAX or func is F.scaled_dot_product_attention or func is F.multi_head_attention_forward:
            call = self._owner()
            if call is not None:
                self._record(call, func, args, kwargs, out)
        elif func in MATMUL and self._pending and args and id(args[0]) in self._pending:
            rec = self._pending.pop(id(args[0]))
            if isinstance(out, torch.Tensor) and isinstance(args[1], torch.Tensor):
                rec.data["values"] = args[1].detach().flatten(0, -3)
                rec.data["output"] = out.detach().flatten(0, -3)
        return out

    def __exit__(self, exc_type, exc, tb):
        out = super().__exit__(exc_type, exc, tb)
        made, self._made = self._made, []
        if exc_type is None:
            for record in made:
                verify(record)
        return out

    def _name(self, base: str) -> str:
        n = self.counts.get(base, 0)
        self.counts[base] = n + 1
        return base if n == 0 else f"{base}#{n}"

    def _record(self, call: _Call, func, args, kwargs, out) -> None:
        interpret = self.interpreters.get(id(call.module))
        payload = (func, args, kwargs, out)
        record = interpret(call, payload) if interpret else None
        if record is SKIP:
            return
        base = call.name
        if isinstance(record, tuple):  # (name, record): a record that belongs to an enclosing module
            base, record = record
        if record is None:
            record = generic_record(call, payload)
        if record is None:
            return
        name = self._name(base)
        self.session.add_named(name, record)
        if isinstance(record, ForeignRecord):
            self._made.append(record)
        if func in SOFTMAX and isinstance(record, ForeignRecord) and "rows" in record.data:
            self._pending[id(out)] = record


def _hints(call: _Call) -> list[tuple[int, int]]:
    """Reference grids, most specific first: the module's height/width, its 4-D input, the model's input."""
    loc, hints = call.frame_locals, []
    h, w = loc.get("height"), loc.get("width")
    if isinstance(h, int) and isinstance(w, int):
        hints.append((h, w))
    if isinstance(call.first_arg, torch.Tensor) and call.first_arg.dim() == 4:
        hints.append(tuple(call.first_arg.shape[2:]))
    if call.model_input:
        hints.append(call.model_input)
    return hints


def _batch(call: _Call) -> int:
    """The batch size: the module's first argument's leading dimension (B×C×H×W or B×N×C)."""
    if isinstance(call.first_arg, torch.Tensor) and call.first_arg.dim() >= 3:
        return int(call.first_arg.shape[0])
    return 1


def generic_record(call: _Call, payload) -> AttentionRecord | None:
    func, args, kwargs, out = payload
    if func is F.scaled_dot_product_attention:
        q, k = args[0], args[1] if len(args) > 1 else kwargs["key"]
        if q.dim() < 3:
            return None
        mask = args[3] if len(args) > 3 else kwargs.get("attn_mask")
        scale = kwargs.get("scale") or (args[6] if len(args) > 6 else None) or q.shape[-1] ** -0.5
        data = {"q": q.detach().flatten(0, -3), "k": k.detach().flatten(0, -3)}
        if isinstance(mask, torch.Tensor):
            if mask.dtype == torch.bool:  # SDPA's boolean mask: True takes part, False is left out (−inf logit)
                mask = torch.zeros(mask.shape, dtype=q.dtype, device=mask.device).masked_fill(~mask, float("-inf"))
            data["mask"] = mask.detach().expand(*q.shape[:-1], k.shape[-2]).flatten(0, -3)
        if kwargs.get("is_causal") or (len(args) > 5 and args[5]):
            return None  # causal attention is not over an image grid
        v = args[2] if len(args) > 2 else kwargs.get("value")
        if isinstance(v, torch.Tensor):
            data["values"], data["output"] = v.detach().flatten(0, -3), out.detach().flatten(0, -3)
        return rows_record(call, data, q.shape[-2], k.shape[-2], float(scale))
    if func in SOFTMAX:
        dim = kwargs.get("dim", args[1] if len(args) > 1 else -1)
        if not isinstance(out, torch.Tensor) or out.dim() < 2 or dim not in (-1, out.dim() - 1):
            return None
        rows = out.detach()
        if rows.dim() == 2:
            rows = rows[:, None]
        return rows_record(call, {"rows": rows.flatten(0, -3)}, rows.shape[-2], rows.shape[-1], 1.0)
    return None


def rows_record(call: _Call, data: dict, n: int, m: int, scale: float, batch: int | None = None) -> AttentionRecord:
    stacks = next(iter(data.values())).shape[0]
    batch = batch or _batch(call)
    heads = stacks // batch if stacks % batch == 0 else stacks
    batch = stacks // heads
    hints = _hints(call)
    # leading class/register tokens only in self-attention over one token sequence (as many queries as keys);
    # anywhere else an extra-token reading could pass off, say, ANN's 110 anchors as a grid
    extra = MAX_EXTRA_TOKENS if n == m else 0
    key = fit_grid(m, hints, extra)
    query = fit_grid(n, hints, extra) if n > 1 else ((1, 1), 0)
    kind = f"{type(call.module).__module__.split('.')[0]}:{type(call.module).__name__}"
    if key is None or query is None:
        what = "keys" if key is None else "queries"
        return UnmappedRecord(kind, (1, 1), batch, {}, {"heads": heads}, reason=(
            f"{call.name}: its softmax has {n} queries × {m} keys, and the {what} fit no grid of this image "
            f"({', '.join(f'{h}×{w}' for h, w in hints) or 'no size known'}, at any stride, with up to "
            f"{MAX_EXTRA_TOKENS} leading tokens): there is no spatial map to show for it."))
    (qg, qe), (kg, ke) = query, key
    if n == 1:  # one query for every position (a global-context mask): the same map for every pixel
        qg = kg
    config = {"heads": heads, "query_extra": qe, "key_extra": ke, "key_grid": kg, "scale": scale,
              "family": kind, "query_independent": n == 1}
    return ForeignRecord(kind, qg, batch, data, config)


def sample_queries(n: int, count: int = VERIFY_QUERIES) -> torch.Tensor:
    """`count` query indices spread evenly over 0..n−1 (both ends included): the same ones every time."""
    return torch.linspace(0, n - 1, min(n, count)).round().long().unique()


def set_verified(rec: AttentionRecord, rebuilt: torch.Tensor, output: torch.Tensor) -> None:
    """Record max |rebuilt − output| and the tolerance it is judged by: float32/64 kernels agree with a float64
    rebuild to ~1e-6 of the output's scale; half-precision kernels (GPU autocast) to a few 1e-3."""
    scale = max(1.0, float(output.abs().max()))
    rec.verified = float((rebuilt.double() - output.double()).abs().max())
    rec.verified_tolerance = (1e-4 if output.dtype in (torch.float32, torch.float64) else 3e-2) * scale


def verify(rec: ForeignRecord) -> None:
    """Rebuild rows · values at `sample_queries` and compare with the module's own output (when both were seen).
    Runs with torch functions undispatched, so an enclosing capture never records the check itself; a record
    whose tensors do not line up (grouped-query heads, say) stays unchecked rather than failing the capture."""
    if rec.verified is not None or "values" not in rec.data or "output" not in rec.data:
        return
    values, output = rec.data["values"], rec.data["output"]
    try:
        with torch.no_grad(), torch._C.DisableTorchFunction():
            queries = sample_queries(output.shape[-2])
            rows = rec.rows_at(queries)
            if rows.shape[0] != values.shape[0] or rows.shape[-1] != values.shape[-2]:
                return
            set_verified(rec, rows @ values.double(), output[:, queries])
    except RuntimeError:  # pragma: no cover - shapes that broadcast in the kernel but not here
        rec.verified = rec.verified_tolerance = None


def reconstruction(rec: ForeignRecord) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(rows · values, output) when the values were seen: the captured rows rebuild the module's output."""
    if "values" not in rec.data or "output" not in rec.data:
        return None
    rows = rec.data["rows"] if "rows" in rec.data else torch.cat([rec.all_rows(b) for b in range(rec.batch)])
    return rows.to(rec.data["values"].dtype) @ rec.data["values"], rec.data["output"]


__all__ = ["SKIP", "ForeignRecord", "Observer", "UnmappedRecord", "fit_grid", "select", "reconstruction",
           "sample_queries", "set_verified", "verify", "np"]
