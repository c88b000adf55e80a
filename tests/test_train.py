"""A few-step smoke run of the training command: it writes weights and cards, and is reproducible."""
import json

import numpy as np
import pytest
from safetensors.torch import load_file

from vizattn import VizattnError
from vizattn.cli import main
from vizattn.evaluate import confusion, iou_from_confusion, predict, summarise
from vizattn.train import TrainConfig, train
from vizattn.zoo import load

TINY = TrainConfig(size=64, crop=32, pool=6, backbone_steps=2, head_steps=2, batch=2, eval_scenes=2)


def test_smoke_run_writes_weights_and_cards_and_is_reproducible(tmp_path):
    cards = train(["fcn", "gc"], TINY, tmp_path / "a", progress=False)
    train(["fcn", "gc"], TINY, tmp_path / "b", progress=False)
    for head in ("fcn", "gc"):
        a, b = load_file(tmp_path / "a" / f"{head}.safetensors"), load_file(tmp_path / "b" / f"{head}.safetensors")
        assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a), head
        card = json.loads((tmp_path / "a" / f"{head}.json").read_text())
        assert card["head"] == head and card["reproduce"] == f"vizattn train --head {head} --seed 0"
        assert set(card["evaluation"]["iou"]) >= {"road", "sidewalk", "car"} and 0 <= card["evaluation"]["miou"] <= 1
        assert card["receptive_field_px"] == {"backbone": 71, "model_without_attention": 111}
    assert cards["gc"]["training"]["head_steps"] == 2
    # a later head reuses the stored backbone instead of training it again
    train(["nonlocal"], TINY, tmp_path / "a", progress=False)
    fcn, nl = load(tmp_path / "a" / "fcn.safetensors"), load(tmp_path / "a" / "nonlocal.safetensors")
    for k, v in fcn.backbone.state_dict().items():
        assert (nl.backbone.state_dict()[k] == v).all()


def test_unknown_head_is_refused():
    with pytest.raises(VizattnError, match="Unknown head"):
        train(["transformer"], TINY, progress=False)


def test_cli_prints_one_sentence_for_user_errors(capsys):
    assert main(["train"]) == 2
    assert "Name a head" in capsys.readouterr().err
    assert main(["evaluate", "--model", "nope"]) == 2
    assert "neither a bundled model" in capsys.readouterr().err


def test_iou_known_answers():
    target = np.array([[0, 0, 1, 1]])
    assert summarise(confusion(target, target))["iou"]["sky"] == 1.0
    pred = np.array([[0, 1, 1, 1]])  # class 0: 1 hit of 2 (IoU 1/2); class 1: 2 of 3 (2/3)
    iou = iou_from_confusion(confusion(pred, target))
    assert iou[0] == pytest.approx(0.5) and iou[1] == pytest.approx(2 / 3) and np.isnan(iou[2])


def test_predict_returns_labels_of_the_image_size(tmp_path):
    train(["fcn"], TINY, tmp_path, progress=False)
    labels = predict(load(tmp_path / "fcn.safetensors"), np.zeros((37, 50, 3), np.uint8))
    assert labels.shape == (37, 50) and labels.dtype == np.uint8 and labels.max() < 9
