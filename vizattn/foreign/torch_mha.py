"""`torch.nn.MultiheadAttention` over a flattened grid: the rows are rebuilt from the call's own inputs and
projection weights (its fused fast path computes none; PyTorch skips that path while a capture observes), and
verified: rows · values, merged and projected by the module's own out_proj, give its output at sampled queries."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vizattn.foreign.observe import ForeignRecord, UnmappedRecord, rows_record, sample_queries, set_verified


def matches(module: nn.Module) -> bool:
    return isinstance(module, nn.MultiheadAttention)


def interpret(call, payload):
    func, args, kwargs, out = payload
    if func is not F.multi_head_attention_forward:
        return None
    names = ("query", "key", "value", "embed_dim_to_check", "num_heads", "in_proj_weight", "in_proj_bias", "bias_k",
             "bias_v", "add_zero_attn", "dropout_p", "out_proj_weight", "out_proj_bias", "training",
             "key_padding_mask", "need_weights", "attn_mask", "use_separate_proj_weight", "q_proj_weight",
             "k_proj_weight", "v_proj_weight")
    a = {**dict(zip(names, args)), **kwargs}
    heads = a["num_heads"]
    if a.get("bias_k") is not None or a.get("add_zero_attn") or a.get("is_causal"):
        return UnmappedRecord("torch:MultiheadAttention", (1, 1), 1, {}, {"heads": heads}, reason=(
            f"{call.name}: bias_k/add_zero_attn/causal attention add keys that are not image positions; "
            "vizattn reads plain MultiheadAttention only."))
    q_in, k_in, v_in = a["query"], a["key"], a["value"]
    if q_in.dim() == 2:  # unbatched (L, E)
        q_in, k_in, v_in = q_in[:, None], k_in[:, None], v_in[:, None]
    e = q_in.shape[-1]
    if a.get("use_separate_proj_weight"):
        wq, wk, wv = a["q_proj_weight"], a["k_proj_weight"], a["v_proj_weight"]
    else:
        wq, wk, wv = a["in_proj_weight"].split(e)
    bq, bk, bv = a["in_proj_bias"].split(e) if a.get("in_proj_bias") is not None else (None, None, None)
    with torch.no_grad():
        def heads_first(t, w, b):  # (L, B, E) -> (B·heads, L, E/heads)
            p = F.linear(t, w, b)
            return p.reshape(p.shape[0], p.shape[1] * heads, -1).transpose(0, 1)

        q, k, v = heads_first(q_in, wq, bq), heads_first(k_in, wk, bk), heads_first(v_in, wv, bv)
        data = {"q": q, "k": k, "values": v}
        mask = torch.zeros(q.shape[0], q.shape[1], k.shape[1], dtype=q.dtype, device=q.device)
        if a.get("attn_mask") is not None:
            m = a["attn_mask"]
            m = torch.zeros_like(m, dtype=q.dtype).masked_fill(m, float("-inf")) if m.dtype == torch.bool else m
            mask = mask + (m if m.dim() == 3 else m[None])
        if a.get("key_padding_mask") is not None:
            kpm = a["key_padding_mask"]
            kpm = torch.zeros_like(kpm, dtype=q.dtype).masked_fill(kpm, float("-inf")) if kpm.dtype == torch.bool else kpm
            mask = mask + kpm.repeat_interleave(heads, 0)[:, None, :]
        if a.get("attn_mask") is not None or a.get("key_padding_mask") is not None:
            data["mask"] = mask
    record = rows_record(call, data, q.shape[1], k.shape[1], (e // heads) ** -0.5, batch=q_in.shape[1])
    if isinstance(record, ForeignRecord):
        _verify(record, out, a, heads, batch=q_in.shape[1], unbatched=a["query"].dim() == 2)
    return record


def _verify(record: ForeignRecord, out, a: dict, heads: int, batch: int, unbatched: bool) -> None:
    """out_proj(merged heads of rows · values) against the module's output, at sampled queries (float64);
    undispatched, so an enclosing capture does not record the check's softmax as this module's."""
    got = out[0] if isinstance(out, tuple) else out
    if not isinstance(got, torch.Tensor):
        return
    got = got[:, None] if unbatched else got  # (L, B, E)
    with torch.no_grad(), torch._C.DisableTorchFunction():
        queries = sample_queries(got.shape[0])
        per_head = record.rows_at(queries) @ record.data["values"].double()  # (B·heads) × c × E/heads
        merged = per_head.view(batch, heads, len(queries), -1).permute(2, 0, 1, 3).reshape(len(queries), batch, -1)
        bias = a.get("out_proj_bias")
        rebuilt = F.linear(merged, a["out_proj_weight"].double(), None if bias is None else bias.double())
        set_verified(record, rebuilt, got[queries])
