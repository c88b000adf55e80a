"""`vizattn bench analyze`: throughput of `vizattn analyze` on generated scenes with 1 and 2 local worker processes
and with Ray Data's 2 actors on a local cluster, and the driver's extra peak memory as the image count grows (one
in-process worker: flat when only summaries are kept)."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from vizattn.analyze import Job, analyze
from benchmarks.measure import peak_memory_mib

SPEED_HEADER = ["engine", "workers", "images", "wall s", "images/s"]
MEMORY_HEADER = ["images", "wall s", "extra peak MiB (one process)"]


def run(model: str = "criss_cross", images: int = 100, memory_images=(100, 400), size: int = 384,
        queries: int = 64) -> tuple[list[list], list[list]]:
    speed, memory = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for engine, workers in (("local", 1), ("local", 2), ("ray", 2)):
            job = Job(model=model, scenes=images, queries=queries, size=size)
            t0 = time.perf_counter()
            analyze(job, Path(tmp) / f"{engine}{workers}", engine, workers, shard_size=8, progress=False)
            wall = time.perf_counter() - t0
            speed.append([engine, workers, images, wall, images / wall])
        for n in memory_images:
            job = Job(model=model, scenes=n, queries=queries, size=size)
            t0 = time.perf_counter()
            peak = peak_memory_mib(lambda: analyze(job, Path(tmp) / f"mem{n}", shard_size=8, progress=False),
                                   torch.device("cpu"))
            memory.append([n, time.perf_counter() - t0, peak])
    return speed, memory
