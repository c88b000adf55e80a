"""PSA and LESA against the equations of their official code, which mmseg does not ship (the references are
in benchmarks/equations.py: written out step by step, reading our modules' parameters by name)."""
import pytest
import torch

from tests.modules.helpers import wake
from vizattn import capture, create_attention
from benchmarks.equations import conv1x1, lesa_reference, psa_reference
from benchmarks.fidelity import randomise


@pytest.mark.parametrize("mode", ["parallel", "sequential"])
@pytest.mark.parametrize("size", [(45, 45), (32, 64)])
def test_psa_official_matches_the_official_equations(mode, size):
    m = randomise(create_attention("psa", 32, mode=mode), seed=3).double().eval()
    assert m.variant == "official"
    x = torch.randn(2, 32, *size, dtype=torch.float64)
    with torch.no_grad(), capture(m) as cap:
        out = m(x)
        ref, sp, ch = psa_reference(m, x)
    rec = cap.records["psa"]
    torch.testing.assert_close(out, ref, atol=1e-12, rtol=0)
    torch.testing.assert_close(rec.data["spatial_weights"].flatten(1), sp, atol=1e-12, rtol=0)
    torch.testing.assert_close(rec.data["channel_weights"], ch, atol=1e-12, rtol=0)
    assert rec.config["variant"] == "official"


def test_psa_official_parallel_spatial_gate_is_nearly_constant():
    """Known answer of the official placement (DeLightCMU/PSA#5): sigmoid of a softmax over N positions lies in
    (σ(0), σ(1)) and, for a spread-out softmax, within O(1/N) of 0.5."""
    m = randomise(create_attention("psa", 32), seed=1).eval()
    with torch.no_grad(), capture(m) as cap:
        m(torch.randn(1, 32, 40, 40))
    rec = cap.records["psa"]
    sp, soft = rec.data["spatial_weights"], rec.data["spatial_softmax"]
    torch.testing.assert_close(soft.sum(), torch.tensor(1.0))
    torch.testing.assert_close(sp, torch.sigmoid(soft))
    assert (sp > 0.5).all() and (sp < torch.sigmoid(torch.tensor(1.0))).all()
    assert "spatial_softmax" in rec.views() and "spatial_softmax" in rec.distribution_views


def test_psa_paper_variant_keeps_the_papers_formula():
    """variant='paper': softmax over the pooled query's channels, then σ(q·v) per position."""
    m = wake(create_attention("psa", 16, variant="paper")).double().eval()
    x = torch.randn(1, 16, 5, 7, dtype=torch.float64)
    with torch.no_grad(), capture(m) as cap:
        m(x)
        q = torch.softmax(conv1x1(m.sp_q, x.flatten(2)).mean(2), dim=1)
        sp = torch.sigmoid(torch.einsum("bc,bcn->bn", q, conv1x1(m.sp_v, x.flatten(2))))
    rec = cap.records["psa"]
    torch.testing.assert_close(rec.data["spatial_weights"].flatten(1), sp)
    assert rec.config["variant"] == "paper" and rec.views() == ("spatial", "channel_pool")


@pytest.mark.parametrize("position", [False, True])
def test_lesa_matches_the_official_equations(position):
    size = (5, 7) if position else (13, 9)
    m = create_attention("lesa", 32, heads=4, position=size if position else None)
    m = randomise(m, seed=2).double().eval()
    x = torch.randn(2, 32, *size, dtype=torch.float64)
    with torch.no_grad(), capture(m) as cap:
        out = m(x)
        ref, att = lesa_reference(m, x)
    torch.testing.assert_close(out, ref, atol=1e-10, rtol=0)
    rec = cap.records["lesa"]
    h, w = size
    for b, y, xx in [(0, 0, 0), (1, h - 1, w - 1), (1, 2, 3)]:
        for head in range(4):
            torch.testing.assert_close(torch.from_numpy(rec.query_map(y, xx, f"head{head}", b)),
                                       att[b, head, y * w + xx].view(h, w), atol=1e-12, rtol=0)
        torch.testing.assert_close(torch.from_numpy(rec.query_map(y, xx, "mean", b)),
                                   att[b, :, y * w + xx].mean(0).view(h, w), atol=1e-12, rtol=0)


def test_lesa_official_shapes():
    """q/k C/(2·heads) and v C/heads wide per head, gate hidden width C (2C shrunk by 2), BN on q/k/v."""
    m = create_attention("lesa", 64, heads=4)
    assert (m.qk, m.v) == (8, 16)
    assert m.qkv.out_channels == 128 and m.qkv_norm.num_features == 128
    assert m.gate[1].out_channels == 64 and m.logit_norm.num_features == 4 and m.out_norm.num_features == 64
    with_pos = create_attention("lesa", 64, heads=4, position=(6, 6))
    assert with_pos.relative.shape == (2 * 8 + 16, 2 * 36 - 1) and with_pos.logit_norm.num_features == 12


def test_lesa_training_statistics_without_the_dense_logits():
    """In training the logit BN uses batch statistics of q·k over B×N×N; ours computes them in closed form.
    Known answer: the same output and running statistics as a BatchNorm2d fed the materialised logits."""
    m = randomise(create_attention("lesa", 16, heads=2), seed=4).double().train()
    x = torch.randn(2, 16, 6, 5, dtype=torch.float64)
    norm = torch.nn.BatchNorm2d(2).double().train()
    norm.load_state_dict(m.logit_norm.state_dict())
    qkv = m.qkv_norm(m.qkv(x)).flatten(2).view(2, 2, 2 * m.qk + m.v, 30)
    q, k = qkv[:, :, : m.qk], qkv[:, :, m.qk : 2 * m.qk]
    att = torch.softmax(norm(torch.einsum("bgci,bgcj->bgij", q, k)), dim=3)
    with capture(m) as cap:
        m(x)
    rec = cap.records["lesa"]
    torch.testing.assert_close(m.logit_norm.running_mean, norm.running_mean)
    torch.testing.assert_close(m.logit_norm.running_var, norm.running_var)
    torch.testing.assert_close(torch.from_numpy(rec.query_map(3, 2, "head1", 1)), att[1, 1, 3 * 5 + 2].view(6, 5))


def test_lesa_position_term_refuses_other_sizes():
    from vizattn.errors import VizattnError

    m = create_attention("lesa", 16, heads=2, position=(4, 4)).eval()
    with pytest.raises(VizattnError, match="4×4"):
        m(torch.randn(1, 16, 5, 4))
