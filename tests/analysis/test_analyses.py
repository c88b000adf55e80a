"""Each paper analysis against a case with a known answer."""
import numpy as np
import pytest
import torch
from torch import nn

from tests.modules.helpers import run
from vizattn.analysis.attribution import input_attributions, rank_correlation, to_grid
from vizattn.analysis.coverage import coverage, loop_coverage, recurrence
from vizattn.analysis.distances import jensen_shannon, map_distances, total_variation
from vizattn.analysis.maps import module_io
from vizattn.analysis.psa import weight_summary
from vizattn.analysis.query_independence import mean_cosine_distance, query_independence
from vizattn.analysis.unary import self_weight, unary_share, without_unary
from vizattn.analysis.where import by_class, grid_labels, where_attention_goes
from vizattn.capture import capture
from vizattn.models.segmenter import ModelConfig, build_model


def test_uniform_attention_has_cosine_distance_zero():
    maps = np.full((10, 36), 1 / 36)
    assert mean_cosine_distance(maps) == pytest.approx(0.0, abs=1e-12)
    assert mean_cosine_distance(np.eye(4)) == pytest.approx(1.0)  # orthogonal maps: distance 1


def test_query_independence_of_a_constant_input_is_zero_everywhere():
    m, _, rec = run("nonlocal", torch.ones(1, 16, 6, 7))
    with module_io(m) as io_:
        with torch.no_grad():
            m(torch.ones(1, 16, 6, 7))
    inp, out = io_["nonlocal"] if "nonlocal" in io_ else io_[""]
    stats = query_independence(rec, inp, out, queries=20)
    assert stats == pytest.approx({"input": 0.0, "attention": 0.0, "output": 0.0}, abs=1e-9)
    assert not m._forward_hooks  # module_io removes its hooks


def test_identity_attention_has_unary_share_one():
    q = np.array([[0, 0], [1, 2], [2, 1]])
    maps = np.zeros((3, 3, 3))
    maps[np.arange(3), q[:, 0], q[:, 1]] = 1.0
    assert self_weight(maps, q).tolist() == [1.0, 1.0, 1.0]
    _, _, rec = run("nonlocal", torch.ones(1, 16, 4, 5))  # uniform: each query keeps 1/N for itself
    assert unary_share(rec, queries=20)["unary"] == pytest.approx(1 / 20)


def test_one_criss_cross_loop_covers_h_plus_w_minus_one():
    _, _, rec = run("criss_cross", torch.randn(1, 16, 7, 13))
    cov = loop_coverage(rec, queries=30)
    assert cov["loop1"] == pytest.approx((7 + 13 - 1) / (7 * 13))
    assert cov["effective"] == pytest.approx(1.0)
    assert coverage(np.ones((2, 3, 3))).tolist() == [1.0, 1.0]


def test_recurrence_switch_is_undone():
    model = build_model(ModelConfig("criss_cross")).eval()
    with recurrence(model, 3):
        with torch.no_grad(), capture(model) as cap:
            model(torch.randn(1, 3, 32, 32))
    assert cap.records["head.context"].views() == ("loop1", "loop2", "loop3", "effective")
    assert model.head.context.recurrence == 2


def test_without_unary_zeroes_the_unary_term_only_inside():
    model = build_model(ModelConfig("lesa")).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        base = model(x)
        with without_unary(model) as n:
            ablated = model(x)
        again = model(x)
    assert n == 1 and not torch.allclose(base, ablated) and torch.equal(base, again)


def test_distances_between_distributions():
    a, b = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    assert total_variation(a, b) == 1.0 and jensen_shannon(a, b) == pytest.approx(1.0)
    assert total_variation(a, a) == 0.0 and jensen_shannon(a, a) == 0.0
    d = map_distances(np.ones((2, 2, 2)), np.ones((2, 2, 2)))
    assert d["tv"] == 0 and d["tv_uniform_vs_b"] == 0


def test_psa_saturation_share():
    s = weight_summary(np.array([0.01, 0.5, 0.95, 0.6]))
    assert s["saturated_share"] == 0.5 and sum(s["histogram"]) == 4


def test_where_attention_goes_on_a_two_class_grid():
    _, _, rec = run("nonlocal", torch.ones(1, 16, 4, 4))  # uniform attention
    labels = np.zeros((32, 32), np.uint8)
    labels[:, 16:] = 1  # half the cells are class 1
    instances = np.zeros((32, 32), np.int32)
    instances[:8, :8] = 5  # one instance covering one grid cell
    rows = where_attention_goes(rec, labels, instances, queries=16)
    assert all(r["own_class"] == pytest.approx(0.5) for r in rows)
    assert [r["own_instance"] for r in rows if "own_instance" in r] == [pytest.approx(1 / 16)]
    assert set(by_class(rows, ("a", "b"))) == {"a", "b"}
    assert grid_labels(labels, (4, 4))[:, 2:].min() == 1


class LinearSegmenter(nn.Module):
    """logits = W·x per pixel: attributions have closed forms."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([[1.0, -2.0, 0.5], [0.3, 0.2, 0.1]]).view(2, 3, 1, 1))

    def forward(self, x):
        return self.conv(x)


def test_attribution_of_a_linear_model_is_weights_times_input():
    model = LinearSegmenter()
    x = torch.randn(1, 3, 5, 6)
    maps = input_attributions(model, x, (2, 3), target=0, steps=16, internal_batch_size=3)
    expected = np.zeros((5, 6))
    expected[2, 3] = float((model.conv.weight[0, :, 0, 0] * x[0, :, 2, 3]).sum().detach())
    np.testing.assert_allclose(maps["integrated_gradients"], expected, atol=1e-5)
    sal = np.zeros((5, 6))
    sal[2, 3] = 1.0 + 2.0 + 0.5
    np.testing.assert_allclose(maps["saliency"], sal, atol=1e-6)


def test_rank_correlation_and_pooling():
    a = np.arange(16.0).reshape(4, 4)
    assert rank_correlation(a, a * 3 + 1) == pytest.approx(1.0)
    assert rank_correlation(a, -a) == pytest.approx(-1.0)
    assert np.isnan(rank_correlation(a, np.ones((4, 4))))
    np.testing.assert_allclose(to_grid(np.ones((8, 8)), (2, 2)), np.ones((2, 2)))
