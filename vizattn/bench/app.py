"""`vizattn bench app`: click → updated panels in a real browser (Debian chromium via playwright), for the
full comparison grid at 256² and 512² scenes. Prints a table; asserts nothing.

A click counts as done when the comparison grid shows the new pixel's maps (images decoded, in place),
not when the server has answered: that is what the person sees."""
from __future__ import annotations

import statistics
import time

from vizattn.bench.browser import (app_server, browser_page, click_image, marker, open_tab, panel_grid, wait_change,
                                   wait_grid, wait_idle)

HEADER = ["scene size", "tab", "panels", "clicks", "median ms", "p90 ms", "min ms", "max ms", "page ready s"]
TABS = {"Compare models": "compare-state", "Attention": "panel-state"}  # tab -> the marker it writes per pixel


def _pixel_text(marker_text: str) -> str:
    """'compare for (y, x) over 9 models' -> 'at pixel (y, x)', the end of the grid's title."""
    return f"at pixel {marker_text[marker_text.index('('):marker_text.index(')') + 1]}"


def _click_times(page, tab: str, clicks: int) -> list[float]:
    element = TABS[tab]
    times = []
    for i in range(clicks):
        before = marker(page, element)
        fx, fy = 0.08 + 0.84 * i / max(1, clicks - 1), 0.88 - 0.76 * i / max(1, clicks - 1)  # a diagonal sweep
        t = time.perf_counter()
        click_image(page, fx, fy)
        now = wait_change(page, element, before)
        wait_grid(page, _pixel_text(now))
        times.append(time.perf_counter() - t)
        wait_idle(page)
    return times


def run(sizes=(256, 512), clicks: int = 10, tabs=tuple(TABS)) -> list[list]:
    rows = []
    with app_server() as url, browser_page() as page:
        for size in sizes:
            t0 = time.perf_counter()
            page.goto(f"{url}")
            wait_idle(page)
            open_tab(page, "Compare models")
            marker(page, "compare-state")
            if size != 384:
                # move the select slider with the keyboard: 256 is one step left of 384, 512 one step right
                slider = page.get_by_role("group", name="Scene size (px)").get_by_role("slider")
                slider.focus()
                page.keyboard.press("ArrowLeft" if size < 384 else "ArrowRight")
                wait_change(page, "compare-state", marker(page, "compare-state"))
            wait_idle(page)
            ready = time.perf_counter() - t0
            for tab in tabs:
                open_tab(page, tab)
                wait_grid(page, _pixel_text(marker(page, TABS[tab])))
                n_panels = panel_grid(page).locator(".stage").count()
                ms = sorted(1000 * t for t in _click_times(page, tab, clicks))
                p90 = ms[min(len(ms) - 1, round(0.9 * (len(ms) - 1)))]
                rows.append([f"{size}×{size}", tab, n_panels, clicks, statistics.median(ms), p90, ms[0], ms[-1], ready])
    return rows
