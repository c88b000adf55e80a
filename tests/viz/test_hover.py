"""Hover-follow's one source of truth: the same records through `AttentionRecord.query_map` (Python) and through
the browser's formulas (`panel_grid_frontend/hover.js`, run in chromium) give the same maps, for every record
kind vizattn captures, and the browser colours them as `vizattn.viz.overlay` does."""
import base64
import json

import numpy as np
import pytest
import torch

from tests.modules.helpers import run
from benchmarks.browser import CHROMIUM, CHROMIUM_ARGS
from vizattn.explore import panels
from vizattn.foreign.mmcv_blocks import AnchorRowsRecord, CrossRecord, ISARowsRecord
from vizattn.viz.figures import shared_tops
from vizattn.viz.hover import BUDGET, Pack, factors, lookup_table, spec_for
from vizattn.viz.overlay import (NORMALISATIONS, RELATIVE_CMAP, is_shared, nearly_uniform, scale_range,
                                 uniform_level, uniform_position)
from vizattn.viz.panel_grid import FRONTEND, heat_rgba, live_factors

TOLERANCE = 1e-3  # the issue's bound; float16 rows stay under 5e-4


def softmax_rows(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(3 * torch.randn(*shape, generator=g), -1)


def ours():
    """Every module of ours on a batch of 2 at a grid none of the group sizes divide (ISA pads)."""
    x = torch.randn(2, 16, 9, 11, generator=torch.Generator().manual_seed(1))
    cases = [("nonlocal", {}), ("danet", {}), ("gc", {}), ("criss_cross", {}), ("criss_cross", {"recurrence": 3}),
             ("isa", {"group": (4, 4)}), ("apnb", {}), ("afnb", {}), ("lesa", {"heads": 2}),
             ("lesa", {"heads": 2, "position": (9, 11)}), ("psanet", {"mask_size": (5, 7)}),
             ("psa", {"mode": "parallel"}), ("psa", {"mode": "sequential"}), ("psa", {"mode": "parallel", "variant": "paper"})]
    return [(f"{name} {kw}", run(name, x, **kw)[2]) for name, kw in cases]


def foreign():
    """The foreign readings: transformers' SegFormer (heads, keys on a reduced grid) and ViT (class token set
    aside), nn.MultiheadAttention and a hand-written softmax, and mmcv's cross, anchor and ISA rows."""
    import vizattn
    from tests.foreign.test_observe import Net, segformer, vision_transformer

    out = []
    for label, model, x, kw in (("segformer", segformer(), torch.randn(2, 3, 64, 96), {}),
                                ("vit", vision_transformer("vit"), torch.randn(1, 3, 64, 64), {}),
                                ("mha+block", Net().eval(), torch.randn(2, 3, 14, 22), {"modules": ["block"]})):
        with torch.no_grad(), vizattn.capture(model, **kw) as cap:
            model(pixel_values=x) if label in ("segformer", "vit") else model(x)
        out += [(f"{label} {name}", rec) for name, rec in list(cap.records.items())[:2]]
    h, w = 6, 7
    out.append(("mmcv cross", CrossRecord("mmcv:CrissCrossAttention", (h, w), 2, {"rows": softmax_rows(2, h, w, h + w)})))
    out.append(("mmseg anchors", AnchorRowsRecord("mmseg:APNB", (h, w), 2, {"rows": softmax_rows(2, h * w, 110)},
                                                  {"sizes": (1, 3, 6, 8), "key_grid": (h, w)})))
    dh, dw, oh, ow = 2, 3, 4, 3  # grid 6×7 padded to 8×9
    out.append(("mmseg isa", ISARowsRecord("isa", (h, w), 2, {
        "long_rows": softmax_rows(2 * dh * dw, oh * ow, oh * ow, seed=1),
        "short_rows": softmax_rows(2 * oh * ow, dh * dw, dh * dw, seed=2)},
        {"group": (dh, dw), "lattice": (oh, ow), "pad": (1, 1, 1, 1)})))
    return out


@pytest.fixture(scope="module")
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            pg = browser.new_page()
            pg.set_content("<html><body></body></html>")
            pg.add_script_tag(content=(FRONTEND / "hover.js").read_text() + "\nwindow.VizattnHover = VizattnHover;")
            yield pg
        finally:
            browser.close()


BROWSER_ROWS = """([blob, table, specs, cells]) => {
  const bytes = Uint8Array.from(atob(blob), c => c.charCodeAt(0));
  const T = VizattnHover.tensors(bytes, table);
  return specs.map((s, i) => cells[i].map(([y, x]) => Array.from(VizattnHover.row(s, T, y, x))));
}"""


def cells_of(grid, rng, n=4):
    h, w = grid
    picks = {(0, 0), (h - 1, w - 1), (h // 2, w // 3)}
    while len(picks) < n + 3 and len(picks) < h * w:
        picks.add((int(rng.integers(h)), int(rng.integers(w))))
    return sorted(picks)


def test_browser_rows_equal_python_rows_for_every_kind(page):
    rng = np.random.default_rng(0)
    records = ours() + foreign()
    items, cells, labels = [], [], []
    for label, rec in records:
        for view in rec.views():
            items.append((rec, view))
            cells.append(cells_of(rec.grid, rng))
            labels.append(f"{label} · {view}")
    specs, table, blob = factors(items)
    assert {s["f"] for s in specs} == {"rows", "cross", "isa", "psanet", "const"}  # every formula is exercised
    got = page.evaluate(BROWSER_ROWS, [base64.b64encode(blob).decode(), table, json.loads(json.dumps(specs)), cells])
    worst = 0.0
    for (rec, view), label, cs, rows in zip(items, labels, cells, got):
        for (y, x), row in zip(cs, rows):
            expected = rec.query_map(y, x, view)
            browser = np.asarray(row).reshape(expected.shape)
            err = float(np.abs(browser - expected).max())
            assert err <= TOLERANCE, f"{label} at ({y}, {x}): {err:.2e}"
            worst = max(worst, err)
    assert len(items) == 57 and worst > 0  # 57 views of 20 records; float16 rows are not bit-exact, and this test would see it
    print(f"\n{len(items)} views, worst difference {worst:.1e}")


def test_the_browser_colours_as_the_server(page):
    """Range, colour and opacity of the browser's paint equal `heat_rgba` and `scale_range` for every
    normalisation (relative to uniform too: distributions against 1/N in the diverging colormap, gates on 0…1),
    clipped or not, with shared tops per kind (gates apart from distributions); so do the uniform mark's place
    on the colorbar and the "nearly uniform" verdict."""
    rng = np.random.default_rng(3)
    dist = rng.random((6, 9)) ** 4
    dist /= dist.sum()
    gate = 0.3 + 0.7 * rng.random((6, 9))  # sigmoid gates, near 1: they must not set the distributions' scale
    small = dist / 3
    near = (1 + 0.03 * np.cos(np.arange(54.0))).reshape(6, 9) / 54  # within 3% of 1/N everywhere
    lut, relative_lut = lookup_table("viridis"), lookup_table(RELATIVE_CMAP)
    for norm in NORMALISATIONS:
        for clip in (100.0, 97.5):
            class P:  # what shared_tops reads
                def __init__(self, m, d):
                    self.grid_map, self.distribution = m, d
                    self.uniform = 1 / m.size if d else None
            ps = [P(dist, True), P(gate, False), P(small, True), P(near, True)]
            tops = shared_tops(ps, clip) if is_shared(norm) else [None] * 4
            got = page.evaluate("""([maps, kinds, norm, clip, lut, relativeLut]) => {
                const ms = maps.map(m => Float32Array.from(m));
                const shared = {};
                ms.forEach((m, i) => {
                  const r = VizattnHover.range(m, "per-map", null, clip);
                  shared[kinds[i]] = Math.max(shared[kinds[i]] ?? -Infinity, r[1]);
                });
                return ms.map((m, i) => {
                  const shares = norm === "shared" || norm === "log shared";
                  const u = kinds[i] === "d" ? 1 / m.length : null;
                  const r = VizattnHover.range(m, norm, shares ? shared[kinds[i]] : null, clip, undefined, u);
                  const table = VizattnHover.isRelative(norm, u) ? relativeLut : lut;
                  return [r, Array.from(VizattnHover.paint(m, r[0], r[1], norm, 0.8, table, u)),
                          VizattnHover.uniformAt(norm, r, u), VizattnHover.nearlyUniform(m, u)];
                });
            }""", [[p.grid_map.ravel().tolist() for p in ps], ["d", "g", "d", "d"], norm, clip, lut, relative_lut])
            for p, top, (rng_, rgba, at, nearly) in zip(ps, tops, got):
                u = uniform_level(p.grid_map, p.distribution)
                expected = scale_range(p.grid_map, norm, top, None, clip, u)
                np.testing.assert_allclose(rng_, expected, rtol=1e-5, err_msg=f"{norm} {clip}")
                want = heat_rgba(p.grid_map, 0.8, "viridis", norm, top, clip, u).astype(int)
                diff = np.abs(np.asarray(rgba).reshape(want.shape) - want)
                assert diff.max() <= 1 and (diff > 0).mean() < 0.05, f"{norm} {clip}: {diff.max()}"
                want_at = uniform_position(p.grid_map, norm, top, None, clip, u)
                assert (at is None) == (want_at is None) and (at is None or abs(at - want_at) < 1e-5), f"{norm} {clip}"
                assert nearly == nearly_uniform(p.grid_map, u) == (p.grid_map is near)
            if is_shared(norm):  # the gate's top is its own, the two distributions share the larger one
                assert tops[0] == tops[2] != tops[1]


def test_a_class_token_s_patch_map_is_marked_against_one_over_all_its_keys(page):
    """A ViT row spreads over its patches and its class token: the patch map (what the panel shows) does not sum
    to 1, yet uniform attention gives each patch 1/T (T keys, the class token included). Python (`Panel.uniform`,
    the grid's args) and the browser's `draw` mark that level, and call a map within 5% of it nearly uniform."""
    import vizattn
    from tests.foreign.test_observe import vision_transformer
    from vizattn.explore import Forward
    from vizattn.viz.panel_grid import grid_args

    model = vision_transformer("vit")  # random weights: rows within a few percent of uniform
    image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)
    with torch.no_grad(), vizattn.capture(model) as cap:
        model(pixel_values=torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255)
    name, rec = next(iter(cap.records.items()))
    fw = Forward(image, np.zeros((64, 64), np.uint8), {name: rec})
    ps = [p for p in panels(fw, 20, 30) if p.module == name][:2]
    n = ps[0].grid_map.size
    assert rec.config["key_extra"] == 1 and all(p.tokens == n + 1 and p.uniform == 1 / (n + 1) for p in ps)
    assert all(not p.distribution and abs(p.grid_map.sum() + p.outside_share - 1) < 1e-5 for p in ps)  # a part
    assert all(nearly_uniform(p.grid_map, p.uniform) for p in ps)
    args = grid_args(image, ps)
    assert [(d["kind"], d["keys"]) for d in args["panels"]] == [("distribution", n + 1)] * len(ps)
    got = page.evaluate("""([blob, table, specs, kinds, keys, lut]) => {
        const bytes = Uint8Array.from(atob(blob), c => c.charCodeAt(0));
        const T = VizattnHover.tensors(bytes, table);
        return VizattnHover.draw(specs, T, kinds, [64, 64], 20, 30, {norm: "per-map", clip: 100, alpha: 0.8,
                                 lut: lut, relativeLut: lut, keys: keys}).map(m => [m.uniform, m.nearly]);
    }""", [base64.b64encode(args["blob"]).decode(), args["table"], json.loads(json.dumps(args["specs"])),
           [d["kind"] for d in args["panels"]], [d["keys"] for d in args["panels"]], lookup_table("viridis")])
    assert all(abs(u - 1 / (n + 1)) < 1e-12 and nearly for u, nearly in got)


def test_views_of_one_record_share_its_tensors_and_float16_only_holds_probabilities():
    rec = dict(ours())["criss_cross {'recurrence': 3}"]
    pack = Pack()
    specs = [spec_for(rec, v, pack) for v in rec.views()]
    assert len(pack.table) == 3 and all(t["dtype"] == "f2" for t in pack.table)  # 4 views, 3 loops, sent once
    assert specs[-1]["apply"] == [3, 2, 1] and specs[0]["apply"] == [1]
    nl = dict(ours())["nonlocal {}"]
    pack = Pack()
    spec_for(nl, "attention", pack)
    assert [t["dtype"] for t in pack.table] == ["f4", "f4"]  # q and k: a softmax would amplify float16's error


def test_a_grid_over_the_budget_or_with_an_unknown_kind_keeps_the_server_path():
    from vizattn.explore import Forward

    rec = run("nonlocal", torch.randn(1, 16, 9, 11))[2]
    fw = Forward(np.zeros((72, 88, 3), np.uint8), np.zeros((72, 88), np.uint8), {"nl": rec})
    ps = panels(fw, 10, 20)
    assert live_factors(ps) is not None
    assert live_factors(ps, budget=100) is None
    ps[0].record = object()  # a kind with no browser formula
    assert live_factors(ps) is None
    assert BUDGET >= 32 * 2**20
