"""`vizattn bench analyze`: throughput of `vizattn analyze` on generated scenes with 1 and 2 local worker processes
and with Ray Data's 2 actors on a local cluster, the driver's extra peak memory as the image count grows (one
in-process worker: flat when only summaries are kept), and what the extremes (extremes.parquet) cost: whole runs
with and without their bookkeeping, and the time spent inside it, as shares of the run (medians of a few runs)."""
from __future__ import annotations

import statistics
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import torch

from vizattn.analysis import summary
from vizattn.analyze import Job, analyze
from benchmarks.measure import peak_memory_mib

SPEED_HEADER = ["engine", "workers", "images", "wall s", "images/s"]
MEMORY_HEADER = ["images", "wall s", "extra peak MiB (one process)"]
EXTREMES_HEADER = ["measure (one process)", "with extremes", "without", "extremes' share of the run"]


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


@contextmanager
def _extremes(mode: str, spent: list[float]):
    """mode "timed": the extremes code as it is, its time added to spent[0] (a query's entry and trim, the trims
    of merging shards' tails, the rows of extremes.parquet); "off": that code skipped (no tails, no rows)."""
    add_tail, trim, tail_rows = summary.Summary.add_tail, summary._trim, summary.tail_rows
    depth = [0]

    def timed(fn):
        def wrapper(*args, **kwargs):
            if depth[0]:
                return fn(*args, **kwargs)  # already inside a timed call
            depth[0] += 1
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - t0
                depth[0] -= 1
        return wrapper

    if mode == "off":
        summary.Summary.add_tail = lambda self, *args: None
        summary.tail_rows = lambda s: []
    else:
        summary.Summary.add_tail, summary._trim, summary.tail_rows = timed(add_tail), timed(trim), timed(tail_rows)
    try:
        yield
    finally:
        summary.Summary.add_tail, summary._trim, summary.tail_rows = add_tail, trim, tail_rows


def extremes_cost(model: str = "criss_cross", images: int = 100, size: int = 384, queries: int = 64,
                  repeats: int = 3) -> list[list]:
    """One in-process worker (the patched code runs there), with and without the extremes, alternated (and their
    order swapped every repeat) so that a slow spell of the machine falls on both."""
    walls: dict[str, list[float]] = {"timed": [], "off": []}
    inside: list[float] = []
    job = Job(model=model, scenes=images, queries=queries, size=size)
    with tempfile.TemporaryDirectory() as tmp:
        analyze(Job(model=model, scenes=1, queries=queries, size=size), Path(tmp) / "warm", progress=False)
        for i in range(repeats):
            for mode in ("timed", "off") if i % 2 == 0 else ("off", "timed"):
                spent = [0.0]
                with _extremes(mode, spent):
                    t0 = time.perf_counter()
                    analyze(job, Path(tmp) / f"{mode}{i}", shard_size=8, progress=False)
                    walls[mode].append(time.perf_counter() - t0)
                if mode == "timed":
                    inside.append(spent[0])
    w, wo, ins = (statistics.median(v) for v in (walls["timed"], walls["off"], inside))
    fw, fwo = min(walls["timed"]), min(walls["off"])
    return [[f"{images} images: wall s, median of {repeats}", f"{w:.2f}", f"{wo:.2f}", f"{(w - wo) / w:+.1%}"],
            [f"{images} images: wall s, fastest of {repeats}", f"{fw:.2f}", f"{fwo:.2f}", f"{(fw - fwo) / fw:+.1%}"],
            ["s inside the extremes code, median", f"{ins:.3f}", "", f"{ins / w:.2%}"]]
