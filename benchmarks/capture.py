"""`vizattn bench capture`: the extra peak memory of capturing the non-local block and asking it for
query maps, at a Cityscapes-size feature grid (512 channels, 128×256), against one dense affinity."""
from __future__ import annotations

import time

import torch

from benchmarks.measure import peak_memory_mib
from vizattn.capture import capture
from vizattn.modules import create_attention

HEADER = ["step", "extra peak MiB", "time s"]


def run(channels: int = 512, grid=(128, 256), queries: int = 10, device: str = "cpu") -> list[list]:
    dev = torch.device(device)
    torch.manual_seed(0)
    module = create_attention("nonlocal", channels).to(dev).eval()
    x = torch.randn(1, channels, *grid, device=dev)
    n = grid[0] * grid[1]
    rows = [["one dense N×N affinity (not computed)", n * n * 4 / 2**20, 0.0]]
    with torch.no_grad():
        module(x)  # warm-up
        t0 = time.perf_counter()
        rows.append(["forward, no capture", peak_memory_mib(lambda: module(x), dev), time.perf_counter() - t0])
        held = {}

        def captured():
            with capture(module) as cap:
                module(x)
            held["cap"] = cap  # keep the records alive, as the app does

        t0 = time.perf_counter()
        rows.append(["forward with capture", peak_memory_mib(captured, dev), time.perf_counter() - t0])
        rec = held["cap"].records["nonlocal"]
        points = [(int(i * grid[0] / queries), int(i * grid[1] / queries)) for i in range(queries)]
        t0 = time.perf_counter()
        rows.append([f"{queries} query_map calls", peak_memory_mib(lambda: [rec.query_map(y, x_) for y, x_ in points], dev),
                     time.perf_counter() - t0])
    stored = sum(t.numel() * t.element_size() for t in rec.data.values()) / 2**20
    rows.append(["record size (q, k, v, out)", stored, 0.0])
    return rows
