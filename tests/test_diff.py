"""`vizattn diff`: A, B and A − B at one pixel. Exactly A − B where the grids match, on the image grid where they
differ (and said so), both models' sha256 in the exports, and one sentence for models that cannot be compared."""
import json

import numpy as np
import pytest

from tests.foreign.test_observe import segformer
from tests.support.factories import tiny_attention
from vizattn.diff import differences, export_diff
from vizattn.errors import VizattnError
from vizattn.explore import run_model
from vizattn.model import Provenance, adopt
from vizattn.sources import image_source
from vizattn.zoo import load

PIXEL = (100, 200)


def test_the_difference_is_exactly_a_minus_b_where_the_grids_match(tmp_path):
    paths, lines = export_diff(["criss_cross", "isa"], "scene:1000000007", PIXEL, None, tmp_path,
                               ("png", "npz", "json"))
    assert {p.suffix for p in paths} == {".png", ".npz", ".json"} and "common 48×48 grid" in lines[0]
    npz = np.load(next(p for p in paths if p.suffix == ".npz"))
    assert np.array_equal(npz["0_a_minus_b"], npz["0_a"] - npz["0_b"])
    src = image_source("scene:1000000007")
    for key, name in (("0_a", "criss_cross"), ("0_b", "isa")):
        fw = run_model(load(name), src.image)
        rec = fw.records["head.context"]
        gy, gx = PIXEL[0] * rec.grid[0] // 384, PIXEL[1] * rec.grid[1] // 384
        assert np.array_equal(npz[key], rec.query_map(gy, gx))  # the maps themselves, as the page shows them
    meta = json.loads(next(p for p in paths if p.suffix == ".json").read_text())
    assert meta["models"]["A"]["sha256"] == load("criss_cross").provenance.sha256
    assert meta["models"]["B"]["sha256"] == load("isa").provenance.sha256 and meta["pairs"][0]["grid"] == "common"
    deltas = meta["pairs"][0]["deltas"]
    for k, d in deltas.items():
        assert d == pytest.approx(meta["pairs"][0]["statistics_A"][k] - meta["pairs"][0]["statistics_B"][k])


def test_grids_that_differ_are_compared_on_the_image_grid_and_it_is_said():
    image = image_source("scene:1000000007", 192).image
    fw_a = run_model(load("criss_cross"), image)
    fw_b = run_model(adopt(tiny_attention(), Provenance("factory", "pytorch", "tiny")), image)
    (d,) = differences(fw_a, fw_b, 50, 60, names=("criss_cross", "tiny"))
    assert d.grid == "image" and d.delta.shape == (192, 192) and "grids differ: 24×24 and 12×12" in d.where
    assert np.array_equal(d.delta, d.a.image_map - d.b.image_map)


def test_models_that_cannot_be_compared_get_one_sentence():
    image = image_source("scene:7", 128).image
    fw_ours = run_model(load("criss_cross"), image)
    fw_five = run_model(segformer("eager"), image)  # 5 classes, and four attention modules
    with pytest.raises(VizattnError, match="predict different classes") as info:
        differences(fw_ours, fw_five, 10, 10, names=("criss_cross", "segformer"))
    assert "\n" not in str(info.value)
    with pytest.raises(VizattnError, match="exactly two models"):
        export_diff(["criss_cross"], "scene:7", (1, 1), None, "/nonexistent", ("json",))


def test_vizattn_diff_and_query_rollout_from_the_cli(tmp_path, capsys):
    from tests.foreign.test_observe import save_segformer
    from vizattn.cli import main

    assert main(["diff", "--models", "criss_cross", "gc", "--image", "scene:1000000007", "--pixel", "100,200",
                 "--out", str(tmp_path / "d"), "--format", "npz", "json"]) == 0
    out = capsys.readouterr().out
    assert "on their common 48×48 grid" in out and (tmp_path / "d" / "diff_criss_cross_vs_gc_y100x200.npz").is_file()
    with pytest.raises(SystemExit):  # argparse's usage error: diff takes exactly two models
        main(["diff", "--models", "criss_cross", "--image", "scene:1", "--pixel", "1,1"])
    folder = tmp_path / "segformer"
    save_segformer(folder)
    for view in ("rollout", "relevance"):
        assert main(["query", "--model", str(folder), "--image", "scene:7", "--pixel", "40,50", "--view", view,
                     "--out", str(tmp_path / view), "--format", "json", "npz"]) == 0
        meta = json.loads(next((tmp_path / view).glob("*.json")).read_text())
        (panel,) = meta["panels"]
        assert panel["view"] == view and panel["module"] == "all layers" and panel["sums_to_one"]
