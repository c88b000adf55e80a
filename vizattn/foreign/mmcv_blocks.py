"""mmcv and mmseg blocks as researchers instantiate them: NonLocal2d, ContextBlock, CrissCrossAttention,
mmseg's SelfAttentionBlock (DANet's PAM, ANN's blocks, ISA's two steps) and CAM, read through the generic
observer; the criss-cross softmax (H+W entries per position) is laid out as its cross, and ISAHead's two
softmaxes become one ISA record with the long, short and effective views of our own ISA."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vizattn.records import AttentionRecord, Factor, rows_spec
from vizattn.foreign.observe import SKIP, SOFTMAX, UnmappedRecord, _batch
from vizattn.modules.isa import ISARecord

CLASSES = {"NonLocal2d", "ContextBlock", "CrissCrossAttention", "SelfAttentionBlock", "CAM", "PAM"}


def matches(module: nn.Module) -> bool:
    mod = type(module).__module__
    return type(module).__name__ in CLASSES and (mod.startswith("mmcv.") or mod.startswith("mmseg."))


@dataclass
class CrossRecord(AttentionRecord):
    """mmcv's criss-cross softmax, B×H×W×(H+W): for each position, its column (H) then its row (W). One loop,
    one softmax: a distribution, not a composition."""

    family = "distribution"
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

    def hover_spec(self, view):
        return dict(f="cross", grid=list(self.grid), out=list(self.grid), apply=[1],
                    loops=[Factor(self.data["rows"][0], True)])


@dataclass
class AnchorRowsRecord(AttentionRecord):
    """mmseg's ANN blocks: rows over the pyramid anchors (B×N×S), each spread over the pixels it pools."""

    family = "anchors"
    distribution_views = ("all",)

    def views(self):
        return ("all",)

    def _query_map(self, y, x, view, batch):
        from vizattn.modules.ann import anchor_projection

        kh, kw = self.config["key_grid"]
        row = self.data["rows"][batch, y * self.grid[1] + x].float()
        return (row @ anchor_projection(kh, kw, self.config["sizes"], row.device, row.dtype)).view(kh, kw)

    def hover_spec(self, view):
        return rows_spec(self.grid, self.config["key_grid"], dict(rows=Factor(self.data["rows"][:1], True)),
                         boxes=list(self.config["sizes"]))


@dataclass
class ISARowsRecord(ISARecord):
    """mmseg's ISAHead read live. mmseg gathers the groups exactly as our ISA does (long-range: batch
    (n, loc_h, loc_w) × lattice positions; short-range: batch (n, glb_h, glb_w) × block positions), so its two
    softmax outputs are our A_L and A_S rows as they are: every view, the padding share and the notes are
    ISARecord's own. Data: `long_rows`, `short_rows`; config: group, lattice, pad."""

    def _like(self):
        return self.data["long_rows"]

    def _long_rows(self, i, j, batch):
        dh, dw = self.config["group"]
        oh, ow = self.config["lattice"]
        return self.data["long_rows"].view(-1, dh, dw, oh * ow, oh * ow)[batch, :, :, i * ow + j].view(dh, dw, oh, ow)

    def _short_row(self, i, j, a, b, batch):
        dh, dw = self.config["group"]
        oh, ow = self.config["lattice"]
        return self.data["short_rows"].view(-1, oh, ow, dh * dw, dh * dw)[batch, i, j, a * dw + b].view(dh, dw)

    def hover_spec(self, view):
        dh, dw = self.config["group"]
        oh, ow = self.config["lattice"]
        return self._hover_isa(view, dict(rows=Factor(self.data["long_rows"][: dh * dw], True)),
                               dict(rows=Factor(self.data["short_rows"][: oh * ow], True)))


def _enclosing(class_name: str):
    """(module, its forward's locals) of the innermost `class_name` instance whose forward is running."""
    import sys

    frame = sys._getframe(3)
    while frame is not None:
        obj = frame.f_locals.get("self")
        if type(obj).__name__ == class_name and isinstance(obj, nn.Module):
            return obj, frame.f_locals
        frame = frame.f_back
    return None


def _isa(call, out, head, loc):
    """ISAHead's global step is kept until its local step: then both make one record, named as the head."""
    key = ("isa", id(head))
    if call.module is head.global_relation:
        call.state[key] = out.detach()
        return SKIP
    long_rows = call.state.pop(key, None)
    if call.module is not head.local_relation or long_rows is None:
        return UnmappedRecord("mmseg:SelfAttentionBlock", (1, 1), 1, {}, {}, reason=(
            f"{call.name}: one step of ISA seen without the other; capture the whole ISAHead (both "
            "global_relation and local_relation) to see its maps."))
    pad_h, pad_w = int(loc["pad_h"]), int(loc["pad_w"])
    config = {"group": (int(loc["loc_h"]), int(loc["loc_w"])), "lattice": (int(loc["glb_h"]), int(loc["glb_w"])),
              "pad": (pad_h // 2, pad_h - pad_h // 2, pad_w // 2, pad_w - pad_w // 2), "family": "mmseg:ISAHead"}
    name = call.name.rsplit(".", 1)[0] if "." in call.name else call.name
    return name, ISARowsRecord("isa", (int(loc["h"]), int(loc["w"])), int(loc["n"]),
                               {"long_rows": long_rows, "short_rows": out.detach()}, config)


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
    if name == "SelfAttentionBlock" and out.dim() == 3:
        found = _enclosing("ISAHead")
        if found is not None:
            return _isa(call, out, *found)
    return None
