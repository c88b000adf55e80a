"""End to end in a real browser: open the app, click a pixel, see the panels change, export a PNG."""
import io
import os
from pathlib import Path

import pytest
from PIL import Image

from benchmarks.browser import (CHROMIUM, SHOWN_GRID, app_server, browser_page, click_image, grid_marked, marker,
                                panel_grid, wait_change, wait_grid, wait_idle)
from vizattn.zoo import available

IN_CI = os.environ.get("CI") == "true"
if not Path(CHROMIUM).exists() and not IN_CI:  # in CI a missing browser must fail, never skip
    pytest.skip("Debian chromium is not installed here (apt-get install chromium)", allow_module_level=True)
pytestmark = pytest.mark.skipif(not available(), reason="needs the bundled models in vizattn/pretrained/")


def shot_path(tmp_path, name: str) -> str:
    """Where a screenshot goes: the folder VIZATTN_SHOTS names (to look at them), else the test's tmp dir."""
    folder = Path(os.environ.get("VIZATTN_SHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder / name)


def click_and_follow(page, fx: float, fy: float, shape: tuple[int, int]) -> tuple[int, int]:
    """Click the image at fractions (fx, fy); the query lands there and the panels redraw for it."""
    before = marker(page)
    click_image(page, fx, fy)
    after = wait_change(page, "panel-state", before, timeout=120)
    y, x = (int(v) for v in after[len("panels for ("):-1].split(","))
    assert abs(y - fy * shape[0]) <= 3 and abs(x - fx * shape[1]) <= 3
    wait_idle(page)
    wait_grid(page, f"at pixel ({y}, {x})")
    return y, x


def test_click_changes_the_panel_and_png_export_is_valid(tmp_path):
    with app_server() as url, browser_page(1400, 2000) as page:  # tall: the screenshot shows the panels too
        page.goto(url)
        before = marker(page)
        assert before == "panels for (192, 192)"
        click_image(page, 0.85, 0.75)  # open road, far from the cars
        after = wait_change(page, "panel-state", before)
        assert after != before and after.startswith("panels for (")
        y, x = (int(v) for v in after[len("panels for ("):-1].split(","))
        assert abs(y - 0.75 * 384) <= 3 and abs(x - 0.85 * 384) <= 3
        wait_idle(page)
        wait_grid(page, f"criss_cross at pixel ({y}, {x})")  # the panels show the new pixel's maps

        # hovering a panel shows the weight under the mouse
        grid = panel_grid(page)
        stage = grid.locator(".stage").nth(0)  # the effective map: main views come first
        stage.scroll_into_view_if_needed()
        box = stage.bounding_box()
        stage.hover(position={"x": box["width"] * 0.5, "y": box["height"] * 0.25})
        tip = grid.locator(".vizattn-tip")
        tip.wait_for(state="visible", timeout=10_000)
        assert "head.context · effective" in tip.inner_text() and "weight " in tip.inner_text()
        shot = os.environ.get("VIZATTN_SCREENSHOT")
        page.screenshot(path=shot or str(tmp_path / "after_click.png"), full_page=True)

        # a click on a panel moves the query to that pixel
        stage.click(position={"x": box["width"] * 0.25, "y": box["height"] * 0.5})
        moved = wait_change(page, "panel-state", after)
        y2, x2 = (int(v) for v in moved[len("panels for ("):-1].split(","))
        assert abs(y2 - 0.5 * 384) <= 3 and abs(x2 - 0.25 * 384) <= 3
        wait_idle(page)

        # with the grid focused (it was just clicked), an arrow key moves the query one cell (8 px) right
        wait_grid(page, f"at pixel ({y2}, {x2})")
        before = marker(page)
        page.keyboard.press("ArrowRight")
        assert wait_change(page, "panel-state", before) == f"panels for ({y2}, {x2 + 8})"

        page.get_by_role("tab", name="Export").click()
        page.get_by_role("button", name="Prepare exports: current panels").click()
        button = page.get_by_role("button", name="PNG").first
        button.wait_for(timeout=120_000)
        with page.expect_download(timeout=60_000) as dl:
            button.click()
        path = tmp_path / dl.value.suggested_filename
        dl.value.save_as(path)
        assert path.name.startswith("criss_cross_scene1000000007_y") and path.suffix == ".png"
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert Image.open(io.BytesIO(data)).size[0] > 100


def test_an_uploaded_mmseg_checkpoint_shows_attention_on_a_photograph(tmp_path):
    """An mmseg CCNet checkpoint (mmseg's own config, narrowed, random weights) and a real photograph, both
    uploaded in the browser: the page names the checkpoint's classes, and a click gives the criss-cross maps."""
    import matplotlib.cbook

    from tests.foreign.mmseg_models import build, checkpoint_bytes
    from vizattn.foreign.mmseg import CITYSCAPES, CITYSCAPES_PALETTE

    ref, cfg = build("cc", narrow=True)
    ckpt = tmp_path / "ccnet_r50-d8_cityscapes.pth"
    ckpt.write_bytes(checkpoint_bytes(ref, cfg, "1.x", CITYSCAPES, CITYSCAPES_PALETTE))
    photo = Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    with app_server() as url, browser_page(1400, 2000) as page:
        page.goto(url)
        wait_grid(page, "criss_cross at pixel (192, 192)")  # the page is drawn and connected before the sidebar is used
        wait_idle(page)
        page.get_by_text("upload a checkpoint").click()
        wait_idle(page)
        page.locator("[data-testid='stFileUploader']").first.wait_for(timeout=120_000)
        page.locator("[data-testid='stFileUploader'] input[type=file]").first.set_input_files(str(ckpt))
        page.get_by_text("mmseg CCHead on ResNetV1c-50-D8").wait_for(timeout=120_000)
        page.get_by_text("upload", exact=True).click()
        wait_idle(page)
        page.locator("[data-testid='stFileUploader'] input[type=file]").nth(1).set_input_files(str(photo))
        # a 600×512 photo: the query starts at its centre
        wait_grid(page, "ccnet_r50-d8_cityscapes-pth at pixel (300, 256)", timeout_ms=240_000)
        click_and_follow(page, 0.3, 0.4, (600, 512))
        assert any(c in page.inner_text("body") for c in CITYSCAPES)  # the legend names the checkpoint's classes
        grid = panel_grid(page)
        assert grid.locator(".stage").count() == 3  # loop 1, loop 2, effective
        page.screenshot(path=shot_path(tmp_path, "mmseg.png"), full_page=True)
        shot = os.environ.get("VIZATTN_MMSEG_SCREENSHOT")
        if shot:
            page.screenshot(path=shot, full_page=True)


def test_a_segformer_directory_shows_per_layer_per_head_maps(tmp_path):
    """A transformers SegFormer directory (made here, random weights) opened by path: one panel per head of
    every layer, and a click moves them."""
    from tests.foreign.test_observe import save_segformer

    folder = tmp_path / "segformer-tiny"
    save_segformer(folder)
    with app_server() as url, browser_page(1400, 2400) as page:
        page.goto(url)
        wait_idle(page)
        page.get_by_text("a checkpoint path on this machine").click()
        wait_idle(page)
        box = page.get_by_test_id("stTextInputField").first
        box.fill(str(folder))
        box.press("Enter")
        page.get_by_text("segformer (SegformerForSemanticSegmentation)").first.wait_for(timeout=120_000)
        wait_grid(page, "segformer-tiny at pixel (192, 192)", timeout_ms=240_000)
        # heads 1, 2, 5, 8 per stage, plus a mean for every multi-head stage
        # one layer at a time (the navigator): stage 0 has one head; stage 3's eight heads and their mean
        assert panel_grid(page).locator(".stage").count() == 1
        page.get_by_test_id("stSelectbox").filter(has_text="Layer").click()
        page.get_by_role("option", name="stage 3 · block 0").click()
        wait_idle(page)
        panel_grid(page).locator(".stage").nth(8).wait_for(timeout=60_000)
        assert panel_grid(page).locator(".stage").count() == 1 + 8
        click_and_follow(page, 0.25, 0.6, (384, 384))
        assert "road" in page.inner_text("body")  # the legend names the model's own labels
        page.screenshot(path=str(tmp_path / "segformer.png"), full_page=True)
        shot = os.environ.get("VIZATTN_SEGFORMER_SCREENSHOT")
        if shot:
            page.screenshot(path=shot, full_page=True)


def test_another_sessions_clicks_are_answered_while_one_uploads_hostile_files(tmp_path):
    """Two browser sessions on one server: while A uploads the hostile corpus (a deflate bomb in a torch zip, a
    config asking for 3000 loops, a config of a 1.3 GB model over 1.8 MB of weights, a JPEG of 3000 scans), B keeps
    clicking and the health endpoint keeps answering. Latencies are printed (pytest -s) and bounded."""
    import statistics
    import threading
    import time
    import urllib.request
    import zipfile

    import torch

    from tests.test_hostile import jpeg, own_checkpoint, torch_zip
    from vizattn.models.segmenter import ModelConfig, build_model

    buf = io.BytesIO()
    torch.save(build_model(ModelConfig("fcn")).state_dict(), buf)
    prefix = zipfile.ZipFile(io.BytesIO(buf.getvalue())).namelist()[0].split("/")[0]
    files = {
        "bomb.pt": torch_zip(buf.getvalue(), {f"{prefix}/data/999": bytes(256 * 2**20)}, zipfile.ZIP_DEFLATED),
        "loops.safetensors": own_checkpoint({"head": "criss_cross", "module_options": {"recurrence": 3000}}),
        "wide.safetensors": own_checkpoint({"head": "criss_cross", "widths": [1024, 1024, 1024], "head_channels": 1024}),
    }
    progressive = jpeg((1024, 768), progressive=True)
    scans = progressive[:-2] + b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00" * 3000 + b"\xff\xd9"
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "scans.jpg").write_bytes(scans)

    health, stop = [], threading.Event()
    with app_server() as url, browser_page(1400, 1400) as page_b:
        def poll():
            while not stop.is_set():
                t0 = time.perf_counter()
                ok = urllib.request.urlopen(f"{url}/_stcore/health", timeout=30).read() == b"ok"
                health.append((time.perf_counter() - t0, ok))
                time.sleep(0.1)

        page_a = page_b.context.browser.new_context(viewport={"width": 1400, "height": 1400}).new_page()
        page_b.goto(url)
        wait_grid(page_b, "criss_cross at pixel (192, 192)")
        page_a.goto(url)
        wait_idle(page_a)
        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        clicks, refusals = [], []
        page_a.get_by_text("upload a checkpoint").click()
        wait_idle(page_a)
        points = iter([(0.2, 0.7), (0.8, 0.8), (0.3, 0.3), (0.6, 0.5), (0.4, 0.9), (0.7, 0.2), (0.5, 0.6), (0.9, 0.4)])
        uploads = [("checkpoint", n) for n in files] + [("image", "scans.jpg")]
        for kind, name in uploads:
            t0 = time.perf_counter()
            if kind == "image":
                page_a.get_by_text("upload", exact=True).click()
                wait_idle(page_a)
            page_a.locator("[data-testid='stFileUploader'] input[type=file]").nth(0 if kind == "checkpoint" else 1) \
                .set_input_files(str(tmp_path / name))
            fx, fy = next(points)  # B clicks while A's upload is being read and refused
            c0 = time.perf_counter()
            click_and_follow(page_b, fx, fy, (384, 384))
            clicks.append(time.perf_counter() - c0)
            page_a.locator("[data-testid='stAlertContentError']").filter(has_text=name).first.wait_for(timeout=120_000)
            refusals.append((name, time.perf_counter() - t0))
            fx, fy = next(points)
            c0 = time.perf_counter()
            click_and_follow(page_b, fx, fy, (384, 384))
            clicks.append(time.perf_counter() - c0)
        stop.set()
        poller.join(30)
    times = [t for t, _ in health]
    print(f"\nB's clicks while A uploads: {len(clicks)} answered, median {statistics.median(clicks):.2f} s, "
          f"max {max(clicks):.2f} s")
    print(f"health endpoint: {len(times)} polls, median {1000 * statistics.median(times):.0f} ms, "
          f"max {1000 * max(times):.0f} ms, all ok: {all(ok for _, ok in health)}")
    for name, t in refusals:
        print(f"A: {name} refused with a sentence after {t:.1f} s")
    assert all(ok for _, ok in health) and max(times) < 5.0
    assert len(clicks) == 2 * len(uploads) and max(clicks) < 30.0


@pytest.mark.parametrize("width", [1280, 1440, 1920])
def test_the_clickable_image_fits_its_column_and_its_far_corner_is_clickable(width, tmp_path):
    with app_server() as url, browser_page(width, 1100) as page:
        page.goto(url)
        wait_grid(page, "criss_cross at pixel (192, 192)")
        holder = page.locator(".st-key-image_click").first  # the component's element in the page
        column = holder.locator("xpath=ancestor::*[@data-testid='stColumn'][1]")
        box, col = holder.bounding_box(), column.bounding_box()
        img = holder.locator("img").first
        shown = img.bounding_box()  # in the page's coordinates
        assert col["x"] - 1 <= box["x"] and box["x"] + box["width"] <= col["x"] + col["width"] + 1
        assert shown["x"] + shown["width"] <= min(width, col["x"] + col["width"]) + 1  # nothing cut off
        page.screenshot(path=shot_path(tmp_path, f"fit_{width}.png"), full_page=True)
        y, x = click_and_follow(page, 0.99, 0.99, (384, 384))  # the far corner lands on the far pixel
        assert y >= 378 and x >= 378


def test_the_panels_follow_the_pointer_and_paint_what_python_computes(tmp_path):
    """Moving the pointer over a panel repaints every panel for the pixel under it with no rerun of the page
    (the pinned query stays), and what the browser painted equals the server's colouring of the same maps."""
    import numpy as np

    from vizattn.explore import panels, run_model
    from vizattn.export import image_source
    from vizattn.viz.panel_grid import heat_rgba
    from vizattn.zoo import load

    with app_server() as url, browser_page(1400, 1400) as page:
        page.goto(url)
        wait_grid(page, "criss_cross at pixel (192, 192)")
        wait_idle(page)
        grid = panel_grid(page)
        assert grid.get_attribute("data-live") == "yes"
        stage = grid.locator(".stage").nth(2)
        stage.scroll_into_view_if_needed()
        box = stage.bounding_box()
        for fx, fy in ((0.2, 0.3), (0.7, 0.6), (0.55, 0.8)):
            stage.hover(position={"x": box["width"] * fx, "y": box["height"] * fy})
            y, x = (int(v) for v in grid.get_attribute("data-showing").split(","))
            assert abs(y - fy * 384) <= 2 and abs(x - fx * 384) <= 2
            painted = grid.evaluate(
                "root => Array.from(root.querySelectorAll('canvas.heat')).map(c => "
                "Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data))")
            assert marker(page) == "panels for (192, 192)"  # no rerun: the pinned query is unchanged
            fw = run_model(load("criss_cross"), image_source("scene:1000000007", 384).image)
            for p, rgba in zip(panels(fw, y, x), painted):
                want = heat_rgba(p.grid_map, 0.9, "inferno", "per-map").astype(int)
                got = np.asarray(rgba).reshape(want.shape)
                # opacity everywhere; colour where it is opaque enough to survive the canvas's premultiplied
                # storage. float16 rows may cross a colormap bin edge: one of 256 steps, a few levels of colour
                assert np.abs(got[..., 3] - want[..., 3]).max() <= 1
                solid = want[..., 3] > 128
                diff = np.abs(got[solid][:, :3] - want[solid][:, :3])
                assert diff.max() <= 8
        page.screenshot(path=shot_path(tmp_path, "hover.png"), full_page=True)
        page.mouse.move(5, 5)  # leaving the panels shows the pinned query again
        grid_marked(page, "[data-showing='192,192']").wait_for(state="attached", timeout=10_000)


def test_the_panel_grid_height_follows_its_content(tmp_path):
    """ANN's ten panels, then GC's one: the grid's element shrinks to what it shows (it used to keep its tallest
    height), panels keep one size, and titles say module · view once."""
    with app_server() as url, browser_page(1400, 1400) as page:
        page.goto(url)
        wait_grid(page, "criss_cross at pixel (192, 192)")
        wait_idle(page)
        holder = page.locator(".st-key-attn_grid").first  # the component's element in the page

        def fits():
            content = panel_grid(page).evaluate("r => r.getBoundingClientRect().height")
            return holder.bounding_box()["height"], content

        def pick(name):
            page.locator("[data-testid='stSelectbox']").filter(has_text="Bundled model").locator("input").click()
            page.get_by_role("option", name=name, exact=True).click()
            wait_grid(page, f"{name} at pixel (192, 192)")
            wait_idle(page)
            page.wait_for_timeout(300)  # the page lays the element out again after the grid has drawn

        pick("ann")
        tall, content = fits()
        assert abs(tall - content) <= 12
        pick("gc")
        short, content = fits()
        assert short < tall / 2 and abs(short - content) <= 12
        names = panel_grid(page).locator("figcaption .name").all_inner_texts()
        assert names == ["head.context · mask"]
        page.screenshot(path=shot_path(tmp_path, "gc.png"), full_page=True)


HTML_PAYLOADS = [  # class names a hostile checkpoint or config may carry: each must show as text, never run
    "<iframe srcdoc=\"<script>parent.document.title='pwned'</script>\"></iframe>",
    "<script>document.title='pwned'</script>",
    "<img src=x onerror=\"document.title='pwned'\">",
    "<b>bold</b>",
    "<input autofocus onfocus=\"document.title='pwned'\">",
    "<style>body{display:none}</style>",
    "<details open ontoggle=\"document.title='pwned'\">",
    "<form action='about:blank'><button>go</button></form>",
    "<meta http-equiv='refresh' content='0;url=about:blank'>",
    "<svg onload=\"document.title='pwned'\"></svg>",
    "[link](javascript:document.title='pwned')",
    "<a href=\"javascript:document.title='pwned'\">a</a>",
]
INJECTED = ("iframe[srcdoc], [onerror], [onload], [onfocus], [ontoggle], form[action='about:blank'], "
            "meta[http-equiv], a[href^='javascript']")


def test_class_names_from_files_are_text_never_markup(tmp_path):
    """Twelve HTML/JS class names, from a transformers folder's id2label and an mmseg checkpoint's dataset_meta,
    opened through the path field: the legend and query line show them as text; the title is unchanged, no
    element is injected and the page does not navigate."""
    from tests.foreign.mmseg_models import build, checkpoint_bytes
    from tests.foreign.test_observe import save_segformer

    folder = tmp_path / "segformer-evil"
    save_segformer(folder, labels=HTML_PAYLOADS)
    ref, cfg = build("cc", narrow=True, num_classes=len(HTML_PAYLOADS))
    ckpt = tmp_path / "ccnet-evil.pth"
    ckpt.write_bytes(checkpoint_bytes(ref, cfg, "1.x", HTML_PAYLOADS, [(i * 20, 40, 200 - i * 10) for i in range(12)]))
    with app_server() as url, browser_page(1280, 1600) as page:
        page.goto(url)
        wait_idle(page)
        address = page.url
        page.get_by_text("a checkpoint path on this machine").click()
        wait_idle(page)
        for path, grid_title in ((folder, "segformer-evil at pixel (192, 192)"), (ckpt, "ccnet-evil-pth at pixel (192, 192)")):
            box = page.get_by_test_id("stTextInputField").first
            box.fill(str(path))
            box.press("Enter")
            wait_grid(page, grid_title, timeout_ms=240_000)
            wait_idle(page)
            body = page.inner_text("body")
            for shown in ("<b>bold</b>", "<script>document.title='pwned'</script>", "[link](javascript:"):
                assert shown in body, shown  # shown as text
            assert page.title() == "vizattn" and page.url == address  # set_page_config's title, never a payload's
            assert page.locator(INJECTED).count() == 0
            assert page.locator("[data-testid='stMarkdown'] b, [data-testid='stMarkdown'] style").count() == 0
        page.screenshot(path=shot_path(tmp_path, "html-class-names.png"), full_page=True)


@pytest.mark.parametrize("width, height", [(1280, 800), (1920, 1080)])
def test_point_here_see_there_on_one_screen(width, height, tmp_path):
    """The clickable image and the first attention panel are wholly on the first screen, side by side; moving the
    pointer over the image repaints the panels for the pixel under it (no rerun), and a click there pins it."""
    with app_server() as url, browser_page(width, height) as page:
        page.goto(url)
        wait_grid(page, "criss_cross at pixel (192, 192)")
        wait_idle(page)
        img = page.locator(".st-key-image_click img").first
        stage = panel_grid(page).locator(".stage").first
        boxes = {"image": img.bounding_box(), "first panel": stage.bounding_box()}  # in the page's coordinates
        for name, b in boxes.items():
            assert 0 <= b["x"] and b["x"] + b["width"] <= width, (name, b)
            assert 0 <= b["y"] and b["y"] + b["height"] <= height, (name, b)
        assert boxes["image"]["x"] + boxes["image"]["width"] <= boxes["first panel"]["x"]  # beside, not under
        assert page.evaluate("() => document.scrollingElement.scrollTop") == 0
        print(f"\n{width}×{height}: image {boxes['image']}, first panel {boxes['first panel']}")
        page.screenshot(path=shot_path(tmp_path, f"one_screen_{width}.png"))

        page.wait_for_function(f"() => !!({SHOWN_GRID})", timeout=10_000)  # the grid the image drives is registered
        box = boxes["image"]
        for fx, fy in ((0.2, 0.3), (0.7, 0.6)):
            img.hover(position={"x": box["width"] * fx, "y": box["height"] * fy})
            page.wait_for_function(  # the relay hands the move to the grid's first panel: ±1 of its pixels
                f"([fy, fx]) => {{ const grid = {SHOWN_GRID};"
                " const [y, x] = ((grid && grid.root.dataset.showing) || '').split(',').map(Number);"
                " return Math.abs(y - fy * 384) <= 3 && Math.abs(x - fx * 384) <= 3; }", arg=[fy, fx], timeout=10_000)
            assert marker(page) == "panels for (192, 192)"  # hover only: the pinned query is unchanged
        before = marker(page)
        img.click(position={"x": box["width"] * 0.7, "y": box["height"] * 0.6})  # pinned in the browser, then the page
        after = wait_change(page, "panel-state", before)
        y, x = (int(v) for v in after[len("panels for ("):-1].split(","))
        assert abs(y - 0.6 * 384) <= 2 and abs(x - 0.7 * 384) <= 2
        wait_idle(page)
        page.mouse.move(2, height - 2)  # leaving the image: the panels show the pinned query
        try:
            grid_marked(page, f"[data-showing='{y},{x}']").wait_for(state="attached", timeout=10_000)
        except Exception:  # say what the grid showed instead
            raise AssertionError(f"pinned ({y}, {x}); the grid shows "
                                 f"{page.evaluate(f'() => ({SHOWN_GRID}).root.dataset.showing')}") from None


def test_exports_show_what_the_page_shows_and_follow_a_new_click(tmp_path):
    """One display state, every output: for a few colormap × normalisation × backdrop (× clip) settings chosen in
    the sidebar, the downloaded PNG's panel pixels equal the on-screen canvas over the same backdrop (within 2
    levels, at flat spots of the photo) and its JSON names those settings; after a new click, the files downloaded
    name the new pixel. The full cross product is checked without a browser in tests/viz/test_scales.py."""
    import json
    import shutil

    import numpy as np

    from benchmarks.browser import open_tab
    from tests.viz.figure_pixels import figure_pixel, flat_points, png_pixels, screen_colour
    from vizattn.explore import run_model
    from vizattn.export import image_source, query_export
    from vizattn.viz.figures import figure_bytes
    from vizattn.viz.overlay import RELATIVE, RELATIVE_CMAP, backdrop
    from vizattn.viz.panel_grid import colorbar_css
    from vizattn.zoo import load

    src = image_source("scene:1000000007", 384)
    fw = run_model(load("criss_cross"), src.image)
    sidebar = lambda: page.locator("[data-testid='stSidebar']")  # noqa: E731

    def choose(cmap, norm, under, clip_steps):
        sidebar().locator("[data-testid='stRadio']").filter(has_text="Normalisation").get_by_text(norm, exact=True).click()
        wait_idle(page)
        sidebar().locator("[data-testid='stRadio']").filter(has_text="Under the heatmap") \
            .get_by_text(under, exact=True).click()
        wait_idle(page)
        for _ in range(clip_steps):  # the contrast slider moves down by 0.5 per key
            sidebar().locator("[data-testid='stSlider']").filter(has_text="Contrast").get_by_role("slider").press("ArrowLeft")
            wait_idle(page)
        sidebar().locator("[data-testid='stSelectbox']").filter(has_text="Colormap").locator("input").click()
        page.get_by_role("option", name=cmap, exact=True).click()
        wait_idle(page)

    def download(fmt):
        button = page.get_by_role("button", name=fmt, exact=True).first
        button.wait_for(timeout=60_000)
        with page.expect_download(timeout=60_000) as dl:
            button.click()
        path = tmp_path / dl.value.suggested_filename
        dl.value.save_as(path)
        return path

    worst, checked = 0, 0
    with app_server() as url, browser_page(1280, 800) as page:
        page.goto(url)
        wait_grid(page, "criss_cross at pixel (192, 192)")
        wait_idle(page)
        pixel = click_and_follow(page, 0.3, 0.35, (384, 384))
        clip = 100.0
        for cmap, norm, under, steps in (("viridis", "log", "dimmed photo", 0), ("turbo", "shared", "photo", 3),
                                         ("inferno", RELATIVE, "heat only", 0)):
            open_tab(page, "Attention")
            choose(cmap, norm, under, steps)
            clip -= 0.5 * steps
            grid = panel_grid(page)
            want_bar = colorbar_css(RELATIVE_CMAP if norm == RELATIVE else cmap)
            grid.locator("figure .grad").first.wait_for(timeout=60_000)
            page.wait_for_function(  # the grid has drawn with the new settings
                f"([bar]) => {{ const grid = {SHOWN_GRID};"
                " const g = grid && grid.root.querySelector('figure .grad');"
                " return g && g.style.background.replace(/ /g, '') === bar.replace(/ /g, ''); }",
                arg=[want_bar], timeout=60_000)
            painted = grid.evaluate(
                "root => Array.from(root.querySelectorAll('canvas.heat')).map(c => "
                "[c.height, c.width, Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)])")
            if norm == RELATIVE:
                assert grid.locator(".bar .ul").first.inner_text() == "uniform"
                page.set_viewport_size({"width": 1280, "height": 800})
                grid.locator(".bar").first.scroll_into_view_if_needed()
                page.screenshot(path=shot_path(tmp_path, "relative_1280.png"))
                page.set_viewport_size({"width": 1920, "height": 1080})
                page.wait_for_timeout(500)
                grid.locator(".bar").first.scroll_into_view_if_needed()
                page.screenshot(path=shot_path(tmp_path, "relative_1920.png"))
                page.set_viewport_size({"width": 1280, "height": 800})
            open_tab(page, "Export")
            if page.get_by_role("button", name="PNG", exact=True).count() == 0:
                page.get_by_role("button", name="Prepare exports: current panels").click()
                wait_idle(page)
            png, meta = download("PNG"), json.loads(download("JSON").read_text())
            shutil.copy(png, shot_path(tmp_path, f"export_{norm.replace(' ', '_')}.png"))  # to look at
            assert png.name == f"criss_cross_scene1000000007_y{pixel[0]}x{pixel[1]}_all.png"
            assert (meta["colormap"], meta["normalisation"], meta["backdrop"], meta["opacity"], meta["clip_percentile"],
                    meta["pixel_yx"]) == (cmap, norm, under, 0.9, clip, list(pixel))
            opts = {"cmap": cmap, "norm": norm, "alpha": 0.9, "clip": clip, "under": under}
            made = query_export("criss_cross", fw, src, pixel, None, None, opts)  # the same figure's layout, here
            fig = made.figure()
            figure_bytes(fig, "png")
            got = png_pixels(png.read_bytes())
            base = backdrop(src.image, under)
            keep_out = [p.cell_box for p in made.panels] + [(pixel[0] - 8, pixel[0] + 9, pixel[1] - 8, pixel[1] + 9)]
            for i, (h, w, data) in enumerate(painted):
                rgba = np.asarray(data).reshape(h, w, 4)
                for y, x in flat_points(base, rgba, keep_out, n=25, margin=2, seed=i):
                    diff = np.abs(figure_pixel(fig, got, i, y, x) - screen_colour(rgba, base, y, x)).max()
                    worst, checked = max(worst, diff), checked + 1
                    assert diff <= 2, f"{cmap} {norm} {under}: panel {i} at ({y}, {x}) differs by {diff}"
        page.screenshot(path=shot_path(tmp_path, "export_1280.png"), full_page=True)
        # a new click while the Export tab is open: the files name (and show) the new pixel
        click_image(page, 0.8, 0.7)
        page.wait_for_function(
            "([p]) => !document.body.innerText.includes(p)", arg=[f"pixel ({pixel[0]}, {pixel[1]})"], timeout=60_000)
        wait_idle(page)
        png, meta = download("PNG"), json.loads(download("JSON").read_text())
        y, x = meta["pixel_yx"]
        assert (y, x) != tuple(pixel) and abs(y - 0.7 * 384) <= 3 and abs(x - 0.8 * 384) <= 3
        assert png.name == f"criss_cross_scene1000000007_y{y}x{x}_all.png"
        assert all(p["pixel_yx"] == [y, x] for p in meta["panels"])
        assert f"at pixel ({y}, {x})" in meta["figure_title"][0]
    print(f"\n{checked} pixels compared between the exported PNG and the screen, worst difference {worst} levels")
    assert checked >= 100


@pytest.mark.parametrize("width, height", [(1280, 800), (1920, 1080)])
def test_a_twelve_layer_vit_is_shown_one_layer_at_a_time(width, height, tmp_path):
    """A 12-layer transformers ViT (a factory: 3 heads, random weights) opened by path: the Attention tab offers a
    layer selector; choosing layer 7 shows that layer's mean and heads under short titles that each fit one line
    (never broken mid-word), and the rollout over all layers is one map with its choices stated."""
    short = {f"layer {i} · {v}" for i in range(12) for v in ("mean", "head 0", "head 1", "head 2")}
    with app_server() as url, browser_page(width, height) as page:
        page.goto(url)
        wait_idle(page)
        page.get_by_text("a checkpoint path on this machine").click()
        wait_idle(page)
        box = page.get_by_test_id("stTextInputField").first
        box.fill("tests.support.factories:tiny_vit")
        box.press("Enter")
        wait_grid(page, "tiny_vit at pixel (192, 192)", timeout_ms=240_000)
        wait_idle(page)
        names = panel_grid(page).locator("figcaption .name")
        assert names.all_inner_texts() == ["layer 0 · mean", "layer 0 · head 0", "layer 0 · head 1",
                                           "layer 0 · head 2"]

        selector = page.get_by_test_id("stSelectbox").filter(has_text="Layer")
        selector.click()
        page.get_by_role("option", name="layer 7", exact=True).click()
        wait_idle(page)
        names.first.filter(has_text="layer 7 · mean").wait_for(timeout=60_000)
        texts = names.all_inner_texts()
        assert texts == ["layer 7 · mean", "layer 7 · head 0", "layer 7 · head 1", "layer 7 · head 2"]
        assert set(texts) <= short
        # one line each: a title broken mid-word (or at all) would be taller than its line height
        lines = panel_grid(page).locator("figcaption .name").evaluate_all(
            "els => els.map(e => e.getBoundingClientRect().height / parseFloat(getComputedStyle(e).lineHeight))")
        assert all(0.5 < n < 1.5 for n in lines), lines
        assert "vit.layers.7.attention" in page.inner_text("body")  # the full name, once above the grid
        assert "verified (max |Δ|" in page.inner_text("body") and "· 12 layers" in page.inner_text("body")
        page.screenshot(path=shot_path(tmp_path, f"vit-layer7-{width}x{height}.png"))

        selector.click()
        page.get_by_role("option", name="rollout (all layers)", exact=True).click()
        page.locator("#rollout-state").wait_for(state="attached", timeout=60_000)
        wait_idle(page)
        body = page.inner_text("body")
        assert "residual 0.5" in body and "went to the class token" in body
        page.screenshot(path=shot_path(tmp_path, f"vit-rollout-{width}x{height}.png"))
