"""Properties with known answers, at awkward sizes."""
import numpy as np
import pytest
import torch

from tests.modules.helpers import ALL, build, run, wake
from vizattn import capture, create_attention, list_attention
from vizattn.modules import dense_attention
from torch.utils._python_dispatch import TorchDispatchMode

SIZES = [(45, 45), (1, 1), (7, 13)]


def every_map(rec, view, batch=0):
    h, w = rec.grid
    return np.stack([rec.query_map(y, x, view, batch) for y in range(h) for x in range(w)])


def test_registry_lists_every_module():
    assert list_attention() == ["afnb", "apnb", "criss_cross", "danet", "gc", "isa", "lesa", "nonlocal", "psa", "psanet"]


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("size", SIZES)
def test_shapes_and_maps_at_awkward_sizes(name, size):
    x = torch.randn(2, 16, *size)
    m, y, rec = run(name, x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    # PSANet attends on the feature map shrunk by 2, as mmseg's PSAHead does
    assert rec.grid == (m._shrunk(*size)[:2] if name == "psanet" else size) and rec.batch == 2
    for view in rec.views():
        q = rec.query_map(rec.grid[0] - 1, 0, view, batch=1)
        assert q.shape == rec.grid and np.isfinite(q).all() and (q >= 0).all()


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("size", SIZES)
def test_distribution_maps_sum_to_one(name, size):
    _, _, rec = run(name, torch.randn(2, 16, *size))
    h, w = rec.grid
    for view in rec.distribution_views:
        for y, x in {(0, 0), (h - 1, w - 1), (h // 2, w // 3)}:
            total = rec.query_map(y, x, view, batch=1).sum()
            assert total == pytest.approx(1.0, abs=1e-5), (view, y, x)


@pytest.mark.parametrize("name,size,expected", [
    ("nonlocal", (6, 10), lambda h, w, y, x: np.full((h, w), 1 / (h * w))),
    ("danet", (6, 10), lambda h, w, y, x: np.full((h, w), 1 / (h * w))),
    ("lesa", (6, 10), lambda h, w, y, x: np.full((h, w), 1 / (h * w))),
    ("gc", (6, 10), lambda h, w, y, x: np.full((h, w), 1 / (h * w))),
    ("apnb", (24, 24), lambda h, w, y, x: np.full((h, w), 1 / (h * w))),  # sizes 1,3,6,8 all divide 24
    ("afnb", (24, 24), lambda h, w, y, x: np.full((h, w), 1 / (h * w))),
    ("isa", (16, 16), lambda h, w, y, x: np.full((h, w), 1 / (h * w))),  # no padding: long∘short is uniform
])
def test_constant_input_gives_uniform_attention(name, size, expected):
    _, _, rec = run(name, torch.ones(1, 16, *size))
    h, w = size
    for y, x in [(0, 0), (h - 1, w // 2)]:
        np.testing.assert_allclose(rec.query_map(y, x), expected(h, w, y, x), rtol=1e-5, atol=1e-7)


def test_constant_input_gives_uniform_cross():
    _, _, rec = run("criss_cross", torch.ones(1, 16, 5, 9))
    m = rec.query_map(2, 3, "loop1")
    cross = np.zeros((5, 9), bool)
    cross[2, :] = cross[:, 3] = True
    np.testing.assert_allclose(m[cross], 1 / (5 + 9 - 1), rtol=1e-5)
    assert (m[~cross] == 0).all()


@pytest.mark.parametrize("y,x", [(0, 0), (3, 7), (6, 12)])
def test_criss_cross_support(y, x):
    _, _, rec = run("criss_cross", torch.randn(1, 16, 7, 13))
    cross = np.zeros((7, 13), bool)
    cross[y, :] = cross[:, x] = True
    for loop in ("loop1", "loop2"):
        assert ((rec.query_map(y, x, loop) > 0) == cross).all()
    assert (rec.query_map(y, x, "effective") > 0).all()


def test_criss_cross_one_loop_reaches_only_row_and_column():
    _, _, rec = run("criss_cross", torch.randn(1, 16, 7, 13), recurrence=1)
    assert rec.views() == ("loop1", "effective")
    support = rec.query_map(2, 5, "effective") > 0
    assert support.sum() == 7 + 13 - 1 and support[2, :].all() and support[:, 5].all()


def test_isa_effective_reaches_every_position_while_each_step_is_sparse():
    _, _, rec = run("isa", torch.randn(1, 16, 45, 45))
    long, short = rec.query_map(20, 31, "long", padded=True), rec.query_map(20, 31, "short", padded=True)
    assert (long > 0).sum() == 6 * 6 and (short > 0).sum() == 8 * 8  # 48/8 lattice, one 8×8 block
    assert (rec.query_map(20, 31, "effective", padded=True) > 0).all()
    assert (rec.query_map(20, 31, "effective") > 0).all()


def test_isa_group_size_is_configurable():
    _, _, rec = run("isa", torch.randn(1, 16, 10, 9), group=(2, 3))
    assert (rec.query_map(4, 4, "short") > 0).sum() == 6 and (rec.query_map(4, 4, "long") > 0).sum() == 5 * 3


@pytest.mark.parametrize("name", ["gc", "psa"])
def test_query_independent_maps_are_identical_for_every_query(name):
    _, _, rec = run(name, torch.randn(2, 16, 7, 13))
    for view in rec.views():
        assert rec.query_independent(view)
        maps = every_map(rec, view, batch=1)
        assert np.ptp(maps, axis=0).max() == 0


@pytest.mark.parametrize("mode", ["parallel", "sequential"])
def test_psa_variants_record_channel_and_spatial_weights(mode):
    _, _, rec = run("psa", torch.randn(2, 16, 7, 13), mode=mode)
    assert rec.config["mode"] == mode
    assert rec.data["channel_weights"].shape == (2, 16) and rec.data["spatial_weights"].shape == (2, 7, 13)
    assert ((rec.data["channel_weights"] > 0) & (rec.data["channel_weights"] < 1)).all()


def test_gc_average_pooling_and_channel_mul():
    _, _, rec = run("gc", torch.randn(1, 16, 4, 5), pooling="avg", fusion=("channel_mul",))
    np.testing.assert_allclose(rec.query_map(0, 0), np.full((4, 5), 1 / 20), rtol=1e-6)


def test_lesa_gate_and_shares():
    _, _, rec = run("lesa", torch.randn(2, 16, 5, 6))
    w = rec.gate_at(1, 2, batch=1)
    assert w.shape == (16,) and ((w > 0) & (w < 1)).all()
    unary, binary = rec.shares()
    expected = (1 / (1 + rec.data["gate"])).mean().item()
    assert unary == pytest.approx(expected) and unary + binary == pytest.approx(1.0)
    assert 0.5 < unary < 1  # w in (0, 1) always leaves the unary term the larger share


def test_ann_anchor_weights_per_level():
    _, _, rec = run("apnb", torch.randn(1, 16, 9, 10))
    levels = rec.anchor_weights(4, 4)
    assert {s: tuple(t.shape) for s, t in levels.items()} == {1: (1, 1), 3: (3, 3), 6: (6, 6), 8: (8, 8)}
    assert sum(t.sum().item() for t in levels.values()) == pytest.approx(1.0, abs=1e-6)
    per_level = sum(rec.query_map(4, 4, f"level{s}") for s in (1, 3, 6, 8))
    np.testing.assert_allclose(per_level, rec.query_map(4, 4, "all"), atol=1e-7)


def test_afnb_fuses_a_low_level_feature_with_other_channels():
    m = wake(create_attention("afnb", 16, low_channels=8)).eval()
    with torch.no_grad(), capture(m) as cap:
        y = m(torch.randn(2, 16, 6, 7), torch.randn(2, 8, 6, 7))
    assert y.shape == (2, 16, 6, 7) and cap.records["afnb"].grid == (6, 7)


def test_danet_keeps_the_channel_affinity():
    _, _, rec = run("danet", torch.randn(2, 16, 5, 5))
    a = rec.data["channel_affinity"]
    assert a.shape == (2, 16, 16)
    torch.testing.assert_close(a.sum(-1), torch.ones(2, 16))


@pytest.mark.parametrize("name", ["nonlocal", "isa", "lesa", "apnb", "danet"])
def test_dense_and_fused_attention_agree(name):
    m = wake(build(name))
    x = torch.randn(2, 16, 9, 7)
    with torch.no_grad():
        fused = m(x)
        with dense_attention():
            dense = m(x)
    torch.testing.assert_close(fused, dense, atol=1e-5, rtol=1e-5)


# A shift added to every logit of a softmax row changes nothing: LESA's logit BN bias (kept because the official
# module has it, so its checkpoints map one to one) can get no gradient there either.
INERT = {"lesa": {"logit_norm.bias"}}


@pytest.mark.parametrize("name", ALL)
def test_gradients_reach_every_parameter(name):
    m = wake(create_attention(name, 16)).train()
    x = torch.randn(2, 16, 7, 13, requires_grad=True)
    y = m(x)
    (y * torch.randn_like(y)).sum().backward()  # a random projection: a plain sum has zero gradient through BN
    for pname, p in m.named_parameters():
        if pname in INERT.get(name, ()):
            assert p.grad is None or p.grad.abs().max() < 1e-6, pname
            continue
        assert p.grad is not None and p.grad.abs().sum() > 0, pname
    assert x.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ALL)
def test_records_stay_far_below_one_dense_affinity(name):
    h = w = 64  # one dense affinity would be N² = 16.8 M numbers
    _, _, rec = run(name, torch.randn(1, 16, h, w))
    stored = sum(t.numel() for t in rec.data.values())
    assert stored < (h * w) ** 2 / 4, f"{name} stores {stored} numbers"


class _LargestTensor(TorchDispatchMode):
    """Records the largest tensor any op produces: an N×N affinity cannot hide from it."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


@pytest.mark.parametrize("name", ["nonlocal", "lesa", "danet", "isa", "apnb"])
def test_fused_attention_never_builds_the_dense_affinity(name):
    m = build(name)
    h = w = 48
    x = torch.randn(1, 16, h, w)
    with torch.no_grad(), _LargestTensor() as fused:
        m(x)
    with torch.no_grad(), dense_attention(), _LargestTensor() as dense:
        m(x)
    n = h * w
    assert fused.largest < n * n / 8
    if name in ("nonlocal", "lesa", "danet"):
        assert dense.largest >= n * n  # the papers' path really is the dense one


def test_isa_reports_the_weight_that_went_to_padding():
    """On a padded grid part of each row lands on the (unmasked) zero padding: the record says how much, and
    no view claims to be a distribution over the image; without padding nothing is lost."""
    _, _, rec = run("isa", torch.randn(1, 16, 45, 45))
    assert rec.distribution_views == ()
    for view in rec.views():
        for y, x in [(0, 0), (44, 44), (20, 31)]:
            shown, share = rec.query_map(y, x, view).sum(), rec.outside_share(y, x, view)
            assert shown + share == pytest.approx(1.0, abs=1e-6)
    assert rec.outside_share(0, 0, "effective") > 0.01  # a corner pixel's block is mostly padding
    _, _, whole = run("isa", torch.randn(1, 16, 16, 16))
    assert whole.distribution_views == whole.views() and whole.outside_share(3, 3, "effective") == 0.0


def test_padding_share_reaches_the_panel_note():
    from vizattn.explore import Forward, panels

    _, _, rec = run("isa", torch.randn(1, 16, 45, 45))
    fw = Forward(np.zeros((90, 90, 3), np.uint8), np.zeros((90, 90), np.uint8), {"isa": rec})
    p = next(p for p in panels(fw, 0, 0) if p.view == "effective")
    assert p.outside_share > 0.01 and not p.distribution
    assert f"{p.outside_share:.1%} of this pixel's weight went to zero padding" in p.note
