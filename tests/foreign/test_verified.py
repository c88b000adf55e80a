"""Verified captures: where a foreign module's values and output are seen, the capture rebuilds rows · values at
sampled queries and compares them with the module's own output; the record says what it found. A module that
does not use the rows it computed is caught, and one whose use cannot be seen says so."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import vizattn
from tests.foreign.test_observe import Net, segformer, vision_transformer
from tests.modules.helpers import ALL, run
from vizattn.foreign.observe import sample_queries

BY_CONSTRUCTION = "verified by construction (vizattn's own module)"
UNCHECKED = "softmax as computed; its use not verified"


def assert_verified(rec):
    assert rec.verified is not None and rec.verified < 1e-5, rec.verification
    assert rec.verification.startswith("verified (max |Δ| ") and "NOT" not in rec.verification


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_segformer_eager_and_sdpa_are_verified(impl):
    model = segformer(impl)
    with torch.no_grad(), vizattn.capture(model) as cap:
        model(pixel_values=torch.randn(2, 3, 96, 128))
    assert len(cap.records) == 4
    for rec in cap.records.values():
        assert_verified(rec)


@pytest.mark.parametrize("kind", ["vit", "dinov2"])
def test_vit_and_dinov2_are_verified(kind):
    model = vision_transformer(kind)
    with torch.no_grad(), vizattn.capture(model) as cap:
        model(pixel_values=torch.randn(1, 3, 64, 64))
    for rec in cap.records.values():
        assert_verified(rec)


def test_multihead_attention_is_verified_through_its_own_out_projection():
    model = Net().eval()
    with torch.no_grad(), vizattn.capture(model, modules=["block"]) as cap:
        model(torch.randn(2, 3, 14, 22))
    assert_verified(cap.records["mha"])
    assert_verified(cap.records["block"])  # a hand-written softmax whose rows are multiplied next


def test_unbatched_multihead_attention_is_verified():
    class Tokens(nn.Module):
        def __init__(self):
            super().__init__()
            self.mha = nn.MultiheadAttention(8, 4, bias=False)

        def forward(self, img):
            t = img[0].flatten(1).T  # (L, E), unbatched
            return self.mha(t, t, t)[0]

    model = Tokens().eval()
    with torch.no_grad(), vizattn.capture(model) as cap:
        model(torch.randn(1, 8, 5, 7))
    assert_verified(cap.records["mha"])


@pytest.mark.parametrize("name", ALL)
def test_our_own_modules_are_verified_by_construction(name):
    _, _, rec = run(name, torch.randn(1, 16, 9, 11))
    assert rec.verified is None and rec.verification == BY_CONSTRUCTION


class Wrap(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x)


def tokens(x):
    return x.flatten(2).transpose(1, 2)


class ReusedBuffer(nn.Module):
    """Computes softmax rows, uses them, then overwrites the buffer with a permutation of them (in place): the
    rows a capture kept are no longer the ones the module used."""

    def forward(self, x):
        t = tokens(x)
        att = torch.softmax(t @ t.transpose(1, 2), dim=-1)
        out = att @ t
        att.copy_(att.roll(1, dims=-1))
        return out


class PermutedUse(nn.Module):
    """Computes softmax rows but multiplies a permuted copy: its use cannot be seen, only the rows."""

    def forward(self, x):
        t = tokens(x)
        att = torch.softmax(t @ t.transpose(1, 2), dim=-1)
        return att.flip(-1) @ t


class DroppedOut(nn.Module):
    """SDPA with attention dropout (a module left in training mode): the output is not rows · values."""

    def forward(self, x):
        t = tokens(x)[:, None]
        return F.scaled_dot_product_attention(t, t, t, dropout_p=0.5)


def capture_one(inner):
    model = Wrap(inner)
    torch.manual_seed(0)
    with torch.no_grad(), vizattn.capture(model, modules=["inner"]) as cap:
        model(torch.randn(1, 4, 6, 7))
    return cap.records["inner"]


@pytest.mark.parametrize("fake", [ReusedBuffer, DroppedOut])
def test_a_module_that_did_not_use_the_kept_rows_is_flagged(fake):
    rec = capture_one(fake())
    assert rec.verified > 1e-2 > rec.verified_tolerance
    assert rec.verification.startswith("NOT verified: max |Δ| ")


def test_a_softmax_whose_use_is_not_seen_says_so():
    rec = capture_one(PermutedUse())
    assert rec.verified is None and rec.verification == UNCHECKED
    assert rec.query_map(0, 0).sum() == pytest.approx(1.0, abs=1e-6)  # the rows are still shown, as computed


def test_multihead_attention_with_dropout_in_training_is_flagged():
    model = Net().train()
    model.mha.dropout = 0.5
    torch.manual_seed(0)
    with torch.no_grad(), vizattn.capture(model) as cap:
        model(torch.randn(1, 3, 14, 22))
    assert cap.records["mha"].verification.startswith("NOT verified")


def test_the_check_neither_changes_the_output_nor_records_itself_into_an_enclosing_capture():
    model = Net().eval()
    x = torch.randn(1, 3, 14, 22)
    with torch.no_grad():
        plain = model(x)
        with vizattn.capture(model, modules=["block"]) as outer:
            with vizattn.capture(model, modules=["block"]) as inner:
                got = model(x)
    assert torch.equal(plain, got)
    assert list(outer.records) == list(inner.records) == ["block", "mha"]
    assert all(r.verification.startswith("verified") for r in inner.records.values())


def test_the_sampled_queries_are_deterministic_and_spread():
    assert sample_queries(100).tolist() == sample_queries(100).tolist()
    q = sample_queries(100)
    assert len(q) == 16 and q[0] == 0 and q[-1] == 99
    assert sample_queries(5).tolist() == [0, 1, 2, 3, 4] and sample_queries(1).tolist() == [0]


def test_a_boolean_sdpa_mask_leaves_keys_out_and_is_verified():
    """SDPA's boolean mask keeps the keys marked True; the captured rows give the others no weight."""

    class Masked(nn.Module):
        def __init__(self):
            super().__init__()
            self.attention = nn.Identity()

        def forward(self, f):  # f: 1×C×4×4
            t = f.flatten(2).transpose(1, 2)[:, None]
            keep = torch.ones(16, 16, dtype=torch.bool)
            keep[:, 5] = False
            return F.scaled_dot_product_attention(t, t, t, attn_mask=keep)

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), Masked())
    with torch.no_grad(), vizattn.capture(net, modules=["1"]) as cap:
        net(torch.randn(1, 3, 8, 8))
    (rec,) = cap.records.values()
    m = rec.query_map(1, 2)
    assert m.reshape(-1)[5] == 0 and m.sum() == pytest.approx(1.0)
    assert_verified(rec)
