"""The app's panel grid: what the browser receives reproduces the server-side overlay, with known answers."""
import base64
import io
import json

import numpy as np
from PIL import Image

from vizattn.explore import Panel, cell_box, to_image
from vizattn.viz.overlay import heat_overlay
from vizattn.viz.panel_grid import FRONTEND, grid_args, heat_rgba, photo_uri


def decode_image(uri: str) -> np.ndarray:
    head, data = uri.split(",", 1)
    assert head.startswith("data:image/") and head.endswith(";base64")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))))


def panel(grid_map: np.ndarray, shape=(40, 60), cell=(1, 2), pixel=(12, 25)) -> Panel:
    return Panel("head.context", "nonlocal", "attention", grid_map, to_image(grid_map, shape), cell,
                 cell_box(*cell, shape, grid_map.shape), pixel, False, True)


def test_browser_blend_of_the_rgba_heat_equals_the_server_overlay():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    grid = rng.random((5, 6))
    grid /= grid.sum()
    for norm in ("per-map", "log"):
        rgba = heat_rgba(grid, 0.7, "viridis", norm).astype(np.float64)
        up = to_image(np.arange(30).reshape(5, 6), (40, 60))  # which cell each pixel shows (nearest, as the browser)
        heat = rgba.reshape(30, 4)[up]
        a = heat[..., 3:] / 255
        browser = (1 - a) * image + a * heat[..., :3]  # CSS source-over of the RGBA layer on the photo
        server = heat_overlay(image, to_image(grid, (40, 60)), 0.7, "viridis", norm)
        assert np.abs(browser - server).max() <= 1.0, norm


def test_zero_weight_is_transparent_and_the_peak_has_the_chosen_opacity():
    grid = np.zeros((3, 4))
    grid[1, 2] = 1.0
    rgba = heat_rgba(grid, 0.5)
    assert rgba.shape == (3, 4, 4) and rgba.dtype == np.uint8
    assert rgba[..., 3].max() == 128 and (rgba[..., 3] == 0).sum() == 11


def test_grid_args_carry_exact_weights_cells_and_the_shared_scale():
    image = np.full((40, 60, 3), 100, np.uint8)
    a = np.full((5, 6), 1 / 30)
    a[0, 0] = 0.5
    b = a / 2
    panels = [panel(a), panel(b)]
    args = json.loads(json.dumps(grid_args(image, panels, ["first", "second"], norm="shared", alpha=1.0,
                                           columns=4, title="2 models at pixel (12, 25)")))
    assert args["shape"] == [40, 60] and args["pixel"] == [12, 25] and args["columns"] == 4
    assert args["title"] == "2 models at pixel (12, 25)"
    assert [p["title"] for p in args["panels"]] == ["first", "second"]
    for p, m in zip(args["panels"], (a, b)):
        weights = np.frombuffer(base64.b64decode(p["weights"]), "<f4").reshape(p["grid"])
        assert np.array_equal(weights, m.astype(np.float32))
        assert p["cell"] == [1, 2] and p["box"] == list(cell_box(1, 2, (40, 60), (5, 6)))
        assert decode_image(p["heat"]).shape == (5, 6, 4)
    # one scale for both: the second panel's peak is half the first's, so its opacity is √½ of it
    peaks = [decode_image(p["heat"])[0, 0, 3] for p in args["panels"]]
    assert peaks[0] == 255 and peaks[1] == round(255 * np.sqrt(0.5))
    assert decode_image(args["image"]).shape == (40, 60, 3)


def test_a_large_photo_is_shrunk_for_the_grid_keeping_its_aspect():
    image = np.zeros((1000, 500, 3), np.uint8)
    assert decode_image(photo_uri(image)).shape == (640, 320, 3)
    assert decode_image(photo_uri(image[:300, :200])).shape == (300, 200, 3)  # small photos travel as they are


def test_the_frontend_ships_with_the_package():
    names = {p.name for p in FRONTEND.iterdir()}
    assert {"hover.js", "grid.js", "streamlit.js", "widget.js", "standalone.js", "style.css"} <= names
    assert "export default function" in (FRONTEND / "streamlit.js").read_text()  # a Streamlit v2 component's module
