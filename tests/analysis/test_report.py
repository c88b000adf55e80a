"""`vizattn report` end to end on tiny models and scenes: every figure, the JSON and report.md."""
import json

import torch

from vizattn.models.segmenter import ModelConfig, build_model
from vizattn.report import build_report
from vizattn.zoo import save


def test_report_writes_figures_json_and_markdown(tmp_path):
    torch.manual_seed(0)
    models = tmp_path / "models"
    for head in ("nonlocal", "isa", "criss_cross", "lesa", "psa_parallel", "gc"):
        save(build_model(ModelConfig(head)).eval(), models / f"{head}.safetensors")
    bench = tmp_path / "modules.csv"
    bench.write_text("paper set-up,module,time ms,peak MiB,GFLOPs,NL/x time,NL/x memory,FLOPs saved\n"
                     "ANN 2048×8×8,nonlocal (dense),10.0,100.0,1.0,1.0,1.0,0%\n"
                     "ANN 2048×16×16,nonlocal (dense),40.0,400.0,4.0,1.0,1.0,0%\n"
                     "ANN 2048×8×8,apnb,2.0,4.0,0.5,5.0,25.0,50%\n")
    out = tmp_path / "report"
    result = build_report(out, scenes=2, queries=8, progress=False, directory=models, size=64, bench_csv=bench)
    names = {"query_independence", "query_maps", "unary_binary", "coverage", "isa_vs_nl", "efficiency", "psa",
             "where_own_class", "where_distance_px", "attribution"}
    assert set(result["figures"]) == {f"{n}.{e}" for n in names for e in ("png", "svg")}
    assert all((out / f).stat().st_size > 1000 for f in result["figures"])
    saved = json.loads((out / "report.json").read_text())
    assert set(saved["query_independence"]) == {"nonlocal", "isa", "criss_cross", "lesa", "gc"}
    assert abs(saved["query_independence"]["gc"]["attention"]) < 1e-12  # one mask for every query
    assert saved["criss_cross"]["coverage"]["effective"] == 1.0 and set(saved["criss_cross"]["miou_by_loops"]) == {"1", "2", "3"}
    assert "miou_without_unary" in saved["lesa_unary_ablation"]
    md = (out / "report.md").read_text()
    for section in ("Query-independence", "Unary vs binary", "Coverage", "Sparse factorisation", "Efficiency",
                    "PSA weights", "Where attention goes", "Attribution"):
        assert section in md
    assert "0.401" in md and "0.67" in md  # the papers' numbers beside ours
