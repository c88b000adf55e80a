"""`vizattn bench app`: what a person waits for in a real browser (Debian chromium via playwright), on the
comparison grid of every bundled attention model, for a 384² scene and a 1024² upload:

- pointer move → panels repainted: measured inside the page from the move event's timestamp to the frame
  after the repaint (hover-follow: `panel_grid_frontend/grid.js` keeps these times);
- click → the page rerun and the grid drawn for the new pixel (the click path, beside it), also timed inside the
  page, from the click to the frame after both;
- cold start: `streamlit run app.py` and `vizattn app` launched → healthy → the page usable → the first attention
  map painted, beside a one-line page and the page's Streamlit widgets alone, with the browser's cache empty and
  warm.

Prints tables; asserts nothing."""
from __future__ import annotations

import compileall
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.browser import (ROOT, app_server, browser_page, free_port, grid_eval, grid_marked, marker, open_tab,
                                   panel_grid, wait_change, wait_grid, wait_idle)

HEADER = ["image", "panels", "factors MiB", "moves", "hover p50 ms", "hover p90 ms", "hover max ms",
          "pins", "click → pinned p50 ms", "click → pinned p90 ms", "clicks", "click → page p50 ms", "click → page p90 ms"]
COLD_HEADER = ["browser cache", "started as", "run", "server healthy s", "page usable s", "first map s",
               "÷ one-line page"]
ONE_LINE = 'import streamlit as st\nst.write("one line")\n'  # the baseline: Streamlit itself, started the same way
# benchmarks/widgets_page.py is whole when every widget it draws is on screen: Streamlit draws a text at once but each
# kind of widget once its code has arrived (on a first visit, fetched from the server that is running the script),
# so its last text is drawn before its widgets are
WIDGETS_DRAWN = """() => {
  const want = {stRadio: 4, stSelectbox: 3, stSlider: 3, stNumberInput: 2, stButton: 4, stExpander: 1, stTabs: 1};
  return Object.entries(want).every(([id, n]) => document.querySelectorAll(`[data-testid='${id}']`).length >= n);
}"""


def _pixel_text(marker_text: str) -> str:
    """'compare for (y, x) over 9 models' -> 'at pixel (y, x)', the end of the grid's title."""
    return f"at pixel {marker_text[marker_text.index('('):marker_text.index(')') + 1]}"


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q / 100 * (len(s) - 1)))]


# Installed in the page before each click on the clickable image: the times (ms since the epoch, on the page's own
# clocks) of the click (its pointerup), of the frame after the marker `id` stops reading `before`, and of the frame
# after each new figure the panel grid draws (its root's data-rendered, the title it shows).
CLICK_WATCH = """([id, before]) => {
  const epoch = () => performance.timeOrigin + performance.now();
  const after = f => requestAnimationFrame(() => setTimeout(f, 0));
  const rec = window.vizattnClick = { click: null, marker: null, grids: [] };
  window.addEventListener("pointerup", e => { rec.click = performance.timeOrigin + e.timeStamp; },
                          { capture: true, once: true });
  new MutationObserver((_, obs) => {
    const m = document.getElementById(id);
    if (m && m.textContent !== before) { obs.disconnect(); after(() => { rec.marker = epoch(); }); }
  }).observe(document.body, { subtree: true, childList: true, characterData: true });
  for (const grid of (window.vizattnGrids || new Map()).values()) {
    const root = grid.root;
    new MutationObserver(() => { const v = root.dataset.rendered; after(() => rec.grids.push([v, epoch()])); })
      .observe(root, { attributes: true, attributeFilter: ["data-rendered"] });
  }
}"""


def _click_times(page, clicks: int) -> list[float]:
    """Clicks on the clickable image (a diagonal sweep), each timed inside the page from the click (its pointerup)
    to the later of two frames: the one after the page's marker names the new pixel, and the one after the grid
    has drawn the figure for it (the page rerun and the grid's new args). Timed in the page, as the pins are: the
    harness's own steps before a click (playwright's locating, scrolling and actionability checks, ~170 ms
    here) are not what a person waits for."""
    img = page.locator(".st-key-image_click img").first
    img.wait_for(timeout=120_000)
    img.scroll_into_view_if_needed()
    times = []
    for i in range(clicks):
        before = marker(page, "compare-state")
        fx, fy = 0.08 + 0.84 * i / max(1, clicks - 1), 0.88 - 0.76 * i / max(1, clicks - 1)  # a diagonal sweep
        box = img.bounding_box()
        page.evaluate(CLICK_WATCH, ["compare-state", before])
        page.mouse.click(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
        now = wait_change(page, "compare-state", before, timeout=300)
        wait_grid(page, _pixel_text(now))
        wait_idle(page)
        page.wait_for_function("window.vizattnClick.click !== null && window.vizattnClick.marker !== null")
        rec = page.evaluate("window.vizattnClick")
        drawn = next(t for title, t in rec["grids"] if title and title.endswith(_pixel_text(now)))
        times.append(max(rec["marker"], drawn) - rec["click"])
    return times


def _second_panel(page, timings: str):
    """The second panel's box, with the grid's `timings` list emptied."""
    stage = panel_grid(page).locator(".stage").nth(1)
    stage.scroll_into_view_if_needed()
    grid_eval(page, f"grid.{timings}.length = 0")
    return stage.bounding_box()


def _hover_times(page, moves: int) -> list[float]:
    """Pointer moves over the second panel along a loop of distinct pixels, one every 80 ms (a hand moving
    slowly); the grid records each move's time to paint."""
    box = _second_panel(page, "timings")
    for i in range(moves):
        fx, fy = 0.1 + 0.8 * (i % 20) / 19, 0.15 + 0.7 * (i // 20 % 5) / 4 + 0.02 * (i % 3)
        page.mouse.move(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
        time.sleep(0.08)
    time.sleep(0.2)
    page.mouse.move(2, 2)  # leave: the pinned query again
    return grid_eval(page, "Array.from(grid.timings)")


def _pin_times(page, clicks: int) -> list[float]:
    """Clicks on the second panel: each is timed inside the page from the click event to the frame after the
    panels show the pinned query (the grid pins in the browser; the page's rerun follows and is waited for)."""
    box = _second_panel(page, "pinTimings")
    for i in range(clicks):
        before = marker(page, "compare-state")
        fx, fy = 0.15 + 0.7 * i / max(1, clicks - 1), 0.8 - 0.6 * i / max(1, clicks - 1)
        page.mouse.click(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
        wait_change(page, "compare-state", before, timeout=300)
        wait_idle(page)
    return grid_eval(page, "Array.from(grid.pinTimings)")


def _measure(page, label: str, moves: int, clicks: int) -> list:
    grid = panel_grid(page)
    n_panels = grid.locator(".stage").count()
    mib = grid_eval(page, "(grid.factorBytes || 0) / 2 ** 20")
    live = grid.get_attribute("data-live") == "yes"
    hover = _hover_times(page, moves) if live else []
    pins = _pin_times(page, clicks) if live else []
    ms = _click_times(page, clicks)
    hover_cols = ([len(hover), statistics.median(hover), percentile(hover, 90), max(hover)] if hover
                  else [0, "server path", "", ""])
    pin_cols = [len(pins), statistics.median(pins), percentile(pins, 90)] if pins else [0, "server path", ""]
    return [label, n_panels, round(mib, 1), *hover_cols, *pin_cols, clicks, statistics.median(ms), percentile(ms, 90)]


def cold_start(runs: int = 2) -> list[list]:
    """Seconds from launching the server to: its health check answering, the page usable (the sidebar's model
    picker shown), the first attention map painted; for `streamlit run app.py` and `vizattn app`, beside two
    reference pages started the same way in the same run: a one-line Streamlit page (its first paint: the line
    shown) and the first screen's Streamlit elements alone (benchmarks/widgets_page.py: its last text and every widget
    drawn), which is what Streamlit's frontend takes for the page's widgets whatever vizattn does. Interleaved run by
    run, so that
    a noisy machine weighs on all alike. The last column: the first map ÷ the one-line page's first paint; the
    median rows give each column's median over the runs.

    Twice: with the browser's cache empty ("first visit": each server on a new port, so Streamlit's frontend and
    each widget's code are fetched from the server just started), and with it warm ("returning": one port for all,
    each page loaded once before the timed runs), as when a person restarts the app and reloads the tab."""
    # the page's modules from bytecode, as from an installed wheel (pip compiles it) or a checkout after its first
    # run: where PYTHONDONTWRITEBYTECODE is set (this machine sets it), each first run would compile ~40 modules again
    compileall.compile_dir(str(ROOT / "vizattn"), quiet=1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, browser_page(1400, 1000) as page:
        one_line = Path(tmp) / "one_line.py"
        one_line.write_text(ONE_LINE)
        variants = (("one-line page", dict(script=one_line), "one line"),
                    ("widgets alone (no vizattn)", dict(script=Path(__file__).with_name("widgets_page.py")), "all drawn"),
                    ("streamlit run app.py", {}, None), ("vizattn app", dict(vizattn_app=True), None))
        for cache, port in (("first visit", None), ("returning", free_port())):
            seconds, timed = {}, []  # label -> [(healthy, usable, first map)] per run
            for run in range(0 if port else 1, runs + 1):  # returning: run 0 fills the browser's cache, untimed
                for label, how, text in variants:
                    times: dict = {}
                    with app_server(times=times, port=port, **how) as url:
                        healthy = time.perf_counter() - times["launched"]
                        page.goto(url)
                        page.get_by_text(text or "Bundled model").first.wait_for(timeout=120_000)
                        usable = time.perf_counter() - times["launched"]
                        if text == "all drawn":
                            page.wait_for_function(WIDGETS_DRAWN, timeout=120_000)
                        if text is None:
                            grid_marked(page, "[data-rendered]").wait_for(state="attached", timeout=120_000)
                        first = time.perf_counter() - times["launched"]
                        # leave the page before its server stops: on one port its frontend would reconnect to the
                        # next server and start a session there, during that page's timed load
                        page.goto("about:blank")
                    if run:
                        seconds.setdefault(label, []).append((healthy, usable, first))
                        timed.append([cache, label, run, healthy, usable, first, ""])
            base = statistics.median(first for _, _, first in seconds["one-line page"])
            for row in timed:
                row[6] = round(row[5] / base, 2)
            rows += timed
            for label, values in seconds.items():
                medians = [statistics.median(column) for column in zip(*values)]
                rows.append([cache, f"{label} (median)", "", *medians, round(medians[2] / base, 2)])
    return rows


def run(moves: int = 40, clicks: int = 8, upload_side: int = 1024) -> list[list]:
    from PIL import Image

    from vizattn.export import image_source

    rows = []
    with tempfile.TemporaryDirectory() as tmp, app_server() as url, browser_page(1400, 1400) as page:
        upload = Path(tmp) / f"scene_{upload_side}.png"
        Image.fromarray(image_source("scene:1000000021", upload_side).image).save(upload)
        page.goto(url)
        wait_idle(page)
        open_tab(page, "Compare models")
        wait_grid(page, _pixel_text(marker(page, "compare-state")), timeout_ms=600_000)
        rows.append(_measure(page, "384×384 scene", moves, clicks))
        page.get_by_text("upload", exact=True).click()
        wait_idle(page)
        page.locator("[data-testid='stFileUploader'] input[type=file]").last.set_input_files(str(upload))
        centre = f"at pixel ({upload_side // 2}, {upload_side // 2})"
        wait_grid(page, centre, timeout_ms=900_000)
        wait_idle(page, 900_000)
        rows.append(_measure(page, f"{upload_side}×{upload_side} upload", moves, clicks))
    return rows
