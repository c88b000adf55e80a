"""Timing, peak-memory and analytic-FLOP measurement of one callable, shared by every benchmark."""
from __future__ import annotations

import gc
import re
import statistics
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from vizattn.tables import markdown_table  # noqa: F401 (the benchmarks print through it)

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _rss_kib(field: str) -> int:
    return int(re.search(rf"{field}:\s+(\d+)", _STATUS.read_text()).group(1))


def peak_memory_mib(fn, device: torch.device) -> float:
    """Extra peak memory of one call of fn: CUDA allocator peak, or Linux's VmHWM reset via clear_refs on CPU."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    base = _rss_kib("VmRSS")
    _CLEAR_REFS.write_text("5")  # resets VmHWM to the current RSS
    fn()
    return max(0, _rss_kib("VmHWM") - base) / 1024


def analytic_gflops(build, shape, *extra_shapes) -> float:
    """FLOPs (2 per multiply-add of matmuls and convs) counted from shapes on the meta device: nothing runs."""
    with torch.device("meta"):
        module = build().eval()
        inputs = [torch.empty(shape)] + [torch.empty(s) for s in extra_shapes]
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(*inputs)
    return counter.get_total_flops() / 1e9


def measure(fn, device: torch.device, warmup: int, repeats: int) -> tuple[float, float, float]:
    """(median ms, min ms, extra peak MiB over the timed calls) of fn() under no-grad."""
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    times = []

    def timed():
        for _ in range(repeats):
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            times.append((time.perf_counter() - t0) * 1000)

    with torch.no_grad():
        for _ in range(warmup):
            fn()
        peak = peak_memory_mib(timed, device)
    return statistics.median(times), min(times), peak
