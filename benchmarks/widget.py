"""`vizattn bench widget`: pointer move → panels repainted in the notebook widget (`vizattn.show`), in JupyterLab
driven by Debian's chromium as tests/notebook/test_lab.py drives it, on a 384² scene. The grid keeps each move's
time from the move event's timestamp to the frame after the repaint (`panel_grid_frontend/grid.js`).

Prints a table; asserts nothing. Goal: p90 ≤ 33 ms (a repaint every other frame at 60 Hz)."""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.app import percentile
from benchmarks.browser import browser_page, lab_open, lab_run_cell, lab_server, notebook_json

HEADER = ["grid", "panels", "factors MiB", "moves", "hover p50 ms", "hover p90 ms", "hover max ms"]
GRIDS = {  # label -> the cell that shows it
    "criss_cross, all views": 'vizattn.show("criss_cross", "scene:1000000007")',
    "4 models compared": 'vizattn.show("criss_cross", "scene:1000000007", compare=["ann", "isa", "danet"])',
}


def _hover(page, index: int, moves: int) -> list[float]:
    """Moves over the second panel of widget `index` along a loop of distinct pixels, one every 80 ms."""
    root = page.locator(".vizattn").nth(index)
    stage = root.locator(".stage").nth(1)
    stage.scroll_into_view_if_needed()
    box = stage.bounding_box()
    root.evaluate("r => { r.vizattn.timings.length = 0; }")
    for i in range(moves):
        fx, fy = 0.1 + 0.8 * (i % 20) / 19, 0.15 + 0.7 * (i // 20 % 5) / 4 + 0.02 * (i % 3)
        page.mouse.move(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
        time.sleep(0.08)
    time.sleep(0.2)
    page.mouse.move(2, 2)
    return root.evaluate("r => Array.from(r.vizattn.timings)")


def run(moves: int = 60, screenshot: Path | None = None) -> list[list]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cells = ["import vizattn"] + list(GRIDS.values())
        (folder / "bench.ipynb").write_text(notebook_json(cells))
        with lab_server(folder) as (url, token), browser_page(1300, 1000) as page:
            lab_open(page, url, token, "bench.ipynb")
            page.evaluate("() => window.jupyterapp.commands.execute('application:toggle-left-area')")
            for i in range(len(cells)):
                lab_run_cell(page, i)
            page.locator(".vizattn[data-live='yes']").nth(len(GRIDS) - 1).wait_for(state="attached", timeout=180_000)
            if screenshot:
                first = page.locator(".jp-Notebook .jp-Cell").nth(1)
                first.scroll_into_view_if_needed()
                stage = page.locator(".vizattn .stage").first
                box = stage.bounding_box()
                page.mouse.move(box["x"] + box["width"] * 0.45, box["y"] + box["height"] * 0.52)
                page.wait_for_timeout(300)
                first.screenshot(path=str(screenshot))
                page.mouse.move(2, 2)
            for i, label in enumerate(GRIDS):
                root = page.locator(".vizattn").nth(i)
                n = root.locator(".stage").count()
                mib = root.evaluate("r => r.vizattn.factorBytes / 2 ** 20")
                t = _hover(page, i, moves)
                rows.append([label, n, round(mib, 1), len(t), round(statistics.median(t), 1),
                             round(percentile(t, 90), 1), round(max(t), 1)])
    return rows
