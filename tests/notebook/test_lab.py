"""In JupyterLab (offline: the widget's JavaScript comes from the installed packages) driven by Debian's chromium:
the widget's panels repaint as the pointer moves, a click pins and Python reads the pinned pixel back, and a
pixel set from Python repaints the panels."""
import os
from pathlib import Path

import pytest

from benchmarks.browser import CHROMIUM, browser_page, lab_open, lab_run_cell, lab_server, notebook_json
from vizattn.zoo import available

IN_CI = os.environ.get("CI") == "true"
if not Path(CHROMIUM).exists() and not IN_CI:  # in CI a missing browser must fail, never skip
    pytest.skip("Debian chromium is not installed here (apt-get install chromium)", allow_module_level=True)
pytestmark = pytest.mark.skipif(not available(), reason="needs the bundled models in vizattn/pretrained/")

CANVASES = "() => Array.from(document.querySelectorAll('.vizattn canvas.heat')).map(c => c.toDataURL())"


def output_of(page, cell: int) -> str:
    return page.locator(".jp-Notebook .jp-Cell").nth(cell).locator(".jp-OutputArea-output").inner_text()


def test_the_widget_follows_the_pointer_and_a_click_pins_the_pixel_python_reads(tmp_path):
    (tmp_path / "grid.ipynb").write_text(notebook_json([
        'import vizattn\nw = vizattn.show("criss_cross", "scene:1000000007", pixel=(192, 192))\nw',
        'print("pinned", w.pixel)',
        "w.pixel = (100, 50)",
    ]))
    with lab_server(tmp_path) as (url, token), browser_page(1300, 1000) as page:
        lab_open(page, url, token, "grid.ipynb")
        lab_run_cell(page, 0)
        root = page.locator(".vizattn[data-live='yes'][data-showing='192,192']")
        root.wait_for(state="attached", timeout=60_000)
        assert "criss_cross predicts" in page.locator(".vizattn-title").inner_text()
        stage = page.locator(".vizattn .stage").nth(1)
        stage.scroll_into_view_if_needed()
        box = stage.bounding_box()
        for fx, fy in ((0.2, 0.3), (0.7, 0.8)):
            before = page.evaluate(CANVASES)
            shown = page.locator(".vizattn").get_attribute("data-showing")
            page.mouse.move(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
            page.wait_for_function("s => document.querySelector('.vizattn').dataset.showing !== s", arg=shown,
                                   timeout=10_000)
            y, x = (int(v) for v in page.locator(".vizattn").get_attribute("data-showing").split(","))
            assert abs(y - fy * 384) <= 3 and abs(x - fx * 384) <= 3  # a screen pixel is ~1.4 image pixels
            assert page.evaluate(CANVASES) != before  # every panel repainted for the pixel under the pointer
        page.mouse.click(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.4)
        y, x = (int(v) for v in page.locator(".vizattn").get_attribute("data-showing").split(","))
        assert abs(y - 0.4 * 384) <= 3 and abs(x - 0.6 * 384) <= 3
        # Python hears of the pin and sends the grid back with the new title
        page.locator(f".vizattn[data-rendered*='at pixel ({y}, {x})']").wait_for(state="attached", timeout=30_000)
        lab_run_cell(page, 1)
        page.wait_for_function("t => document.querySelectorAll('.jp-Notebook .jp-Cell')[1].innerText.includes(t)",
                               arg=f"pinned ({y}, {x})", timeout=30_000)
        assert output_of(page, 1).strip() == f"pinned ({y}, {x})"
        page.mouse.move(2, 2)
        lab_run_cell(page, 2)  # set from Python: the panels repaint there
        page.locator(".vizattn[data-showing='100,50'][data-rendered*='at pixel (100, 50)']").wait_for(
            state="attached", timeout=30_000)
