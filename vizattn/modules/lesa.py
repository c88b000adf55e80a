"""Locally enhanced self-attention (Yang et al., LESA, 2021): self-attention split CRF-style into a unary
term (a grouped 3×3 conv standing in for "attend to yourself") and a binary term (multi-head attention to
all positions), fused by a dynamic gate w: out = unary + w ⊙ binary.

Claim: plain self-attention gives itself < 3% of its weight; enhancing the unary term lifts it to ~67%.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange
from torch import nn

from vizattn.records import AttentionRecord, Factor, rows_spec
from vizattn.errors import VizattnError
from vizattn.modules.base import AttentionModule, attend, detach, softmax_row


@dataclass
class LESARecord(AttentionRecord):
    """Data: q/k (B×heads×N×d; q already carries each head's logit scale), v and binary (B×heads×N×e),
    unary and gate (B×C×H×W); with the relative-position term also rel_q/rel_k (d×(2N−1)) and
    term_scale (3×heads: the normalised weights of q·k, q·r and k·r)."""

    family = "distribution"
    statistics = ("query_independence", "unary_share", "gate_shares", "where")
    default_view = "mean"

    def views(self):
        return tuple(f"head{i}" for i in range(self.config["heads"])) + ("mean",)

    @property
    def distribution_views(self):
        return self.views()

    def _rows(self, i: int, batch: int) -> torch.Tensor:
        """heads×N attention rows of query position i."""
        q, k = self.data["q"][batch, :, i], self.data["k"][batch]
        if "rel_q" not in self.data:
            return softmax_row(q, k, 1.0)
        n = k.shape[1]
        offsets = torch.arange(n, device=k.device)
        rq = self.data["rel_q"][:, i - offsets + n - 1]  # d×N: the embedding of offset i − j for every key j
        rk = self.data["rel_k"][:, offsets - i + n - 1]  # d×N: offset j − i
        a = self.data["term_scale"]
        logits = (a[0, :, None] * torch.einsum("hd,hnd->hn", q, k) + a[1, :, None] * (q @ rq)
                  + a[2, :, None] * torch.einsum("hnd,dn->hn", k, rk))
        return torch.softmax(logits, dim=-1)

    def _query_map(self, y, x, view, batch):
        h, w = self.grid
        rows = self._rows(y * w + x, batch)
        return (rows.mean(0) if view == "mean" else rows[int(view[4:])]).reshape(h, w)

    def hover_spec(self, view):
        src = dict(q=Factor(self.data["q"][0]), k=Factor(self.data["k"][0]), scale=1.0)
        if "rel_q" in self.data:
            src.update(rel_q=Factor(self.data["rel_q"]), rel_k=Factor(self.data["rel_k"]),
                       terms=Factor(self.data["term_scale"]))
        return rows_spec(self.grid, self.grid, src, self.config["heads"], -1 if view == "mean" else int(view[4:]))

    def gate_at(self, y: int, x: int, batch: int = 0) -> torch.Tensor:
        """The fusion gate w (C values) at grid position (y, x)."""
        self._check(y, x, None, batch)
        return self.data["gate"][batch, :, y, x]

    def shares(self, batch: int | None = None) -> tuple[float, float]:
        """(unary, binary) weight shares 1/(1+w) and w/(1+w), averaged over positions and channels."""
        g = self.data["gate"] if batch is None else self.data["gate"][batch]
        unary = (1.0 / (1.0 + g)).mean().item()
        return unary, 1.0 - unary

    def reconstruction(self):
        h, w = self.grid
        grid = lambda t: rearrange(t, "b (h w) d -> b d h w", h=h, w=w)  # noqa: E731
        return {f"head{i}": (grid(self.data["v"][:, i]), grid(self.data["binary"][:, i]))
                for i in range(self.config["heads"])}


def logit_scale(bn: nn.BatchNorm2d, mean: torch.Tensor, var: torch.Tensor, count: int) -> torch.Tensor:
    """The factor γ/√(σ²+ε) a BatchNorm over attention logits applies per channel: batch statistics while
    training (running ones updated as BatchNorm does), running statistics in eval. Its shift is dropped:
    it is constant along a softmax row."""
    if bn.training:
        with torch.no_grad():
            bn.running_mean.lerp_(mean.detach(), bn.momentum)
            bn.running_var.lerp_(var.detach() * count / max(1, count - 1), bn.momentum)
            bn.num_batches_tracked += 1
    else:
        var = bn.running_var
    return bn.weight / torch.sqrt(var + bn.eps)


class LESA(AttentionModule):
    """As the official module (LESA_classification, lib/models/LESA.py): BN on q/k/v, BN on the per-head
    logits in place of 1/√d, BN on the output; q/k C/(2·heads) and v C/heads wide per head; gate hidden
    width 2C/shrink. `position=(H, W)` adds the official relative-position term, which is defined for that
    one size (offsets are raster-order i − j); without it the module runs at any H×W."""

    kind = "lesa"

    def __init__(self, channels: int, heads: int = 8, shrink: int = 2, position: tuple[int, int] | None = None):
        super().__init__()
        if channels % (2 * heads):
            raise VizattnError(f"LESA needs channels divisible by 2·heads; {channels} and {heads} heads are not.")
        self.heads, self.qk, self.v = heads, channels // heads // 2, channels // heads
        self.unary = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, groups=heads, bias=False),
            *([nn.Conv2d(channels, channels, 1, bias=False)] if heads > 1 else []),
            nn.BatchNorm2d(channels),
        )
        self.qkv = nn.Conv2d(channels, 2 * channels, 1, bias=False)
        nn.init.normal_(self.qkv.weight, std=channels ** -0.5)
        self.qkv_norm = nn.BatchNorm2d(2 * channels)
        self.position = tuple(position) if position else None
        terms = 3 if self.position else 1  # q·k, and with positions q·r and k·r
        self.logit_norm = nn.BatchNorm2d(terms * heads)
        self.out_norm = nn.BatchNorm2d(2 * channels if self.position else channels)  # sv (and sve, interleaved)
        if self.position:
            n = self.position[0] * self.position[1]
            self.relative = nn.Parameter(torch.randn(2 * self.qk + self.v, 2 * n - 1) * self.v ** -0.5)
        hidden = max(1, 2 * channels // shrink)
        self.gate = nn.Sequential(
            nn.ReLU(), nn.Conv2d(2 * channels, hidden, 1, bias=False), nn.BatchNorm2d(hidden),
            nn.ReLU(), nn.Conv2d(hidden, channels, 1, bias=False), nn.BatchNorm2d(channels), nn.Sigmoid(),
        )

    def _split(self, x):
        """B×(heads·(2qk+v))×H×W -> q, k (B×heads×N×qk), v (B×heads×N×v); each head's channels are q|k|v."""
        t = rearrange(x, "b (n c) h w -> b n (h w) c", n=self.heads)
        return t.split([self.qk, self.qk, self.v], dim=-1)

    def _binary(self, q, k, v):
        """Attention of every head without positions: sv (B×heads×N×v), the scaled q and the record's extras."""
        if self.logit_norm.training:  # batch statistics of q·k over B×N×N without forming it
            b, _, n, _ = q.shape
            mean = torch.einsum("bhc,bhc->h", q.sum(2), k.sum(2)) / (b * n * n)
            sq = torch.einsum("bhcd,bhcd->h", q.transpose(2, 3) @ q, k.transpose(2, 3) @ k) / (b * n * n)
            scale = logit_scale(self.logit_norm, mean, sq - mean ** 2, b * n * n)
        else:
            scale = logit_scale(self.logit_norm, None, None, 0)
        q = q * scale[:, None, None]
        return attend(q, k, v, 1.0), q, {}

    def _binary_position(self, q, k, v):
        """The official term with relative positions, materialising the N×N logits (one fixed, small size)."""
        b, heads, n, _ = q.shape
        idx = torch.arange(n, device=q.device)
        emb = self.relative[:, idx[:, None] - idx[None, :] + n - 1]  # c×N×N: offset i − j
        eq, ek, ev = emb.split([self.qk, self.qk, self.v], dim=0)
        terms = torch.stack([
            torch.einsum("bhic,bhjc->bhij", q, k),
            torch.einsum("bhic,cij->bhij", q, eq),
            torch.einsum("bhjc,cji->bhij", k, ek),
        ], dim=1)  # B×3×heads×N×N
        flat = terms.flatten(1, 2)
        if self.logit_norm.training:
            mean, var = flat.mean(dim=(0, 2, 3)), flat.var(dim=(0, 2, 3), unbiased=False)
            scale = logit_scale(self.logit_norm, mean, var, b * n * n)
        else:
            scale = logit_scale(self.logit_norm, None, None, 0)
        a = scale.view(3, heads)
        att = torch.softmax(torch.einsum("bthij,th->bhij", terms, a), dim=-1)
        sv, sve = att @ v, torch.einsum("bhij,cij->bhic", att, ev)
        extras = {"sve": sve, "rel_q": self.relative[: self.qk], "rel_k": self.relative[self.qk : 2 * self.qk],
                  "term_scale": a}
        return sv, q, extras

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        if self.position and (h, w) != self.position:
            raise VizattnError(
                f"This LESA module's relative-position term is defined for {self.position[0]}×{self.position[1]} "
                f"feature maps only (as in the official code); this input gives {h}×{w}."
            )
        unary = self.unary(x)
        q, k, v = self._split(self.qkv_norm(self.qkv(x)))
        sv, q_scaled, extras = (self._binary_position if self.position else self._binary)(q, k, v)
        grid = lambda t: rearrange(t, "b n (h w) c -> b (n c) h w", h=h)  # noqa: E731
        if self.position:  # the official output BN sees (sv, sve) of each channel side by side, then sums them
            pair = torch.stack([grid(sv), grid(extras.pop("sve"))], dim=2).flatten(1, 2)
            binary = self.out_norm(pair).view(b, c, 2, h, w).sum(2)
        else:
            binary = self.out_norm(grid(sv))
        gate = self.gate(torch.cat([unary, binary], dim=1))
        self.emit(lambda: LESARecord(
            self.kind, (h, w), b,
            detach(q=q_scaled, k=k, v=v, binary=sv, unary=unary, gate=gate, **extras),
            {"heads": self.heads, "position": self.position},
        ))
        return unary + gate * binary
