"""End to end in a real browser: the Data set tab opens a `vizattn analyze` folder, and clicking an extreme's row
opens that image in the main view with that query pixel pinned and the statistic's value beside it."""
import os
from pathlib import Path

import pytest

from benchmarks.browser import CHROMIUM, app_server, browser_page, open_tab, wait_grid, wait_idle
from vizattn.zoo import available

IN_CI = os.environ.get("CI") == "true"
if not Path(CHROMIUM).exists() and not IN_CI:  # in CI a missing browser must fail, never skip
    pytest.skip("Debian chromium is not installed here (apt-get install chromium)", allow_module_level=True)
pytestmark = pytest.mark.skipif(not available(), reason="needs the bundled models in vizattn/pretrained/")

PATH_FIELD = "input[aria-label='The --out folder of a `vizattn analyze` run']"
ROW_PX = 35  # Streamlit's dataframe: the header and every row are 35 px high; the row's checkbox sits at the left


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    from vizattn.analyze import Job, analyze

    out = tmp_path_factory.mktemp("analyze") / "out"
    analyze(Job(model="criss_cross", scenes=2, queries=8, size=96), out, progress=False)
    return out


def test_an_extremes_row_opens_its_image_at_its_pixel(run_folder):
    import pandas as pd

    extremes = pd.read_parquet(run_folder / "extremes.parquet")
    stat = sorted(extremes["statistic"].unique())[0]  # the tab's first statistic, as it lists them
    shown = (extremes[extremes["statistic"] == stat]
             .sort_values(["class", "module", "view", "end", "rank"]).reset_index(drop=True))
    row = shown.iloc[1]
    y, x, seed = int(row["y"]), int(row["x"]), row["image"].split(":")[1]

    with app_server() as url, browser_page(1400, 1000) as page:
        page.goto(url)
        page.get_by_text("Query pixel (192, 192)").wait_for(timeout=120_000)
        # the first screen whole (its grid drawn, and the live forward that follows it done) before leaving it
        wait_grid(page, "criss_cross at pixel (192, 192)")
        wait_idle(page)
        open_tab(page, "Data set")
        field = page.locator(PATH_FIELD)
        field.wait_for(timeout=120_000)  # leaving the Attention tab runs the live model first (a cold one in CI)
        field.fill(str(run_folder))
        field.press("Enter")
        wait_idle(page)
        table = page.locator('[data-testid="stDataFrame"]').first
        table.wait_for(timeout=60_000)
        table.scroll_into_view_if_needed()
        wait_idle(page)
        table.click(position={"x": 16, "y": ROW_PX + ROW_PX * 1 + ROW_PX // 2})  # the second row's open control

        page.get_by_text(f"Showing scene{seed} from the Data set tab").wait_for(timeout=60_000)  # that image
        wait_idle(page)
        assert page.get_by_text(f"Query pixel ({y}, {x})").count() == 1  # that pixel, pinned
        note = page.locator('[data-testid="stAlertContentSuccess"]').inner_text()
        assert f"{row['value']:.3g} at ({y}, {x}) of scene:{seed}" in note  # the statistic's value
        assert f"rank {row['rank']} {row['end']} for class {row['class']}" in note
