"""`vizattn bench modules`: time, peak memory and FLOPs of every context module against the non-local block,
on the papers' own set-ups (ANN: 2048 channels at 96², 128², 128×256; ISA: 512 channels at 256×128)."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from benchmarks.measure import analytic_gflops, markdown_table, measure
from vizattn.modules import create_attention, dense_attention

INNER = 256  # key/value width the ANN and ISA papers give every block, so only the pattern differs


@dataclass(frozen=True)
class Setup:
    paper: str
    channels: int
    grid: tuple[int, int]


SETUPS = (
    Setup("ANN", 2048, (96, 96)),
    Setup("ANN", 2048, (128, 128)),
    Setup("ANN", 2048, (128, 256)),
    Setup("ISA", 512, (256, 128)),
)


def module_options(name: str, channels: int) -> dict:
    """Each module configured with a 256-wide inner projection where it has one."""
    return {
        "nonlocal": {"reduction": max(1, channels // INNER)},
        "isa": {"key_channels": INNER, "value_channels": INNER},
        "apnb": {"key_channels": INNER, "value_channels": INNER},
        "afnb": {"key_channels": INNER, "value_channels": INNER},
        "criss_cross": {"reduction": 8},
        "danet": {"reduction": 8},
        "lesa": {"heads": 8},
    }.get(name, {})


# (label, module name, run the papers' dense matmul path)
ENTRIES = (
    ("nonlocal (dense)", "nonlocal", True),
    ("nonlocal (fused SDPA)", "nonlocal", False),
    ("isa", "isa", False),
    ("criss_cross (R=2)", "criss_cross", False),
    ("gc", "gc", False),
    ("lesa", "lesa", False),
    ("psa (parallel)", "psa", False),
    ("apnb", "apnb", False),
    ("afnb", "afnb", False),
    ("danet", "danet", False),
)

# LESA (8 heads over all positions, 2048-wide values) and DANet (2048-wide values) each cost 4-9 TFLOP per
# call at 2048 channels and 128×256: many minutes per call on a 2-core CPU. They run on the 512-channel set-up.
HEAVY_AT_2048 = {"lesa", "danet"}

HEADER = ["paper set-up", "module", "time ms", "peak MiB", "GFLOPs", "NL/x time", "NL/x memory", "FLOPs saved"]


def run(setups=SETUPS, entries=ENTRIES, warmup: int = 1, repeats: int = 2, device: str = "cpu",
        out_dir: Path | None = None) -> list[list]:
    dev = torch.device(device)
    rows = []
    jobs = [(s, e) for s in setups for e in entries if not (s.channels >= 2048 and e[1] in HEAVY_AT_2048)]
    reference = {}
    for setup, (label, name, dense) in tqdm(jobs, desc="bench modules", unit="module"):
        c, (h, w) = setup.channels, setup.grid
        opts = module_options(name, c)
        build = lambda: create_attention(name, c, **opts)  # noqa: E731
        torch.manual_seed(0)
        module = build().to(dev).eval()
        x = torch.randn(1, c, h, w, device=dev)

        def call():
            with dense_attention(dense):
                module(x)

        gflops = analytic_gflops(build, (1, c, h, w))
        key = (setup.paper, setup.grid)
        try:
            median, _, peak = measure(call, dev, warmup, repeats)
        except (RuntimeError, MemoryError) as err:  # one module out of memory must not lose the whole table
            rows.append([f"{setup.paper} {c}×{h}×{w}", label, f"failed: {str(err).splitlines()[0][:60]}", "", gflops, "", "", ""])
            module = x = None  # freed before the next entry is built
            continue
        if label == "nonlocal (dense)":
            reference[key] = (median, peak, gflops)
        ref_t, ref_m, ref_f = reference.get(key, (median, peak, gflops))
        rows.append([
            f"{setup.paper} {c}×{h}×{w}", label, median, peak, gflops,
            ref_t / median, ref_m / max(peak, 1e-3), f"{100 * (1 - gflops / ref_f):.0f}%",
        ])
        module = x = None  # freed before the next entry is built
    if out_dir is not None:
        import io

        from vizattn.export import output_dir, write_into

        out_dir = output_dir(out_dir)
        table = io.StringIO()
        csv.writer(table).writerows([HEADER] + rows)
        write_into(out_dir, "modules.csv", table.getvalue().encode())
        write_into(out_dir, "modules.md", (markdown_table(HEADER, rows) + "\n").encode())
    return rows
