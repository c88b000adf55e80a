"""AppTest: the Compare tab's difference mode shows A, B and A − B at the pinned pixel, says which grid the
difference was taken on, tabulates both statistics and their deltas, offers the files, and refuses with a sentence."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from vizattn.zoo import available

APP = str(Path(__file__).resolve().parents[2] / "app.py")
pytestmark = pytest.mark.skipif(not available(), reason="needs the bundled models in vizattn/pretrained/")


def difference_mode() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    at.session_state["section"] = "Compare models"
    at.run()
    at.radio(key="compare_mode").set_value("difference").run()
    assert not at.exception, at.exception
    return at


def texts(at) -> str:
    return " ".join(m.value for m in at.markdown) + " ".join(c.value for c in at.caption)


def test_criss_cross_minus_isa_on_their_common_grid_with_deltas():
    at = difference_mode()
    assert at.selectbox(key="diff_a").value == "criss_cross" and at.selectbox(key="diff_b").value == "isa"
    assert "on their common 48×48 grid" in texts(at)
    assert "diff for (192, 192): criss_cross vs isa" in texts(at)
    table = at.dataframe[0].value
    assert list(table.columns) == ["statistic", "A: criss_cross", "B: isa", "A − B"]
    assert "entropy (0…1)" in set(table["statistic"])
    assert ((table["A: criss_cross"] - table["B: isa"] - table["A − B"]).abs() < 1e-9).all()
    assert len(at.get("image")) >= 1 and not at.error
    names = {b.proto.label for b in at.get("download_button")}
    assert names == {"PNG", "NPZ", "JSON"}
    assert "sha256 — A criss_cross:" in texts(at)
    assert "live difference for (192, 192): 1 pair(s)" in texts(at)  # A, B and A − B follow the pointer too


def test_the_difference_follows_the_pinned_pixel():
    at = difference_mode()
    at.session_state["image_click"] = {"value": {"x": 100, "y": 50, "width": 640, "height": 640}}
    at.run()
    assert not at.exception and "diff for (30, 60): criss_cross vs isa" in texts(at)


def test_a_model_without_attention_is_refused_with_a_sentence():
    at = difference_mode()
    at.selectbox(key="diff_b").select("fcn").run()
    assert not at.exception
    assert any("no attention module vizattn can read" in e.value for e in at.error), [e.value for e in at.error]


def test_one_model_against_itself_says_so():
    at = difference_mode()
    at.selectbox(key="diff_b").select("criss_cross").run()
    assert not at.exception and any("0 everywhere" in i.value for i in at.info)


def test_a_click_on_the_live_difference_moves_the_query():
    at = difference_mode()
    at.session_state["diff_grid"] = {"value": {"y": 40, "x": 300, "panel": 2, "t": 1}}  # image pixels, as the grid sends them
    at.run()
    assert not at.exception, at.exception
    assert "diff for (40, 300): criss_cross vs isa" in texts(at)
    assert "live difference for (40, 300)" in texts(at)


def test_once_the_difference_grid_holds_its_factors_a_click_sends_the_pixel_alone():
    from tests.app.pages import grid_payloads

    at = difference_mode()
    args, blob = grid_payloads(at)[-1]
    assert len(blob) > 0  # the first render carries the factors
    at.session_state["diff_grid"] = {"value": {"y": 40, "x": 300, "panel": 2, "have": args["factors_key"], "t": 2}}
    at.run()
    args2, blob2 = grid_payloads(at)[-1]
    assert not at.exception and args2["factors_key"] == args["factors_key"] and blob2 == b""
