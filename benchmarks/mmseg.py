"""`vizattn bench mmseg`: forward time and peak memory of every mmseg R-50-D8 model vizattn opens, at
Cityscapes' crop (512×1024) and full (1024×2048) sizes, built at mmseg's default widths with random weights
(timing does not depend on the values), with and without capture."""
from __future__ import annotations

import torch
from tqdm import tqdm

from benchmarks.measure import measure
from vizattn.capture import capture
from vizattn.foreign.mmseg import HEAD_NAMES, MMSegConfig, MMSegModel

HEADER = ["head", "input", "forward s", "extra peak MiB", "forward with capture s", "extra peak MiB (capture)"]
# the options of mmseg's Cityscapes R-50-D8 configs, as read from their checkpoints' shapes
OPTIONS = {"nl": {"reduction": 2}, "isa": {"isa_channels": 256}, "cc": {"recurrence": 2}, "gc": {"ratio": 0.25},
           "ann": {"project_channels": 256}, "da": {"pam_channels": 64}, "psa": {"mask_size": [97, 97]}}


def run(heads=None, sizes=((512, 1024), (1024, 2048)), repeats: int = 1, device: str = "cpu") -> list[list]:
    dev = torch.device(device)
    rows = []
    jobs = [(h, s) for h in (heads or OPTIONS) for s in sizes]
    for head, size in tqdm(jobs, desc="mmseg models"):
        torch.manual_seed(0)
        model = MMSegModel(MMSegConfig(head, 19, 512, options=dict(OPTIONS[head]))).to(dev).eval()
        x = torch.randn(1, 3, *size, device=dev)
        plain_ms, _, plain_mib = measure(lambda: model(x), dev, 0, repeats)

        def captured():
            with capture(model):
                model(x)

        cap_ms, _, cap_mib = measure(captured, dev, 0, repeats)
        rows.append([f"{HEAD_NAMES[head]} ({head})", f"{size[0]}×{size[1]}", plain_ms / 1000, plain_mib,
                     cap_ms / 1000, cap_mib])
        model = None  # freed before the next head is built
    return rows
