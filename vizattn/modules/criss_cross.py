"""Recurrent criss-cross attention (Huang et al., CCNet, ICCV 2019): each position attends to its own row
and column; the same weights applied twice let information reach every position.

Claim: vs a non-local block, 11× less GPU memory and ~85% fewer FLOPs, with full-image context after R=2.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vizattn.records import AttentionRecord, Factor
from vizattn.modules.base import AttentionModule, detach


def cross_attention(q, k, v):
    """Softmax over each position's column then row (H+W entries, itself counted once, in the row).

    q, k: B×C'×H×W, v: B×C×H×W -> (output B×C×H×W, attention B×H×W×(H+W): column part first).
    """
    h = q.shape[2]
    e_col = torch.einsum("bcyx,bckx->byxk", q, k)
    e_col = e_col.masked_fill(torch.eye(h, dtype=torch.bool, device=q.device)[None, :, None, :], float("-inf"))
    e_row = torch.einsum("bcyx,bcyk->byxk", q, k)
    att = torch.softmax(torch.cat([e_col, e_row], dim=-1), dim=-1)
    out = torch.einsum("byxk,bckx->bcyx", att[..., :h], v) + torch.einsum("byxk,bcyk->bcyx", att[..., h:], v)
    return out, att


def spread(mass: torch.Tensor, att: torch.Tensor) -> torch.Tensor:
    """mass (H×W) pushed one loop back: Σ_u mass[u] · (u's cross row), an H×W map with the same total."""
    h = mass.shape[0]
    return torch.einsum("yx,yxk->kx", mass, att[..., :h]) + torch.einsum("yx,yxk->yk", mass, att[..., h:])


@dataclass
class CrissCrossRecord(AttentionRecord):
    """Data: att{r}, v{r}, out{r} per loop r = 1..R (att B×H×W×(H+W), v/out B×C×H×W before gamma)."""

    family = "composition"
    statistics = ("query_independence", "loop_coverage", "where")
    notes = {"effective": "Composition of the loops' affinities; the residual between loops is left out."}
    default_view = "effective"

    def views(self):
        return tuple(f"loop{r}" for r in range(1, self.config["recurrence"] + 1)) + ("effective",)

    @property
    def distribution_views(self):
        return self.views()

    def _query_map(self, y, x, view, batch):
        h, w = self.grid
        mass = torch.zeros(h, w, dtype=self.data["att1"].dtype, device=self.data["att1"].device)
        mass[y, x] = 1.0
        # row q of A_R···A_1: apply the loops from the last to the first
        loops = range(self.config["recurrence"], 0, -1) if view == "effective" else [int(view[4:])]
        for r in loops:
            mass = spread(mass, self.data[f"att{r}"][batch])
        return mass

    def hover_spec(self, view):
        loops = self.config["recurrence"]
        apply = list(range(loops, 0, -1)) if view == "effective" else [int(view[4:])]
        return dict(f="cross", grid=list(self.grid), out=list(self.grid), apply=apply,
                    loops=[Factor(self.data[f"att{r}"][0], True) for r in range(1, loops + 1)])

    def reconstruction(self):
        return {f"loop{r}": (self.data[f"v{r}"], self.data[f"out{r}"]) for r in range(1, self.config["recurrence"] + 1)}


class CrissCross(AttentionModule):
    kind = "criss_cross"

    def __init__(self, channels: int, recurrence: int = 2, reduction: int = 8):
        super().__init__()
        inner = max(1, channels // reduction)
        self.query = nn.Conv2d(channels, inner, 1)
        self.key = nn.Conv2d(channels, inner, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))
        self.recurrence = recurrence

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        saved = {}
        for r in range(1, self.recurrence + 1):  # shared weights on every loop
            v = self.value(x)
            out, att = cross_attention(self.query(x), self.key(x), v)
            saved.update({f"att{r}": att, f"v{r}": v, f"out{r}": out})
            x = self.gamma * out + x
        b, _, h, w = x.shape
        self.emit(lambda: CrissCrossRecord(self.kind, (h, w), b, detach(**saved), {"recurrence": self.recurrence}))
        return x
