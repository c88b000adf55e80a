"""The shipped models: every card's numbers come from its weights, and the zoo meets its quality bar."""
import pytest

from vizattn.evaluate import evaluate
from vizattn.models.segmenter import HEADS
from vizattn.zoo import available, load, model_card, results_table

pytestmark = pytest.mark.skipif(not available(), reason="needs the bundled models in vizattn/pretrained/")


def test_every_head_is_shipped_with_a_card():
    assert set(available()) == set(HEADS)
    for name in HEADS:
        card = model_card(name)
        assert card["head"] == name and card["reproduce"] == f"vizattn train --head {name} --seed 0"
        assert card["evaluation"]["scenes"] == 100 and card["evaluation"]["seed"] >= 1_000_000_000


# psa_sequential_paper: weights trained before PSA had variants, re-homed as the paper variant; this proves the
# paper variant is that code exactly
@pytest.mark.parametrize("name", ["fcn", "nonlocal", "psa_sequential_paper"])
def test_card_numbers_are_what_the_weights_give(name):
    card = model_card(name)
    ev = card["evaluation"]
    again = evaluate(load(name), ev["scenes"], ev["seed"], tuple(ev["size"]), progress=False)
    assert again["miou"] == pytest.approx(ev["miou"], abs=1e-4)
    assert again["iou"] == pytest.approx(ev["iou"], abs=1e-4)


def test_results_table_lists_every_model_against_the_baseline():
    header, rows = results_table()
    assert header[0] == "model" and [r[0] for r in rows][0] == "fcn" and len(rows) == len(HEADS)
    assert all(r[8].startswith(("+", "-")) for r in rows[1:])


def test_top_level_load_predict_and_capture_as_the_readme_shows():
    import numpy as np

    import vizattn
    from vizattn.evaluate import to_tensor

    model = vizattn.load("nonlocal")
    with vizattn.capture(model) as cap:
        model(to_tensor(np.zeros((384, 384, 3), np.uint8)))
    rec = cap.records["head.context"]
    assert (rec.kind, rec.grid, rec.views()) == ("nonlocal", (48, 48), ("attention",))
    assert rec.query_map(12, 20).shape == (48, 48)
    assert vizattn.predict(model, np.zeros((50, 60, 3), np.uint8)).shape == (50, 60)
