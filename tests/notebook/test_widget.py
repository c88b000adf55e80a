"""The notebook widget without a browser: it sends the page's own grid args, resolves models and images as the
CLI does, refuses bad input with one sentence before any widget exists, and exports what the app exports."""
import io
import json
import subprocess
import sys

import numpy as np
import pytest

import vizattn
from vizattn.errors import VizattnError
from vizattn.explore import panels, run_model
from vizattn.export import STATIC_HTML, image_source, query_export
from vizattn.viz.panel_grid import grid_args, split_blob
from vizattn.zoo import available, load

pytestmark = pytest.mark.skipif(not available(), reason="needs the bundled models in vizattn/pretrained/")


def plain(args):
    return json.loads(json.dumps(args))


@pytest.fixture(scope="module")
def nets():
    return {name: load(name) for name in ("criss_cross", "gc")}  # loaded once: show() takes a loaded model too


@pytest.fixture(scope="module")
def scene(nets):
    src = image_source("scene:7", 96)
    return src, run_model(nets["criss_cross"], src.image)


def test_the_widget_sends_the_pages_grid_args_for_the_same_inputs(scene, nets):
    src, fw = scene
    w = vizattn.show(nets["criss_cross"], src.image, pixel=(40, 10), cmap="viridis", opacity=0.6, backdrop="photo")
    for change in (None, {"pixel": (70, 33)}, {"norm": "log", "clip": 99.0}):
        for k, v in (change or {}).items():
            setattr(w, k, v)
        chosen = panels(fw, *w.pixel)
        page = grid_args(src.image, chosen, [p.title for p in chosen], w.cmap, w.norm, w.alpha, 3, w._args["title"],
                         clip=w.clip, under=w.under)
        args, blob = split_blob(page)
        assert plain(w._args) == plain(args) and w._blob == blob and len(blob) > 0
        assert w._args["title"].startswith("criss_cross predicts ") and f"at pixel {w.pixel}" in w._args["title"]
    assert set(w.capture) == set(fw.records) and w.capture["head.context"].grid == fw.records["head.context"].grid


def test_a_second_model_adds_its_main_views_as_vizattn_compare_does(scene, nets):
    src, _ = scene
    w = vizattn.show(nets["criss_cross"], src.image, compare=nets["gc"], pixel=(5, 90))
    assert [p["title"] for p in w._args["panels"]] == ["criss_cross · effective", "gc · mask"]
    assert w._args["title"].startswith("2 models") and "pixel (5, 90)" in w._args["title"]


def test_views_pick_the_panels_and_columns_follow_them(scene, nets):
    src, _ = scene
    w = vizattn.show(nets["criss_cross"], src.image, views=["loop1", "loop2"], columns=2)
    assert [p["title"] for p in w._args["panels"]] == ["head.context · loop1", "head.context · loop2"]
    assert w._args["columns"] == 2


@pytest.mark.parametrize("model, image, display, says", [
    ("no_such_model", "scene:1", {}, "neither a bundled model"),
    ("criss_cross", "/no/such/image.png", {}, "image"),
    ("criss_cross", np.zeros((4,), object), {}, "array"),
    ("criss_cross", np.zeros((8, 8, 7)), {}, "array"),
    ("criss_cross", "scene:x", {}, "scene:SEED"),
    ("criss_cross", "scene:1", {"colour": "red"}, "no display option 'colour'"),
    ("criss_cross", "scene:1", {"backdrop": "wallpaper"}, "backdrop"),
    ("criss_cross", "scene:1", {"cmap": "rainbowz"}, "colormap"),
    ("criss_cross", "scene:1", {"norm": "linear"}, "normalisation"),
    ("criss_cross", "scene:1", {"views": "nope"}, "view 'nope'"),
    ("fcn", "scene:1", {}, "no attention module"),
    (3.5, "scene:1", {}, "not a float"),
])
def test_bad_input_is_one_sentence_before_any_widget(model, image, display, says):
    with pytest.raises(VizattnError, match=says) as err:
        vizattn.show(model, image, **display)
    assert "\n" not in str(err.value)


def test_a_pixel_off_the_map_is_refused(scene, nets):
    w = vizattn.show(nets["criss_cross"], scene[0].image)
    with pytest.raises(VizattnError):
        w.pixel = (96, 0)
    with pytest.raises(VizattnError, match="colormap"):
        w.cmap = "rainbowz"
    assert w.pixel == (48, 48) and w.cmap == "inferno"


def test_export_writes_the_apps_files_and_the_live_html(scene, nets, tmp_path):
    src, fw = scene
    w = vizattn.show(nets["criss_cross"], src.image, pixel=(40, 10))
    for fmt in ("png", "svg", "pdf", "html", "npz", "json"):
        path = w.export(tmp_path, fmt)
        assert path.name == f"criss_cross_array_y40x10_all.{fmt}" and path.stat().st_size > 100
    assert w.export(tmp_path / "mine.html").name == "mine.html"
    page = (tmp_path / "mine.html").read_text()
    assert 'id="vizattn-blob"' in page and "VizattnGrid.mount" in page and "plotly" not in page
    assert "criss_cross predicts" in page and "at pixel (40, 10)" in page and "all views" in page
    assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page  # nothing fetched
    meta = json.loads((tmp_path / "criss_cross_array_y40x10_all.json").read_text())
    assert meta["pixel_yx"] == [40, 10] and meta["opacity"] == w.alpha


def test_over_the_budget_the_html_is_the_static_figure_and_says_so(scene):
    src, fw = scene
    made = query_export("criss_cross", fw, src, (40, 10), None)
    page = made.html(budget=1000).decode()
    assert "plotly" in page and STATIC_HTML in page and made.notes == [STATIC_HTML]
    assert STATIC_HTML.count(". ") == 0 and "64 MiB" in STATIC_HTML  # one sentence naming the budget


def test_importing_vizattn_imports_neither_torch_nor_the_widget():
    code = "import sys, vizattn; print('torch' in sys.modules, 'anywidget' in sys.modules, 'show' in vizattn.__all__)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split() == \
        ["False", "False", "True"]


def test_file_borne_names_stay_text_in_the_html(scene):
    src, fw = scene
    made = query_export("criss_cross", fw, src, (40, 10), None)
    evil = "</script><script>alert(1)</script><!-- <b>"
    made.titles = [evil] * len(made.titles)
    made.heading = f"{evil}\n{made.heading}"
    page = made.html().decode()
    assert page.count("</script>") == 3 and "<script>alert" not in page and "<b>" not in page and "<!--" not in page


def test_a_difference_widget_shows_a_b_and_a_minus_b_and_exports_vizattn_diff_s_files(tmp_path):
    import vizattn
    from vizattn.diff import diff_files

    w = vizattn.show("criss_cross", "scene:4", pixel=(100, 60), diff="isa")
    args = w._args
    assert [p["kind"] for p in args["panels"]][2] == "diff" and args["specs"][2] == {
        "f": "diff", "a": 0, "b": 1, "grid": args["specs"][0]["grid"], "out": args["specs"][0]["out"]}
    w.pixel = (30, 200)
    assert w._args["pixel"] == [30, 200] and "(30, 200)" in w._args["title"]
    npz = np.load(w.export(tmp_path, "npz"))
    (a, fa), (b, fb) = w.forwards.items()
    files, _ = diff_files(fa, fb, (a, b), (30, 200), None, (None, None), ("npz",))
    want = np.load(io.BytesIO(next(iter(files.values()))))
    np.testing.assert_array_equal(npz["0_a_minus_b"], want["0_a_minus_b"])
    with pytest.raises(VizattnError, match="without compare"):
        vizattn.show("criss_cross", "scene:4", diff="isa", compare="gc")
