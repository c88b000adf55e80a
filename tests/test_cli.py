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
    for head in ("criss_cross", "gc"):
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
