"""The page's kept opening (vizattn.opening) is the live forward's first screen: the same prediction, the same
panels with the same maps at the centre pixel, the same browser factors and the same grid; it answers nothing else,
and it is used only with the weights it was written from. If the default model is retrained or what a record says
changes, these tests fail: run `vizattn opening` and commit the file."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vizattn.errors import VizattnError
from vizattn.explore import panels, run_model
from vizattn.opening import MODEL, SCENE, SIZE, read_opening
from vizattn.sources import image_source
from vizattn.viz.hover import Pack, unpack
from vizattn.viz.panel_grid import grid_args, live_factors
from vizattn.zoo import load

ROOT = Path(__file__).resolve().parents[1]
ADVICE = "the kept opening no longer matches the live forward: run `vizattn opening` and commit the file"


@pytest.fixture(scope="module")
def both():
    src = image_source(SCENE, SIZE)
    opening = read_opening()
    assert opening is not None, "no kept opening for the bundled weights: run `vizattn opening`"
    assert opening.image_key == src.key, ADVICE
    return src, opening, opening.forward(src.image), run_model(load(MODEL), src.image)


def test_the_kept_forward_is_the_live_one(both):
    _, opening, kept, live = both
    np.testing.assert_array_equal(kept.prediction, live.prediction, err_msg=ADVICE)
    np.testing.assert_allclose(kept.confidence, live.confidence, rtol=0, atol=1e-6, err_msg=ADVICE)
    assert kept.classes == live.classes and (kept.palette == live.palette).all()
    assert list(kept.records) == list(live.records)
    for name, rec in kept.records.items():
        other = live.records[name]
        assert (rec.kind, rec.grid, rec.views(), rec.default_view) == (other.kind, other.grid, other.views(),
                                                                     other.default_view)
        assert (rec.family, rec.statistics, rec.verification) == (other.family, other.statistics, other.verification)
        assert not rec.follows_layers


def test_the_kept_panels_and_grid_are_the_live_ones(both):
    src, opening, kept, live = both
    y, x = opening.pixel
    assert opening.pixel == (SIZE // 2, SIZE // 2)  # the page's default query: the centre
    a, b = panels(kept, y, x), panels(live, y, x)
    assert len(a) == len(b) > 0
    for p, q in zip(a, b):
        for attr in ("module", "kind", "view", "cell", "cell_box", "pixel", "query_independent", "distribution",
                     "note", "outside_share", "tokens", "grid_shape", "uniform", "main", "title"):
            assert getattr(p, attr) == getattr(q, attr), (attr, p.view)
        np.testing.assert_allclose(p.grid_map, q.grid_map, rtol=1e-5, atol=1e-9, err_msg=ADVICE)
        np.testing.assert_allclose(p.image_map, q.image_map, rtol=1e-5, atol=1e-9, err_msg=ADVICE)
    # the factors the browser computes every other pixel from: the same formulas, layout and values
    ka, sa, ta, blob_a = live_factors(a)
    kb, sb, tb, blob_b = live_factors(b)
    assert json.dumps(sa, sort_keys=True) == json.dumps(sb, sort_keys=True) and ta == tb and len(blob_a) == len(blob_b)
    for u, v, t in zip(unpack(ta, blob_a), unpack(tb, blob_b), ta):
        # float16 travels probabilities (a step of at most 4.9e-4): one step apart where float32 rounding differs
        np.testing.assert_allclose(u.astype(np.float64), v, rtol=1e-5, atol=4.9e-4 if t["dtype"] == "f2" else 1e-6)
    # and the grid the page sends, apart from the factors' bytes and their key
    ga, gb = (grid_args(src.image, ps, live=live_factors(ps)) for ps in (a, b))
    assert {k: v for k, v in ga.items() if k not in ("blob", "factors_key")} == \
        {k: v for k, v in gb.items() if k not in ("blob", "factors_key")}


def test_kept_factors_pack_as_they_were_written(both):
    """Factors kept in the dtype they travel in pack to the same bytes (numpy arrays in vizattn.viz.hover.Pack)."""
    _, opening, kept, _ = both
    rec = next(iter(kept.records.values()))
    spec = rec.hover_spec(rec.default_view)
    pack = Pack()
    from vizattn.viz.hover import packed

    packed(spec, pack)
    packed(spec, pack)  # the same arrays again: stored once
    assert len(pack.table) == len({id(f.tensor) for f in _factors(spec)})


def _factors(spec):
    from vizattn.records import Factor

    if isinstance(spec, Factor):
        return [spec]
    if isinstance(spec, dict):
        return [f for v in spec.values() for f in _factors(v)]
    if isinstance(spec, list):
        return [f for v in spec for f in _factors(v)]
    return []


def test_a_kept_record_answers_its_own_cell_only(both):
    _, opening, kept, _ = both
    rec = next(iter(kept.records.values()))
    with pytest.raises(VizattnError, match="kept opening holds query cell"):
        rec.query_map(0, 0)
    with pytest.raises(VizattnError, match="not a view"):
        rec.query_map(*rec.kept["cell"], "no-such-view")
    assert rec.query_map(*rec.kept["cell"]).flags.writeable is False  # shared by every session


def test_an_opening_is_not_used_with_other_weights(tmp_path):
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    from vizattn.opening import path_for

    assert read_opening(directory=tmp_path) is None  # none kept
    path_for(directory=tmp_path).write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    assert read_opening(directory=tmp_path) is None  # damaged
    src = path_for()
    with safe_open(str(src), "np") as f:
        meta = json.loads(f.metadata()["opening"])
    save_file(load_file(str(src)), str(path_for(directory=tmp_path)),
              metadata={"opening": json.dumps(dict(meta, sha256="0" * 64))})  # written from other weights
    assert read_opening(directory=tmp_path) is None


def test_the_page_opens_on_the_kept_forward_and_runs_the_live_one_once_the_screen_is_shown():
    """The first run of the page (the default model, scene and pixel) imports no PyTorch and runs no model; the run
    the grid causes when it holds the factors (its "have") runs the live forward behind the same screen; from then
    on the page draws the live forward, at the opening's pixel too, and a click elsewhere is answered by it."""
    code = r"""
import sys
from streamlit.testing.v1 import AppTest
from vizattn.app.cache import _live

at = AppTest.from_file(sys.argv[1], default_timeout=300).run()
assert not at.exception, at.exception
print("first", "torch" in sys.modules, sorted(_live()), at.markdown[0].value)
at.session_state["attn_grid"] = {"value": {"have": "the factors' key", "t": 1}}  # what the grid says once it decoded them
at.run()
assert not at.exception, at.exception
print("shown", "torch" in sys.modules, sorted(m for m, _ in _live()), at.markdown[0].value)
import vizattn.app.cache as cache
read = []
cache.kept_opening = lambda: read.append(1)  # the opening is no longer asked for: the live forward is ready
at.run()
print("again", len(read), at.markdown[0].value)
at.number_input[0].set_value(100).run()
assert not at.exception, at.exception
print("click", at.markdown[0].value)
"""
    out = subprocess.run([sys.executable, "-c", code, str(ROOT / "app.py")], capture_output=True, text=True,
                         timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in out.stdout.splitlines() if line.split(" ", 1)[0] in
                 ("first", "shown", "again", "click"))
    centre = "Query pixel **(192, 192)** · predicted"
    assert lines["first"].startswith(f"False [] {centre}")  # no PyTorch, no live forward
    assert lines["shown"].startswith(f"True ['criss_cross'] {centre}")  # the same screen, the live forward ready
    assert lines["again"].startswith(f"0 {centre}")
    assert lines["click"].startswith("Query pixel **(100, 192)**")


def test_the_page_colormaps_are_kept_as_matplotlib_gives_them():
    from matplotlib import colormaps

    from vizattn.app.sidebar import CMAPS
    from vizattn.viz.overlay import KEPT_COLORMAPS, RELATIVE_CMAP, colormap, matplotlib_table

    kept = json.loads(KEPT_COLORMAPS.read_text())
    assert set(CMAPS) | {RELATIVE_CMAP} <= set(kept)
    rng = np.random.default_rng(0)
    for name in kept:
        np.testing.assert_array_equal(np.asarray(kept[name], np.uint8), matplotlib_table(name), err_msg=name)
        for dtype in (np.float32, np.float64):
            v = rng.uniform(-0.2, 1.2, (40, 40)).astype(dtype)
            v.flat[:6] = [np.nan, 0, 1, 255 / 256, -1e-9, 1 + 1e-7]
            expected = (colormaps[name](v)[..., :3] * 255).astype(np.uint8)
            np.testing.assert_array_equal(colormap(v, name), expected, err_msg=f"{name} {dtype.__name__}")
    np.testing.assert_array_equal(colormap(np.linspace(0, 1, 7), "cividis"),  # not kept: matplotlib's own
                                  (colormaps["cividis"](np.linspace(0, 1, 7))[:, :3] * 255).astype(np.uint8))


def test_the_opening_is_asked_only_for_its_model_image_and_pixel_until_the_live_forward_is_ready(both):
    from vizattn.app.cache import _live, forward_for, opening_forward

    src, opening, _, _ = both
    _live.clear()
    forward_for.clear()  # as in a fresh server: no forward run yet (other tests of this process may have run one)
    kept = opening_forward(MODEL, src, opening.pixel)
    assert kept is not None and kept.records["head.context"].__class__.__name__ == "KeptRecord"
    assert opening_forward(MODEL, src, (0, 0)) is None and opening_forward("isa", src, opening.pixel) is None
    assert opening_forward(MODEL, image_source("scene:1000000021", SIZE), opening.pixel) is None
    forward_for(MODEL, src.key, load(MODEL), src.image)
    assert opening_forward(MODEL, src, opening.pixel) is None


def test_sessions_importing_pytorch_at_once_see_it_whole():
    """The first screen leaves PyTorch's import to whichever run needs it first; several sessions may then need it at
    once. Through `import_torch` they take turns, and each then finds PyTorch whole (unguarded, a second thread could
    see it half imported: "partially initialized module 'torch' has no attribute ...")."""
    code = r"""
import sys, threading
from vizattn.app.cache import import_torch
errors, barrier = [], threading.Barrier(4)

def session():
    barrier.wait()
    try:
        import_torch()
        import torch.nn.functional
        from vizattn.models.segmenter import HEADS
        assert torch.nn.functional.relu(torch.ones(1)).item() == 1.0 and HEADS
    except Exception as err:
        errors.append(repr(err))

threads = [threading.Thread(target=session) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print(errors)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0 and out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr[-2000:]
