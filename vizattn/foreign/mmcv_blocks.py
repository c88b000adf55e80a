"""mmcv and mmseg blocks as researchers instantiate them: NonLocal2d, ContextBlock, CrissCrossAttention,
mmseg's SelfAttentionBlock (DANet's PAM, ANN's blocks) and CAM, read through the generic observer; the
criss-cross softmax (H+W entries per position) is laid out as its cross."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vizattn.capture import AttentionRecord
from vizattn.foreign.observe import SOFTMAX, UnmappedRecord, _batch

CLASSES = {"NonLocal2d", "ContextBlock", "CrissCrossAttention", "SelfAttentionBlock", "CAM", "PAM"}


def matches(module: nn.Module) -> bool:
    mod = type(module).__module__
    return type(module).__name__ in CLASSES and (mod.startswith("mmcv.") or mod.startswith("mmseg."))


@dataclass
class CrossRecord(AttentionRecord):
    """mmcv's criss-cross softmax, B×H×W×(H+W): for each position, its column (H) then its row (W)."""

    distribution_views = ("cross",)

    def views(self):
        return ("cross",)

    def _query_map(self, y, x, view, batch):
        h, w = self.grid
        row = self.data["rows"][batch, y, x].float()
        m = torch.zeros(h, w, dtype=row.dtype, device=row.device)
        m[:, x] += row[:h]
        m[y, :] += row[h:]
        return m


@dataclass
class AnchorRowsRecord(AttentionRecord):
    """mmseg's ANN blocks: rows over the pyramid anchors (B×N×S), each spread over the pixels it pools."""

    distribution_views = ("all",)

    def views(self):
        return ("all",)

    def _query_map(self, y, x, view, batch):
        from vizattn.modules.ann import anchor_projection

        kh, kw = self.config["key_grid"]
        row = self.data["rows"][batch, y * self.grid[1] + x].float()
        return (row @ anchor_projection(kh, kw, self.config["sizes"], row.device, row.dtype)).view(kh, kw)


def _under(call, class_name: str) -> bool:
    import sys

    frame = sys._getframe(3)
    while frame is not None:
        if type(frame.f_locals.get("self")).__name__ == class_name:
            return True
        frame = frame.f_back
    return False


def interpret(call, payload):
    func, args, kwargs, out = payload
    name = type(call.module).__name__
    if func not in SOFTMAX:
        return None
    if name == "CrissCrossAttention" and out.dim() == 4:
        b, h, w, _ = out.shape
        return CrossRecord("mmcv:CrissCrossAttention", (h, w), b, {"rows": out.detach()}, {})
    if name == "CAM":
        return UnmappedRecord("mmseg:CAM", (1, 1), _batch(call), {"channel_affinity": out.detach()}, {}, reason=(
            f"{call.name}: DANet's channel attention weighs channels against channels (C×C); it has no spatial "
            "map. Its affinity is kept in the record's data."))
    pools = getattr(call.module, "key_downsample", None)
    if name == "SelfAttentionBlock" and isinstance(pools, nn.ModuleList) and out.dim() == 3:
        sizes = tuple(int(p.output_size if isinstance(p.output_size, int) else p.output_size[0]) for p in pools)
        q_feats = call.frame_locals.get("query_feats")
        k_feats = call.frame_locals.get("key_feats")
        if isinstance(q_feats, torch.Tensor) and out.shape[-1] == sum(s * s for s in sizes):
            return AnchorRowsRecord("mmseg:ANN", tuple(q_feats.shape[2:]), out.shape[0], {"rows": out.detach()},
                                    {"sizes": sizes, "key_grid": tuple(k_feats.shape[2:])})
    if name == "SelfAttentionBlock" and _under(call, "ISAHead"):
        return UnmappedRecord("mmseg:SelfAttentionBlock", (1, 1), 1, {}, {}, reason=(
            f"{call.name}: ISA permutes positions into groups before this block, so its rows are not over the "
            "image grid. Open the checkpoint with vizattn.load (mmseg checkpoints are rebuilt with ISA's long, "
            "short and effective maps)."))
    return None
