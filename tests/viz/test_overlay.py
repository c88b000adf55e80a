"""Overlays, grid↔pixel mapping and exports, with known answers."""
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from vizattn import VizattnError
from vizattn.explore import cell_box, cell_of, check_pixel, panels, run_model, to_image
from vizattn.export import ImageSource, compare_files, image_source, query_files
from vizattn.models.segmenter import ModelConfig, build_model
from vizattn.viz.overlay import NORMALISATIONS, heat_overlay, scale


def test_cells_and_boxes_cover_the_image_exactly():
    shape, grid = (45, 61), (6, 8)
    seen = np.zeros(shape, int)
    for gy in range(6):
        for gx in range(8):
            y0, y1, x0, x1 = cell_box(gy, gx, shape, grid)
            seen[y0:y1, x0:x1] += 1
            assert cell_of(y0, x0, shape, grid) == (gy, gx) and cell_of(y1 - 1, x1 - 1, shape, grid) == (gy, gx)
    assert (seen == 1).all()


def test_to_image_spreads_each_cell_over_its_pixels():
    m = np.arange(6.0).reshape(2, 3)
    up = to_image(m, (4, 6))
    assert up.shape == (4, 6) and (up[:2, :2] == 0).all() and (up[2:, 4:] == 5).all()
    from vizattn.explore import cell_indices

    rng = np.random.default_rng(0)  # every pixel takes the cell cell_of names, whatever the sizes (a grid larger
    for grid, shape in (((9, 13), (67, 91)), ((48, 48), (384, 384)), ((8, 8), (5, 3)), ((7, 5), (7, 5))):  # than
        g = rng.random((*grid, 3))  # the image too), trailing axes carried along
        np.testing.assert_array_equal(to_image(g, shape), g[np.ix_(*cell_indices(shape, grid))])


def test_scale_modes():
    m = np.array([[0.0, 0.5, 1.0]])
    np.testing.assert_allclose(scale(m), [[0, 0.5, 1]])
    np.testing.assert_allclose(scale(m, "shared", vmax=2.0), [[0, 0.25, 0.5]])
    np.testing.assert_allclose(scale(np.array([[1e-4, 1e-2, 1.0]]), "log"), [[0, 0.5, 1]])


def test_overlay_marks_the_pixel_and_outlines_the_cell():
    img = np.zeros((16, 16, 3), np.uint8)
    out = heat_overlay(img, np.zeros((16, 16)), alpha=0.0, pixel=(8, 8), box=(0, 8, 0, 8))
    assert (out[8, 8] == 255).all() and (out[0, 3] == (0, 255, 255)).all()


def test_click_outside_the_image_is_one_clear_error():
    with pytest.raises(VizattnError, match="outside the 10×20 image"):
        check_pixel(10, 3, (10, 20))


@pytest.fixture(scope="module")
def forwards():
    torch.manual_seed(0)
    src = image_source("scene:3", 64)
    return src, {h: run_model(build_model(ModelConfig(h)).eval(), src.image) for h in ("isa", "gc", "fcn")}


def test_panels_follow_the_records(forwards):
    src, fws = forwards
    ps = panels(fws["isa"], 40, 10)
    assert [p.view for p in ps] == ["effective", "long", "short"]  # the main view first
    assert all(p.cell == (5, 1) and p.image_map.shape == (64, 64) for p in ps)
    assert panels(fws["fcn"], 1, 1) == []
    gc = panels(fws["gc"], 0, 0)[0]
    assert gc.query_independent and "query-independent" in gc.note


def test_query_exports_every_format_with_names_that_say_what(forwards):
    src, fws = forwards
    files = query_files("isa", fws["isa"], src, (40, 10), "effective")
    stem = "isa_scene3_y40x10_effective"
    assert set(files) == {f"{stem}.{ext}" for ext in ("png", "svg", "pdf", "html", "npz", "json")}
    assert Image.open(io.BytesIO(files[f"{stem}.png"])).format == "PNG"
    assert files[f"{stem}.svg"].lstrip().startswith(b"<?xml") and files[f"{stem}.pdf"].startswith(b"%PDF")
    assert b"VizattnGrid.mount" in files[f"{stem}.html"] and b'id="vizattn-blob"' in files[f"{stem}.html"]  # the live grid
    meta = json.loads(files[f"{stem}.json"])
    assert meta["panels"][0]["view"] == "effective" and meta["panels"][0]["pixel_yx"] == [40, 10]
    npz = np.load(io.BytesIO(files[f"{stem}.npz"]))
    assert npz["00_isa_head-context_effective__grid"].shape == (8, 8)  # keys carry the model's name
    np.testing.assert_allclose(npz["00_isa_head-context_effective__grid"],
                               fws["isa"].records["head.context"].query_map(5, 1, "effective"))
    # what a reader needs to use the files alone: classes, the prediction, how the figure was drawn, by which version
    assert meta["classes"] == list(fws["isa"].classes) and meta["predicted_class"] in meta["classes"]
    assert meta["colormap"] == "inferno" and meta["normalisation"] == "per-map" and meta["vizattn_version"]
    assert 0 < meta["confidence_at_pixel"] <= 1


def test_compare_grid_titles_models_views_and_predictions(forwards):
    src, fws = forwards
    files = compare_files({"isa": fws["isa"], "gc": fws["gc"]}, src, (5, 6), None)
    meta = json.loads(next(v for k, v in files.items() if k.endswith(".json")))
    assert meta["titles"] == ["isa · effective", "gc · mask"]  # model · view, once
    assert all(t.startswith(f"{m} · predicts ") for t, m in zip(meta["figure_titles"], meta["titles"]))
    assert set(meta["predicted_class"]) == {"isa", "gc"}
    npz = np.load(io.BytesIO(next(v for k, v in files.items() if k.endswith(".npz"))))
    assert {k.split("_")[1] for k in npz.files if k != "meta_json"} == {"isa", "gc"}  # comparison keys keep models apart
    with pytest.raises(VizattnError, match="has an attention module"):
        compare_files({"fcn": fws["fcn"]}, src, (5, 6), None)


def test_image_source_spec_errors():
    with pytest.raises(VizattnError, match="scene:SEED"):
        image_source("scene:abc")
    assert isinstance(image_source("scene:1", 32), ImageSource)


@pytest.mark.parametrize("norm", NORMALISATIONS)
@pytest.mark.parametrize("clip", [100.0, 97.0])
def test_colouring_per_grid_cell_gives_the_pixels_of_colouring_per_pixel(norm, clip):
    """The page colours its clickable image per grid cell and spreads the cells (`grid=`): every pixel equals the
    per-pixel overlay, on a grid that does not divide the image, with zeros (log's smallest positive), for a
    distribution and a gate."""
    from vizattn.viz.overlay import backdrop, uniform_level

    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (67, 91, 3), np.uint8)
    for distribution in (True, False):
        grid = rng.random((9, 13)) ** 4
        grid[2, 3] = 0.0
        if distribution:
            grid /= grid.sum()
        u = uniform_level(grid, distribution)
        slow = heat_overlay(image, to_image(grid, image.shape[:2]), 0.7, "viridis", norm, pixel=(30, 40),
                            box=(21, 29, 28, 35), clip=clip, under="dimmed photo", uniform=u)
        fast = heat_overlay(image, to_image(grid, image.shape[:2]), 0.7, "viridis", norm, pixel=(30, 40),
                            box=(21, 29, 28, 35), clip=clip, under="dimmed photo", uniform=u,
                            grid=grid,
                            base=backdrop(image, "dimmed photo"))
        np.testing.assert_array_equal(fast, slow)
