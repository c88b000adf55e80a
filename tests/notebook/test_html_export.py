"""The HTML export is the live grid: opened from disk with every request but file: and data: refused, it
follows the pointer, and a hovered row is the record's own query_map (within 1e-3, as the page's)."""
import os
import re
from pathlib import Path

import numpy as np
import pytest

from benchmarks.browser import CHROMIUM, browser_page
from vizattn.explore import cell_of, run_model
from vizattn.export import image_source, query_files
from vizattn.zoo import available, load

IN_CI = os.environ.get("CI") == "true"
if not Path(CHROMIUM).exists() and not IN_CI:  # in CI a missing browser must fail, never skip
    pytest.skip("Debian chromium is not installed here (apt-get install chromium)", allow_module_level=True)
pytestmark = pytest.mark.skipif(not available(), reason="needs the bundled models in vizattn/pretrained/")

CANVASES = "() => Array.from(document.querySelectorAll('canvas.heat')).map(c => c.toDataURL())"


def test_the_exported_html_follows_the_pointer_offline_with_the_records_rows(tmp_path):
    src = image_source("scene:5", 160)
    fw = run_model(load("isa"), src.image)  # three views of one record: long, short and their product
    (name, data), = query_files("isa", fw, src, (40, 100), None, formats=("html",)).items()
    path = tmp_path / name
    path.write_bytes(data)
    refused = []
    with browser_page(1300, 1000) as page:
        def guard(route):
            if route.request.url.split(":", 1)[0] in ("file", "data"):
                route.continue_()
            else:
                refused.append(route.request.url)
                route.abort()

        page.route("**/*", guard)
        page.goto(path.as_uri())
        page.locator("body[data-live='yes'][data-showing='40,100']").wait_for(state="attached", timeout=30_000)
        assert "isa · all views · scene5 · pinned pixel (40, 100)" in page.locator(".vizattn-title").inner_text()
        header = page.locator("header").inner_text()
        assert "isa predicts" in header and "at pixel (40, 100)" in header
        assert page.locator(".stage img.base").first.get_attribute("src").startswith("data:image/jpeg")
        assert all("gradient" in g for g in page.locator(".bar .grad").evaluate_all("gs => gs.map(g => g.style.background)"))
        before = page.evaluate(CANVASES)
        stage = page.locator(".stage").nth(1)
        box = stage.bounding_box()
        stage.hover(position={"x": box["width"] * 0.8, "y": box["height"] * 0.3})
        page.wait_for_function("() => document.body.dataset.showing !== '40,100'", timeout=10_000)
        y, x = (int(v) for v in page.evaluate("document.body.dataset.showing").split(","))
        assert abs(y - 0.3 * 160) <= 2 and abs(x - 0.8 * 160) <= 2
        assert page.evaluate(CANVASES) != before  # the panels repainted for the pixel under the pointer
        assert "showing (" in page.locator(".vizattn-title").inner_text()
        shown = page.evaluate("window.vizattnGrid.maps()")
        rec = fw.records["head.context"]
        gy, gx = cell_of(y, x, fw.shape, rec.grid)
        for view, got in zip(["effective", "long", "short"], shown):
            want = rec.query_map(gy, gx, view)
            assert np.abs(np.asarray(got["map"]).reshape(want.shape) - want).max() <= 1e-3, view
        stage.click(position={"x": box["width"] * 0.8, "y": box["height"] * 0.3})  # a pin stays, named in the title
        page.mouse.move(2, 2)
        assert f"pinned pixel ({y}, {x})" in page.locator(".vizattn-title").inner_text()
        assert page.evaluate("document.body.dataset.showing") == f"{y},{x}"
    assert refused == []  # nothing asked for the network


def test_in_a_narrow_column_the_hover_note_never_moves_the_panels(tmp_path):
    """A notebook column (marimo's) is narrow: the title with its hover note wraps. The panels must stay where they
    are, or the pixel under a still pointer would change under it. The host's line height is marimo's (1.5)."""
    src = image_source("scene:5", 160)
    fw = run_model(load("isa"), src.image)
    (name, data), = query_files("isa", fw, src, (40, 100), None, formats=("html",)).items()
    path = tmp_path / name
    path.write_bytes(data)
    with browser_page(420, 900) as page:
        page.goto(path.as_uri())
        page.locator("body[data-live='yes']").wait_for(state="attached", timeout=30_000)
        page.add_style_tag(content="body, body * { line-height: 1.5 }")  # a host's own, inherited where not set
        stage = page.locator(".stage").first
        before = stage.bounding_box()
        stage.hover(position={"x": before["width"] * 0.5, "y": before["height"] * 0.5})
        page.wait_for_function("() => document.body.dataset.showing !== '40,100'", timeout=10_000)
        title = page.locator(".vizattn-title")
        assert "showing (" in title.inner_text() or title.evaluate("t => t.scrollHeight > t.clientHeight")
        assert stage.bounding_box()["y"] == before["y"]  # the note wrapped (or was cut) inside the title's own space


def test_a_widget_s_difference_follows_the_pointer_as_a_minus_b(tmp_path):
    """vizattn.show(A, image, diff=B): the browser takes A − B from A's and B's own rows as the pointer moves;
    opened from its HTML export, the third panel equals query_map(A) − query_map(B) at the hovered pixel."""
    import vizattn

    w = vizattn.show("criss_cross", "scene:4", pixel=(100, 60), diff="isa")
    path = w.export(tmp_path, "html")
    (a, fa), (b, fb) = w.forwards.items()
    with browser_page(1300, 1000) as page:
        page.goto(path.as_uri())
        page.locator("body[data-live='yes'][data-showing='100,60']").wait_for(state="attached", timeout=30_000)
        assert "red: A attends more" in page.locator("figcaption .sub").nth(2).inner_text()
        stage = page.locator(".stage").nth(2)
        box = stage.bounding_box()
        stage.hover(position={"x": box["width"] * 0.25, "y": box["height"] * 0.7})
        page.wait_for_function("() => document.body.dataset.showing !== '100,60'", timeout=10_000)
        y, x = (int(v) for v in page.evaluate("document.body.dataset.showing").split(","))
        shown = page.evaluate("window.vizattnGrid.maps()")
        lo, hi = page.locator(".bar .lo").nth(2).inner_text(), page.locator(".bar .hi").nth(2).inner_text()
        tip = page.locator(".vizattn-tip div").nth(2).inner_text()  # the value under the pointer, named as what it is
    ra, rb = fa.records["head.context"], fb.records["head.context"]
    gy, gx = cell_of(y, x, fa.shape, ra.grid)
    want = ra.query_map(gy, gx, ra.default_view) - rb.query_map(gy, gx, rb.default_view)
    got = np.asarray(shown[2]["map"]).reshape(want.shape)
    assert np.abs(got - want).max() <= 1e-3 and np.abs(want).max() > 1e-3
    assert lo.startswith("−") and hi.startswith("+") and lo[1:] == hi[1:]  # a symmetric colorbar around 0
    said = re.fullmatch(r"A − B ([−+])(\S+) · click to pin", tip)  # at the pointer's own cell
    assert said, tip
    value = want[gy, gx]
    assert (said[1] == "−") == (value < 0) and abs(float(said[2]) - abs(value)) <= 5e-3 * abs(value) + 1e-6
