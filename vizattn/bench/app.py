"""`vizattn bench app`: click → updated panels in a real browser (Debian chromium via playwright), for the
full comparison grid at 256² and 512² scenes. Prints a table; asserts nothing.

A click counts as done when plotly has drawn the comparison grid titled with the new pixel, not when the
server has answered: that is what the person sees."""
from __future__ import annotations

import statistics
import time

from vizattn.bench.browser import app_server, browser_page, click_image, marker, open_tab, wait_idle, wait_plot_title

HEADER = ["scene size", "models in grid", "clicks", "median s", "min s", "max s", "page ready s"]


def _wait_change(page, element_id: str, before: str, timeout: float = 60.0) -> str:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        now = marker(page, element_id)
        if now != before:
            return now
        time.sleep(0.01)
    raise TimeoutError(f"#{element_id} did not change")


def run(sizes=(256, 512), clicks: int = 6) -> list[list]:
    rows = []
    with app_server() as url, browser_page() as page:
        for size in sizes:
            t0 = time.perf_counter()
            page.goto(f"{url}")
            wait_idle(page)
            open_tab(page, "Compare models")
            marker(page, "compare-state")
            slider = page.get_by_role("group", name="Scene size (px)").get_by_role("slider")
            if size != 384:
                # move the select slider with the keyboard: 256 is one step left of 384, 512 one step right
                slider.focus()
                page.keyboard.press("ArrowLeft" if size < 384 else "ArrowRight")
                _wait_change(page, "compare-state", marker(page, "compare-state"))
            wait_idle(page)
            ready = time.perf_counter() - t0
            n_models = int(marker(page, "compare-state").split(" over ")[1].split()[0])
            times = []
            for i in range(clicks):
                before = marker(page, "compare-state")
                fx, fy = 0.1 + 0.13 * i, 0.85 - 0.11 * i
                t = time.perf_counter()
                click_image(page, fx, fy)
                now = _wait_change(page, "compare-state", before)
                pixel = now.split("compare for ")[1].split(" over")[0]
                wait_plot_title(page, f"models at pixel {pixel}")
                times.append(time.perf_counter() - t)
                wait_idle(page)
            rows.append([f"{size}×{size}", n_models, clicks, statistics.median(times), min(times), max(times), ready])
    return rows
