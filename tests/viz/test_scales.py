"""Honest scales: the uniform level 1/N on every distribution's colorbar, "relative to uniform" colouring, nearly
uniform maps said so, gates kept on 0…1, and every exported file drawn with the page's display options."""
import io
import json

import numpy as np
import pytest

from tests.viz.figure_pixels import figure_pixel, flat_points, png_pixels, screen_colour
from vizattn.explore import Panel, cell_box, run_model, to_image
from vizattn.export import image_source, query_export, query_files
from vizattn.viz.figures import FIGURE_DEFAULTS, figure_bytes, matplotlib_grid, panel_scales
from vizattn.viz.overlay import (BACKDROPS, NORMALISATIONS, RELATIVE, RELATIVE_CMAP, backdrop, colormap, heat_layer,
                                 nearly_uniform, scale, scale_caption, scale_range, uniform_level, uniform_position)
from vizattn.viz.panel_grid import grid_args, heat_rgba

CMAPS = ("inferno", "viridis", "magma", "plasma", "turbo", "gray")  # the sidebar's (vizattn.app.sidebar.CMAPS)


def panel(grid_map, distribution=True, shape=(45, 61), cell=(1, 2), pixel=(12, 25), view="attention") -> Panel:
    return Panel("head.context", "nonlocal", view, grid_map, to_image(grid_map, shape), cell,
                 cell_box(*cell, shape, grid_map.shape), pixel, False, distribution)


def softmax_map(h=5, w=7, sharp=3.0, seed=0):
    z = sharp * np.random.default_rng(seed).standard_normal((h, w))
    e = np.exp(z - z.max())
    return e / e.sum()


def test_the_uniform_mark_sits_at_one_over_n_on_every_scale():
    m = np.zeros((4, 5))
    m[0, 0] = 0.6
    m[1:, :] = 0.4 / 15  # N = 20, 1/N = 0.05
    u = uniform_level(m, True)
    assert u == 1 / 20 and uniform_level(m, False) is None
    assert uniform_position(m, "per-map", uniform=u) == pytest.approx(0.05 / 0.6)  # linear 0 … max
    assert uniform_position(m, "shared", vmax=1.0, uniform=u) == pytest.approx(0.05)  # linear 0 … shared top
    lo = 0.4 / 15  # log: smallest positive weight … max
    assert uniform_position(m, "log", uniform=u) == pytest.approx(np.log(0.05 / lo) / np.log(0.6 / lo))
    assert uniform_position(m, RELATIVE, uniform=u) == 0.5  # the centre of the diverging scale, always
    assert uniform_position(m, "per-map", clip=50.0, uniform=u) > 1  # the clipped top is below 1/N: off the scale
    assert uniform_position(m, "per-map", uniform=None) is None  # a gate has no uniform level


def test_relative_to_uniform_colours_ratios_on_a_diverging_log_scale():
    n = 6 * 9
    flat = np.full((6, 9), 1 / n)
    v = scale(flat, RELATIVE, uniform=1 / n)
    assert (v == 0.5).all()  # exactly the centre
    heat, a = heat_layer(flat, 0.8, "viridis", RELATIVE, uniform=1 / n)
    assert (heat == colormap(np.array([0.5]), RELATIVE_CMAP)[0]).all() and (a == 0.8).all()  # the centre colour
    ratios = np.array([[2.0, 0.5, 16.0, 1 / 16, 64.0, 0.0]])
    v = scale(ratios / n, RELATIVE, uniform=1 / n)
    np.testing.assert_allclose(v, [[0.625, 0.375, 1.0, 0.0, 1.0, 0.0]])  # ×2 ↔ ×1/2 symmetric, clipped at ×16
    heat, a = heat_layer(ratios / n, 1.0, "viridis", RELATIVE, uniform=1 / n)
    assert (heat[0, 0] == colormap(np.array([0.625]), RELATIVE_CMAP)[0]).all()  # 2/N has the colour of ×2
    assert (a == 1.0).all()  # one opacity: the colours read as on the colorbar, white at ×1 included
    assert scale_range(flat, RELATIVE, uniform=1 / n) == (1 / n / 16, 16 / n)  # the colorbar's ends in weights
    # the page's colormap does not matter: relative to uniform is always the diverging one
    assert (heat_layer(ratios / n, 1.0, "gray", RELATIVE, uniform=1 / n)[0] == heat).all()


def test_gates_keep_their_absolute_scale_and_say_so():
    gate = np.linspace(0.2, 0.7, 12).reshape(3, 4)
    assert scale_range(gate, RELATIVE, uniform=None) == (0.0, 1.0)
    np.testing.assert_allclose(scale(gate, RELATIVE, uniform=None), gate)  # 0…1 as it is, not stretched to its max
    heat, _ = heat_layer(gate, 1.0, "viridis", RELATIVE, uniform=None)
    assert (heat == colormap(gate, "viridis")).all()  # in the page's colormap
    caption = scale_caption(gate, RELATIVE, None, 0.0, 1.0)
    assert "gate, absolute 0…1" in caption and "distributions only" in caption
    sc = panel_scales([panel(softmax_map()), panel(gate, distribution=False)], "viridis", RELATIVE)
    assert [s["cmap"] for s in sc] == [RELATIVE_CMAP, "viridis"] and sc[1]["range"] == (0.0, 1.0)
    assert sc[1]["uniform_at"] is None and sc[0]["uniform_at"] == 0.5


def test_a_nearly_uniform_map_says_so():
    n = 8 * 8
    wobble = np.ones((8, 8))
    wobble[0, 0], wobble[0, 1] = 1.04, 0.96
    assert nearly_uniform(wobble / n, 1 / n)
    wobble[0, 0], wobble[0, 1] = 1.06, 0.94
    assert not nearly_uniform(wobble / n, 1 / n)
    assert not nearly_uniform(wobble / n, None)  # a gate is never "uniform"
    said = "nearly uniform (within 5% of 1/N everywhere)"
    for norm in NORMALISATIONS:
        near = np.full((8, 8), 1 / n) * (1 + 0.04 * np.cos(np.arange(n)).reshape(8, 8))
        lo, hi = scale_range(near, norm, uniform=1 / n)
        assert said in scale_caption(near, norm, 1 / n, lo, hi)
        assert said not in scale_caption(softmax_map(8, 8), norm, 1 / n, lo, hi)
    # and in the exported figure, under the panel's colorbar
    fig = matplotlib_grid(np.zeros((45, 61, 3), np.uint8), [panel(np.full((5, 7), 1 / 35))], norm="per-map")
    assert said in fig.axes[1].get_xlabel()


def test_every_colorbar_of_a_distribution_marks_uniform_in_the_figure():
    ps = [panel(softmax_map()), panel(np.linspace(0, 1, 35).reshape(5, 7), distribution=False)]
    for norm in NORMALISATIONS:
        fig = matplotlib_grid(np.zeros((45, 61, 3), np.uint8), ps, norm=norm)
        bars = [ax for ax in fig.axes if not ax.images]
        texts = [[t.get_text() for t in ax.texts] for ax in bars]
        assert texts[0] == ["uniform"] and texts[1] == [], norm
        line = [ln.get_xdata()[0] for ln in bars[0].lines]
        assert line and line[0] == pytest.approx(1 / 35), norm  # at the weight 1/N on the bar's own axis


def test_the_exported_figure_shows_the_screen_for_every_colormap_normalisation_and_backdrop():
    """The full cross product, at the library level: each panel's pixels in the exported PNG equal what the browser
    composes from `heat_rgba` (its canvas, checked against hover.js in test_hover) over the backdrop."""
    rng = np.random.default_rng(1)
    shape = (45, 61)
    photo = np.zeros((*shape, 3), np.uint8)  # flat patches: a photo the figure's resampling cannot blur
    for y0 in range(0, 45, 9):
        for x0 in range(0, 61, 12):
            photo[y0:y0 + 9, x0:x0 + 12] = rng.integers(0, 256, 3)
    ps = [panel(softmax_map(5, 7, 2.0)), panel(0.2 + 0.6 * rng.random((5, 7)), distribution=False),
          panel(softmax_map(9, 8, 1.0, seed=3))]
    keep_out = [p.cell_box for p in ps] + [(12 - 7, 12 + 8, 25 - 7, 25 + 8)]
    worst, checked = 0, 0
    for cmap in CMAPS:
        for norm in NORMALISATIONS:
            for under in BACKDROPS:
                clip = 97.5 if norm == "shared" else 100.0
                fig = matplotlib_grid(photo, ps, cmap=cmap, norm=norm, alpha=0.9, clip=clip, under=under)
                png = png_pixels(figure_bytes(fig, "png"))
                base = backdrop(photo, under)
                for i, (p, sc) in enumerate(zip(ps, panel_scales(ps, cmap, norm, clip))):
                    rgba = heat_rgba(p.grid_map, 0.9, cmap, norm, sc["top"], clip, sc["uniform"])
                    for y, x in flat_points(base, rgba, keep_out, n=6, margin=1, seed=i):
                        diff = np.abs(figure_pixel(fig, png, i, y, x) - screen_colour(rgba, base, y, x)).max()
                        worst, checked = max(worst, diff), checked + 1
                        assert diff <= 2, f"{cmap} {norm} {under} panel {i} at ({y}, {x}): {diff}"
    print(f"\n{checked} pixels of {len(CMAPS) * len(NORMALISATIONS) * len(BACKDROPS)} figures, worst difference {worst}")
    assert checked > 1000


@pytest.fixture(scope="module")
def criss_cross():
    from vizattn.zoo import available, load

    if "criss_cross" not in available():
        pytest.skip("needs the bundled models")
    src = image_source("scene:1000000007", 96)
    return src, run_model(load("criss_cross"), src.image)


def test_exports_follow_the_page_and_name_what_they_show(criss_cross):
    src, fw = criss_cross
    opts = {"cmap": "viridis", "norm": RELATIVE, "alpha": 0.9, "clip": 99.0, "under": "heat only"}
    made = query_export("criss_cross", fw, src, (40, 10), None, None, opts)
    files = made.files()
    meta = json.loads(files[f"{made.stem}.json"])
    assert (meta["colormap"], meta["normalisation"], meta["opacity"], meta["clip_percentile"], meta["backdrop"]) == \
        ("viridis", RELATIVE, 0.9, 99.0, "heat only")
    assert meta["relative_to_uniform"]["colormap"] == RELATIVE_CMAP and meta["pixel_yx"] == [40, 10]
    n = fw.records["head.context"].grid[0] * fw.records["head.context"].grid[1]
    assert all(p["uniform_level"] == pytest.approx(1 / n) and p["colorbar_colormap"] == RELATIVE_CMAP
               for p in meta["panels"])
    npz = np.load(io.BytesIO(files[f"{made.stem}.npz"]))
    assert json.loads(npz["meta_json"].tobytes())["normalisation"] == RELATIVE
    # the figure names model, view and pixel, and what its colorbars mean, inside itself
    fig = made.figure()
    heading = fig.get_suptitle()
    assert heading.startswith("criss_cross predicts ") and "at pixel (40, 10)" in heading and "all views" in heading
    assert "weight ÷ uniform level 1/N" in heading
    assert b"criss_cross predicts" in files[f"{made.stem}.svg"] and b"at pixel (40, 10)" in files[f"{made.stem}.svg"]
    html = files[f"{made.stem}.html"].decode()  # the live grid: its heading says what the colorbars mean
    assert "at pixel (40, 10)" in html and "weight ÷ uniform level 1/N" in html and "VizattnGrid.mount" in html
    # without options (the CLI): the defaults, said in the metadata as before
    meta = json.loads(query_files("criss_cross", fw, src, (40, 10), None, formats=("json",))
                      ["criss_cross_scene1000000007_y40x10_all.json"])
    assert meta["colormap"] == FIGURE_DEFAULTS["cmap"] and meta["opacity"] == FIGURE_DEFAULTS["alpha"]


def test_the_server_path_sends_the_uniform_level_and_the_relative_colours():
    image = np.full((45, 61, 3), 90, np.uint8)
    near = np.full((5, 7), 1 / 35)
    ps = [panel(softmax_map()), panel(near), panel(np.linspace(0, 1, 35).reshape(5, 7), distribution=False)]
    args = json.loads(json.dumps(grid_args(image, ps, norm=RELATIVE, cmap="magma", live=False)))
    got = [(p["uniform"], p["at"], p["relative"], p["nearly"]) for p in args["panels"]]
    assert got == [(1 / 35, 0.5, True, False), (1 / 35, 0.5, True, True), (None, None, False, False)]
    assert args["panels"][2]["range"] == [0.0, 1.0] and "rgb(" in args["relative_colorbar"]
