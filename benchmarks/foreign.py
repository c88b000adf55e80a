"""`vizattn bench foreign`: what capturing a model vizattn did not write costs — SegFormer-B0 (transformers'
default SegformerConfig: widths 32/64/160/256, depths 2/2/2/2, heads 1/2/5/8, sr 8/4/2/1, 150 classes) at
512×512 with random weights, extra peak memory and time of the forward with and without capture."""
from __future__ import annotations

import torch

from benchmarks.measure import measure
from vizattn.capture import capture

HEADER = ["model", "input", "attention", "forward s", "extra peak MiB", "forward with capture s",
          "extra peak MiB (capture)", "records", "record MiB"]


def run(size: int = 512, repeats: int = 2) -> list[list]:
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    rows = []
    for impl in ("sdpa", "eager"):
        torch.manual_seed(0)
        model = SegformerForSemanticSegmentation._from_config(SegformerConfig(), attn_implementation=impl).eval()
        x = torch.randn(1, 3, size, size)
        dev = torch.device("cpu")
        plain_ms, _, plain_mib = measure(lambda: model(pixel_values=x), dev, 1, repeats)
        held = {}

        def captured():
            with capture(model) as cap:
                model(pixel_values=x)
            held["cap"] = cap  # the records stay alive, as in the app

        cap_ms, _, cap_mib = measure(captured, dev, 1, repeats)
        recs = held["cap"].records
        stored = sum(t.numel() * t.element_size() for r in recs.values() for t in r.data.values()) / 2**20
        rows.append(["SegFormer-B0", f"{size}×{size}", impl, plain_ms / 1000, plain_mib, cap_ms / 1000, cap_mib,
                     len(recs), stored])
    return rows
