"""Across layers: attention rollout (Abnar & Zuidema 2020) and gradient-weighted relevance (Chefer et al. 2021),
each checked against its equations written out here in float64 from transformers' own attentions, with random
weights from configs; SegFormer's reduced keys and stage changes by their known answers."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import vizattn
from tests.foreign.test_observe import segformer, vision_transformer
from vizattn.analysis.rollout import area_matrix, drop_lowest
from vizattn.errors import VizattnError
from vizattn.explore import Forward

PIXELS = [(0, 0), (63, 63), (20, 45), (40, 7)]


def reference_rollout(attentions, query: int, extra: int, residual=0.5, fusion="mean", discard=0.0):
    """Abnar & Zuidema by the book: per layer fuse heads, drop, residual, renormalise rows, multiply the full
    matrices, take the query's row, drop the class/register columns."""
    result = None
    for att in attentions:
        a = att[0].double()
        a = a.mean(0) if fusion == "mean" else (a.amax(0) if fusion == "max" else a.amin(0))
        k = int(discard * a.shape[-1])
        if k:
            a = a.scatter(-1, a.topk(k, -1, largest=False).indices, 0.0)
        a = residual * torch.eye(a.shape[-1], dtype=torch.float64) + (1 - residual) * a
        a = a / a.sum(-1, keepdim=True)
        result = a if result is None else a @ result
    row = result[query]
    return row[extra:], float(row[:extra].sum())


def captured(model, x):
    with torch.no_grad():
        expected = model(pixel_values=x, output_attentions=True)
        with vizattn.capture(model) as cap:
            model(pixel_values=x)
    return cap, expected.attentions


@pytest.mark.parametrize("kind,grid,extra", [("vit", (4, 4), 1), ("dinov2", (8, 8), 5)])
@pytest.mark.parametrize("fusion,residual,discard", [("mean", 0.5, 0.0), ("max", 0.3, 0.2), ("min", 0.7, 0.5)])
def test_rollout_equals_the_product_of_transformers_own_attentions(kind, grid, extra, fusion, residual, discard):
    cap, attentions = captured(vision_transformer(kind), torch.randn(1, 3, 64, 64))
    for y, x in PIXELS:
        details = vizattn.rollout_details(cap, y, x, fusion, residual, discard, shape=(64, 64))
        gy, gx = y * grid[0] // 64, x * grid[1] // 64
        ref, share = reference_rollout(attentions, extra + gy * grid[1] + gx, extra, residual, fusion, discard)
        ref = (ref / ref.sum()).view(grid).numpy()
        got = vizattn.rollout(cap, y, x, fusion, residual, discard, shape=(64, 64))
        assert got.shape == grid and details.cell == (gy, gx)
        np.testing.assert_allclose(got / got.sum(), ref, atol=1e-5, rtol=0)
        assert details.extra_share == pytest.approx(share, abs=1e-9) and share > 0
        assert got.sum() + details.extra_share == pytest.approx(1.0, abs=1e-9)  # rows stay distributions


def test_a_forward_places_the_pixel_itself_and_a_capture_needs_the_image_size():
    model = vision_transformer("vit")
    image = np.zeros((64, 64, 3), np.uint8)
    cap, _ = captured(model, torch.randn(1, 3, 64, 64))
    forward = Forward(image, np.zeros((64, 64), np.uint8), dict(cap.records))
    np.testing.assert_array_equal(vizattn.rollout(forward, 40, 7), vizattn.rollout(cap, 40, 7, shape=(64, 64)))
    with pytest.raises(VizattnError, match="shape=\\(H, W\\)"):
        vizattn.rollout(cap, 1, 1)
    with pytest.raises(VizattnError, match="fusion 'median'"):
        vizattn.rollout(forward, 1, 1, fusion="median")
    with pytest.raises(VizattnError, match="outside the 64×64 image"):
        vizattn.rollout(forward, 64, 1)
    with pytest.raises(VizattnError, match="No self-attention layer"):
        vizattn.rollout(forward, 1, 1, modules=["decode_head.*"])


def test_discard_drops_the_lowest_weights_of_each_row():
    rows = torch.tensor([[0.1, 0.4, 0.2, 0.3], [0.5, 0.0, 0.3, 0.2]], dtype=torch.float64)
    np.testing.assert_array_equal(drop_lowest(rows, 0.5).numpy(), [[0, 0.4, 0, 0.3], [0.5, 0, 0.3, 0]])
    assert torch.equal(drop_lowest(rows, 0.2), rows)  # ⌊0.2·4⌋ = 0: nothing dropped


def test_area_resampling_keeps_the_mass_and_splits_by_overlap():
    a = area_matrix(3, 8)  # a 3-cell axis onto 8 cells: overlaps of 8/3 fine cells each
    np.testing.assert_allclose(a.sum(1).numpy(), 1.0)
    np.testing.assert_allclose(a[0, :3].numpy(), [3 / 8, 3 / 8, 2 / 8])
    np.testing.assert_allclose(area_matrix(2, 4).numpy(), [[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]])


# SegFormer at 96×128: stage grids 24×32, 12×16, 6×8, 3×4, keys reduced by sr 8, 4, 2, 1 to 3×4 each


@pytest.fixture(scope="module", params=["eager", "sdpa"])
def segformer_capture(request):
    model = segformer(request.param)
    with torch.no_grad(), vizattn.capture(model) as cap:
        model(pixel_values=torch.randn(2, 3, 96, 128, generator=torch.Generator().manual_seed(3)))
    return cap


@pytest.mark.parametrize("fusion,residual,discard", [("mean", 0.5, 0.0), ("max", 0.0, 0.3), ("min", 0.9, 0.0)])
def test_segformer_rows_stay_distributions_on_the_stage_grids(segformer_capture, fusion, residual, discard):
    for y, x in [(0, 0), (95, 127), (50, 70)]:
        for batch in (0, 1):
            d = vizattn.rollout_details(segformer_capture, y, x, fusion, residual, discard, shape=(96, 128),
                                        batch=batch)
            assert d.map.shape == d.grid == (24, 32) and d.extra_share == 0
            assert d.map.sum() == pytest.approx(1.0, abs=1e-9) and d.map.min() >= 0
            assert d.cell == (y * 3 // 96, x * 4 // 128)  # the query is the deepest stage's cell


def test_segformer_identity_gives_a_one_hot_moved_by_area(segformer_capture):
    for name in segformer_capture.records:  # one layer: the query's own cell on that stage's grid
        grid = segformer_capture.records[name].grid
        m = vizattn.rollout(segformer_capture, 50, 70, residual=1.0, shape=(96, 128), modules=[name])
        one_hot = np.zeros(grid)
        one_hot[50 * grid[0] // 96, 70 * grid[1] // 128] = 1
        np.testing.assert_array_equal(m, one_hot)
    # all stages: the deepest cell (1, 2) of 3×4 is the 8×8 block it covers on the first stage's 24×32 grid
    m = vizattn.rollout(segformer_capture, 50, 70, residual=1.0, shape=(96, 128))
    block = np.zeros((24, 32))
    block[8:16, 16:24] = 1 / 64
    np.testing.assert_allclose(m, block, atol=1e-15)


def test_segformer_one_layer_gives_that_layers_map_spread_over_the_cells_each_key_pools(segformer_capture):
    for name, sr in zip(segformer_capture.records, (8, 4, 2, 1)):
        rec = segformer_capture.records[name]
        for y, x in [(0, 0), (95, 127), (50, 70)]:
            gy, gx = y * rec.grid[0] // 96, x * rec.grid[1] // 128
            m = vizattn.rollout(segformer_capture, y, x, residual=0.0, shape=(96, 128), modules=[name])
            expected = np.kron(rec.query_map(gy, gx), np.ones((sr, sr))) / sr**2  # mean over heads
            np.testing.assert_allclose(m, expected, atol=1e-6)


def test_identity_attention_in_a_hand_written_stack_gives_the_identity():
    class Identity(nn.Module):
        def forward(self, x):
            b, c, h, w = x.shape
            att = torch.softmax(1e4 * torch.eye(h * w).expand(b, h * w, h * w), dim=-1)
            return (att @ x.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(b, c, h, w)

    model = nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), Identity(), Identity())
    with torch.no_grad(), vizattn.capture(model, modules=["1", "2"]) as cap:
        model(torch.randn(1, 3, 10, 18))
    m = vizattn.rollout(cap, 7, 11, residual=0.0, shape=(10, 18))
    one_hot = np.zeros((5, 9))
    one_hot[3, 5] = 1
    np.testing.assert_array_equal(m, one_hot)


# relevance: a 2-layer ViT over a 3×5 patch grid (H ≠ W) with a 1×1-conv pixel head


class PixelViT(nn.Module):
    def __init__(self, impl):
        super().__init__()
        from transformers import ViTConfig, ViTModel

        torch.manual_seed(0)
        cfg = ViTConfig(image_size=(48, 80), patch_size=16, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64)
        self.vit = ViTModel._from_config(cfg, attn_implementation=impl, add_pooling_layer=False)
        self.head = nn.Conv2d(32, 3, 1)

    def forward(self, x, output_attentions=False):
        b, _, h, w = x.shape
        out = self.vit(pixel_values=x, output_attentions=output_attentions)
        tokens = out.last_hidden_state[:, 1:].transpose(1, 2).reshape(b, -1, h // 16, w // 16)
        logits = F.interpolate(self.head(tokens), size=(h, w), mode="bilinear", align_corners=False)
        return (logits, out.attentions) if output_attentions else logits


def chefer_reference(model, x, y, px):
    """Chefer et al. step by step: the predicted class's logit at the pixel, ∇A of every layer, R = I,
    R ← R + E_h[(∇A ⊙ A)⁺] · R, the query's row without the class column."""
    logits, attentions = model(x, output_attentions=True)
    for a in attentions:
        a.retain_grad()
    logits[0, logits[0, :, y, px].argmax(), y, px].backward()
    r = torch.eye(attentions[0].shape[-1], dtype=torch.float64)
    for a in attentions:
        cam = (a.grad.double() * a.double())[0].clamp(min=0).mean(0)
        r = r + cam @ r
    row = r[1 + (y * 3 // 48) * 5 + px * 5 // 80].detach()
    return row[1:].view(3, 5).numpy(), float(row[0])


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_relevance_equals_chefers_equations_in_float64(impl):
    reference = PixelViT("eager").double().eval()
    model = PixelViT(impl).double().eval()
    x = torch.randn(1, 3, 48, 80, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for y, px in [(0, 0), (47, 79), (20, 33), (30, 5)]:
        expected, cls_share = chefer_reference(reference, x, y, px)
        details = vizattn.relevance_details(model, x, y, px)
        np.testing.assert_allclose(details.map, expected, atol=1e-8, rtol=0)
        assert details.extra_share == pytest.approx(cls_share, abs=1e-8)
        assert vizattn.relevance(model, x, y, px).shape == (3, 5) and details.skipped == []
        reference.zero_grad()
    assert all(p.grad is None for p in model.parameters())  # autograd.grad: the model's .grad is never written


def test_relevance_on_segformer_through_segment_is_the_same_for_eager_and_sdpa():
    from vizattn.foreign.hf_transformers import HFSegmenter

    image = np.random.default_rng(0).integers(0, 255, (70, 90, 3), dtype=np.uint8)
    maps = []
    for impl in ("eager", "sdpa"):
        model = HFSegmenter(segformer(impl), (64, 96), "tiny")
        for p in model.parameters():
            p.requires_grad_(False)  # a frozen model: the graph is made for the call, the flags restored
        d = vizattn.relevance_details(model, image, 40, 60)
        assert d.map.shape == d.grid == (16, 24) and len(d.layers) == 4 and d.skipped == []
        assert np.isfinite(d.map).all() and d.map.min() >= 0 and d.map.sum() >= 1 - 1e-9  # R ⊇ I: mass ≥ 1
        assert not any(p.requires_grad for p in model.parameters())
        maps.append(d.map)
    np.testing.assert_allclose(maps[0], maps[1], atol=1e-5, rtol=1e-4)


def test_relevance_says_what_it_cannot_follow():
    with pytest.raises(VizattnError, match="classes per pixel"):
        vizattn.relevance(vision_transformer("vit"), torch.randn(1, 3, 64, 64), 3, 3)
    with pytest.raises(VizattnError, match="has none vizattn can read"):
        vizattn.relevance(nn.Conv2d(3, 2, 1), torch.randn(1, 3, 8, 8), 3, 3)
