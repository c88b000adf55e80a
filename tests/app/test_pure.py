"""The page's helpers that need no streamlit (vizattn.app.pure), with known answers."""
import math

import numpy as np
import pytest

from vizattn.app.pure import (analysis_rows, click_pixel, confidence_image, has_truth, provenance_line,
                              side_by_side_css, stepped_pixel, where_rows)
from vizattn.errors import VizattnError
from vizattn.model import Provenance
from vizattn.text import markdown_text


def test_a_displayed_click_is_scaled_to_image_pixels():
    # the clickable image shown 100×50 over a 200×400 (h×w) image: (25, 50) there is (100, 200) here
    assert click_pixel({"x": 50, "y": 25, "width": 100, "height": 50}, True, (200, 400)) == (100, 200)
    assert click_pixel({"x": 100, "y": 50, "width": 640, "height": 640}, True, (384, 384)) == (30, 60)
    assert click_pixel({"x": "7", "y": 3.9}, True, (10, 10)) == (3, 7)  # no displayed size: image pixels, floored
    assert click_pixel({"x": 7, "y": 3, "width": 0, "height": 0}, True, (10, 10)) == (3, 7)  # 0: size unknown


def test_a_grid_click_is_in_image_pixels_already():
    assert click_pixel({"y": 40, "x": 300, "panel": 1, "t": 1}, False, (384, 384)) == (40, 300)
    assert click_pixel({"y": 40, "x": 300, "width": 10, "height": 10}, False, (384, 384)) == (40, 300)


@pytest.mark.parametrize("click", [
    None, [], "12,3", {}, {"x": 1}, {"y": 1}, {"x": "a", "y": 1}, {"x": None, "y": 1},
    {"x": math.nan, "y": 1}, {"x": 1, "y": math.inf}, {"x": 1, "y": 1, "width": 5, "height": -2},
    {"x": 1, "y": 1, "width": -3, "height": 5}, {"x": 1, "y": 1, "width": math.nan, "height": 5},
    {"x": 1e308, "y": 1, "width": 1e-308, "height": 1},
])
def test_unusable_click_values_are_refused_in_one_sentence(click):
    with pytest.raises(VizattnError, match="without a usable position"):
        click_pixel(click, True, (200, 400))


@pytest.mark.parametrize("click", [{"x": 400, "y": 0}, {"x": 0, "y": 200}, {"x": -1, "y": 0}])
def test_clicks_outside_the_image_are_refused(click):
    with pytest.raises(VizattnError, match="outside the 200×400 image"):
        click_pixel(click, False, (200, 400))


def test_steps_stay_inside_the_image():
    assert stepped_pixel((192, 192), 0, 8, (384, 384)) == (192, 200)
    assert stepped_pixel((192, 200), -8, 0, (384, 384)) == (184, 200)
    assert stepped_pixel((3, 3), -8, -8, (384, 384)) == (0, 0)
    assert stepped_pixel((380, 381), 8, 8, (384, 384)) == (383, 383)


def test_truth_only_for_labels_in_the_models_classes():
    scene = ["road", "car"]
    assert has_truth(np.zeros((2, 2)), ["road", "car"], scene)
    assert not has_truth(None, ["road", "car"], scene)
    assert not has_truth(np.zeros((2, 2)), ["road", "car", "sky"], scene)


def test_confidence_image_is_magma_on_an_absolute_scale():
    img = confidence_image(np.array([[0.0, 1.0], [-1.0, 2.0]]))
    assert img.shape == (2, 2, 3) and img.dtype == np.uint8
    assert img[0, 0].tolist() == [0, 0, 3]  # magma(0): black
    assert img[0, 1].tolist() == [251, 252, 191]  # magma(1): bright
    assert (img[1, 0] == img[0, 0]).all() and (img[1, 1] == img[0, 1]).all()  # clipped to 0 … 1, not rescaled


def test_analysis_rows_one_per_module():
    numbers = {"query_independence": {"gc": {"attention": 0.01}},
               "unary_binary": {"lesa (gate)": {"unary": 0.3}, "psa": {"unary": 0.2}, "gc (self)": {"unary": 0.5}},
               "coverage": {"records": 2}}
    assert analysis_rows(numbers) == [
        {"module": "gc", "map distance between queries (GCNet)": 0.01, "weight on itself (unary share)": 0.5},
        {"module": "lesa", "unary share of the gate (LESA)": 0.3},
        {"module": "psa", "weight on itself (unary share)": 0.2},
        {"module": "model", "coverage records": 2},
    ]
    assert analysis_rows({"query_independence": {}, "unary_binary": {}}) == []


def test_analysis_rows_name_the_modules_not_the_model():
    """A one-module model's numbers are labelled "model" by the summary; each row says the module itself, the
    loops' coverage included, under headers written for people."""
    numbers = {"query_independence": {}, "unary_binary": {"model (softmax self weight)": {"unary": 0.04}},
               "coverage": {"loop1": 0.06, "effective": 1.0}}
    rows = analysis_rows(numbers, {"model": "head.context"}, "head.context")
    assert rows == [{"module": "head.context", "weight on itself (unary share)": 0.04,
                     "positions reached after loop 1": 0.06, "positions reached after all loops": 1.0}]
    two = analysis_rows({"query_independence": {"m:a": {"attention": 0.1}},
                         "unary_binary": {"m:b (gate 1/(1+w))": {"unary": 0.7}}}, {"m:a": "head.a", "m:b": "head.b"})
    assert [r["module"] for r in two] == ["head.a", "head.b"]
    assert all("model" not in r.values() for r in rows + two)


def test_where_rows_say_module_class_and_units():
    where = {"model": {"road": {"own_class": 0.81234, "own_instance": 0.5, "distance_px": 40.123456, "queries": 12}}}
    assert where_rows(where, {"model": "head.context"}) == [
        {"module": "head.context", "query class": "road", "mass on own class": 0.81234, "mass on own object": 0.5,
         "mean distance (px)": 40.123456, "queries": 12}]
    assert all("_" not in k for k in where_rows(where)[0])  # no code names in the headers


def test_side_by_side_css_bounds_the_image_column_by_the_window_height():
    css = side_by_side_css(512 / 600)
    assert "min(calc(32.0% - 1rem), calc((100vh - 200px) * 0.8533))" in css
    assert "@media (min-width: 640px)" in css and ".st-key-image_click)" in css
    assert "<" not in css  # CSS only: it goes inside the page's <style>


def test_provenance_line():
    mmseg = Provenance("mmseg checkpoint", "mmsegmentation", "cc.pth", "ab" * 32, "unknown (an mmseg checkpoint)",
                       "mmseg CCHead on ResNetV1c-50-D8", "its parameter names and shapes", "the checkpoint's meta")
    assert provenance_line(mmseg, 19) == ("mmseg CCHead on ResNetV1c-50-D8 · told by its parameter names and shapes · "
                                          "19 classes from the checkpoint's meta · sha256 abababababab")
    factory = Provenance("factory", "pytorch", "pkg.mod:build", architecture="Net", detected="your own code")
    assert provenance_line(factory, 9) == "Net · told by your own code · 9 classes"
    bare = Provenance("factory", "pytorch", "pkg.mod:build")
    assert provenance_line(bare, 2) == "pkg.mod:build · 2 classes"


def test_file_borne_provenance_is_never_markup_once_escaped():
    evil = Provenance("transformers folder", "transformers", "x", None, architecture="<img src=x onerror=alert(1)>",
                      classes_from="**bold** [link](http://e)")
    shown = markdown_text(provenance_line(evil, 3))
    assert "<img" not in shown and "**bold**" not in shown and "](" not in shown


def test_only_a_loopback_host_and_origin_count_as_local():
    from vizattn.app.pure import is_loopback_request

    assert is_loopback_request("127.0.0.1:8501", "http://127.0.0.1:8501")
    assert is_loopback_request("localhost:8501", None) and is_loopback_request("[::1]:8501", "http://[::1]:8501")
    for host, origin in (("evil.example", "http://evil.example"), ("127.0.0.1:8501", "http://evil.example"),
                         ("evil.example:8501", "http://127.0.0.1:8501"), (None, None), ("127.0.0.1:x", None),
                         ("127.0.0.1.evil.example", None), ("127.0.0.1:8501", "null"),
                         ("127.0.0.1:8501", "file://"), ("localhost:8501", "http://localhost.evil.example")):
        assert not is_loopback_request(host, origin), (host, origin)
