"""The CLI is thin over the library: query/compare write their files; user errors are one sentence."""
import hashlib
import json

import numpy as np
import pytest
import torch
from PIL import Image

from vizattn.cli import main
from vizattn.models.segmenter import ModelConfig, build_model
from vizattn.zoo import save


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    for head in ("criss_cross", "gc", "fcn"):
        save(build_model(ModelConfig(head)).eval(), d / f"{head}.safetensors")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(d / "photo.png")
    return d


def test_query_writes_every_export(checkpoints, tmp_path, capsys):
    code = main(["query", "--model", str(checkpoints / "criss_cross.safetensors"), "--image",
                 str(checkpoints / "photo.png"), "--pixel", "20,30", "--view", "loop1", "--out", str(tmp_path)])
    assert code == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(f"criss_cross_photo_y20x30_loop1.{e}" for e in ("png", "svg", "pdf", "html", "npz", "json"))
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("criss_cross predicts ") and out[0].endswith("at pixel (20, 30)")
    meta = json.loads((tmp_path / "criss_cross_photo_y20x30_loop1.json").read_text())
    weights = (checkpoints / "criss_cross.safetensors").read_bytes()
    assert meta["model_sha256"] == hashlib.sha256(weights).hexdigest()  # the exact weights the figure came from
    assert meta["predicted_class"] in out[0]


def test_compare_writes_one_grid_in_the_formats_asked(checkpoints, tmp_path, capsys):
    models = [str(checkpoints / f"{h}.safetensors") for h in ("criss_cross", "gc")]
    assert main(["compare", "--models", *models, "--image", "scene:4", "--pixel", "100,50", "--out", str(tmp_path),
                 "--format", "png", "json"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["compare_scene4_y100x50_main.json",
                                                          "compare_scene4_y100x50_main.png"]
    out = capsys.readouterr().out.splitlines()
    assert [line.split(" predicts ")[0] for line in out[:2]] == ["criss_cross", "gc"]
    meta = json.loads((tmp_path / "compare_scene4_y100x50_main.json").read_text())
    assert set(meta["model_sha256"]) == {"criss_cross", "gc"} and all(len(h) == 64 for h in meta["model_sha256"].values())


@pytest.mark.parametrize("args,message", [
    (["--pixel", "999,1"], "outside the 40×56 image"),
    (["--pixel", "a,b"], "--pixel takes Y,X"),
    (["--pixel", "1,1", "--view", "nope"], "has a view 'nope'"),
])
def test_user_errors_are_one_sentence(checkpoints, tmp_path, capsys, args, message):
    code = main(["query", "--model", str(checkpoints / "criss_cross.safetensors"), "--image",
                 str(checkpoints / "photo.png"), "--out", str(tmp_path), *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_bad_image_file_is_refused(checkpoints, tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
    assert main(["query", "--model", str(checkpoints / "gc.safetensors"), "--image", str(bad), "--pixel", "1,1"]) == 2
    assert "not a readable image" in capsys.readouterr().err


def test_a_photograph_through_a_scene_model_is_said_as_the_app_says_it(checkpoints, tmp_path, capsys):
    ckpt = str(checkpoints / "criss_cross.safetensors")
    assert main(["query", "--model", ckpt, "--image", str(checkpoints / "photo.png"), "--pixel", "20,30",
                 "--format", "json", "--out", str(tmp_path / "photo")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("criss_cross predicts ")
    warning = [line for line in out if "never seen a photograph" in line]
    assert len(warning) == 1 and warning[0].startswith("warning: criss_cross was trained only on vizattn's generated")
    assert main(["query", "--model", ckpt, "--image", "scene:4", "--pixel", "20,30", "--format", "json",
                 "--out", str(tmp_path / "scene")]) == 0  # a generated scene: the model's own domain
    assert "never seen" not in capsys.readouterr().out


def test_compare_says_which_model_has_no_panel_and_counts_the_grid_truly(checkpoints, tmp_path, capsys):
    models = [str(checkpoints / f"{h}.safetensors") for h in ("criss_cross", "fcn", "gc")]
    assert main(["compare", "--models", *models, "--image", "scene:4", "--pixel", "100,50", "--out", str(tmp_path),
                 "--format", "json"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split(" predicts ")[0] for line in out[:3]] == ["criss_cross", "fcn", "gc"]  # every prediction
    assert sum("fcn has no attention module" in line and "no panel of it" in line for line in out) == 1
    assert "2 of 3 models in the grid: criss_cross, gc" in out
    meta = json.loads((tmp_path / "compare_scene4_y100x50_main.json").read_text())
    assert set(meta["model_sha256"]) == {"criss_cross", "gc"}
    assert meta["figure_title"][0].startswith("2 models")  # the title counts the models it shows


def test_a_compare_of_models_without_attention_is_one_sentence(checkpoints, tmp_path, capsys):
    assert main(["compare", "--models", str(checkpoints / "fcn.safetensors"), "--image", "scene:4", "--pixel", "1,1",
                 "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "has an attention module" in err and len(err.strip().splitlines()) == 1


def test_report_counts_figures_not_files(tmp_path, capsys, monkeypatch):
    """Every report figure is written twice (PNG and SVG): the count printed is of figures."""
    import vizattn.report

    written = [f"{n}.{e}" for n in ("coverage", "shares", "where_own_class") for e in ("png", "svg")]
    monkeypatch.setattr(vizattn.report, "build_report", lambda *a, **k: {"figures": written, "wall_time_s": 1.0})
    assert main(["report", "--out", str(tmp_path), "--scenes", "1"]) == 0
    assert capsys.readouterr().out.startswith("wrote 3 figures (PNG and SVG), report.json and report.md")


def test_an_html_export_over_the_budget_is_said_on_the_command_line(checkpoints, tmp_path, capsys, monkeypatch):
    """Past the factor budget the HTML is the static figure: the file says so, and so does the command."""
    from vizattn import export
    from vizattn.export import STATIC_HTML

    monkeypatch.setattr(export.Export.html, "__defaults__", (1000,))  # a budget no grid fits
    assert main(["query", "--model", str(checkpoints / "criss_cross.safetensors"), "--image", "scene:4", "--pixel",
                 "100,50", "--out", str(tmp_path), "--format", "html"]) == 0
    assert STATIC_HTML in capsys.readouterr().out
    assert STATIC_HTML in next(tmp_path.glob("*.html")).read_text()
    assert main(["compare", "--models", str(checkpoints / "criss_cross.safetensors"), str(checkpoints / "gc.safetensors"),
                 "--image", "scene:4", "--pixel", "100,50", "--out", str(tmp_path / "c"), "--format", "html"]) == 0
    assert STATIC_HTML in capsys.readouterr().out
