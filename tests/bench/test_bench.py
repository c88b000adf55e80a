"""The benchmark commands run end to end on tiny set-ups and write their tables (no timing is asserted)."""
import csv

from benchmarks import modules
from benchmarks.measure import analytic_gflops
from vizattn.cli import main
from vizattn.modules import create_attention


def test_modules_bench_writes_csv_and_markdown_with_ratios_to_nl(tmp_path):
    setups = [modules.Setup("tiny", 32, (8, 12))]
    entries = [e for e in modules.ENTRIES if e[1] in ("nonlocal", "apnb", "gc")]
    rows = modules.run(setups, entries, warmup=0, repeats=1, out_dir=tmp_path)
    assert [r[1] for r in rows] == ["nonlocal (dense)", "nonlocal (fused SDPA)", "gc", "apnb"]
    assert rows[0][5] == 1.0 and rows[0][7] == "0%"  # the reference against itself
    table = list(csv.reader(open(tmp_path / "modules.csv")))
    assert table[0] == modules.HEADER and len(table) == 5
    assert "| nonlocal (dense) |" in (tmp_path / "modules.md").read_text()


def test_analytic_flops_of_the_non_local_block():
    c, inner, h, w = 8, 4, 3, 5
    n = h * w
    expected = 2 * (3 * n * c * inner + n * n * inner * 2 + n * inner * c)  # θ,φ,g; QKᵀ and AV; W_z
    assert analytic_gflops(lambda: create_attention("nonlocal", c), (1, c, h, w)) * 1e9 == expected


def test_capture_bench_command(capsys):
    assert main(["bench", "capture", "--channels", "16", "--height", "8", "--width", "8", "--queries", "3"]) == 0
    out = capsys.readouterr().out
    assert "forward with capture" in out and "3 query_map calls" in out
