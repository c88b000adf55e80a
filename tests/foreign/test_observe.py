"""Capturing modules vizattn did not write: real architectures built from their configs with random weights.
For each: the captured rows equal the attention the library itself returns, they rebuild the module's
attention output, the model's output is unchanged bit for bit, nothing is left behind, and two threads on one
model get their own maps."""
import threading

import numpy as np
import pytest
import torch
from torch import nn

import vizattn
from benchmarks import fidelity
from vizattn.errors import VizattnError
from vizattn.foreign.observe import ForeignRecord, UnmappedRecord, fit_grid, reconstruction


class PlainAttention(nn.Module):
    """A hand-written block with a plain softmax attention over its feature map."""

    def __init__(self, c=8):
        super().__init__()
        self.q, self.k, self.v = nn.Conv2d(c, c, 1), nn.Conv2d(c, c, 1), nn.Conv2d(c, c, 1)

    def forward(self, x):
        b, c, h, w = x.shape
        q, k, v = (f(x).flatten(2).transpose(1, 2) for f in (self.q, self.k, self.v))
        att = torch.softmax(q @ k.transpose(1, 2) / c**0.5, dim=-1)
        return x + (att @ v).transpose(1, 2).reshape(b, c, h, w)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, 2, 1)
        self.block = PlainAttention()
        self.mha = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, img):
        f = self.block(self.stem(img))
        t = f.flatten(2).transpose(1, 2)
        return self.mha(t, t, t)[0]  # need_weights=True (the default): PyTorch's own path with or without capture


def segformer(impl="eager", num_labels=5):
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    torch.manual_seed(0)
    cfg = SegformerConfig(depths=[1, 1, 1, 1], sr_ratios=[8, 4, 2, 1], hidden_sizes=[16, 32, 40, 64],
                          num_attention_heads=[1, 2, 5, 8], decoder_hidden_size=32, num_labels=num_labels)
    return SegformerForSemanticSegmentation._from_config(cfg, attn_implementation=impl).eval()


def vision_transformer(kind):
    from transformers import Dinov2WithRegistersConfig, Dinov2WithRegistersModel, ViTConfig, ViTModel

    torch.manual_seed(0)
    if kind == "vit":
        cfg = ViTConfig(image_size=64, patch_size=16, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64)
        return ViTModel._from_config(cfg, attn_implementation="eager").eval()
    cfg = Dinov2WithRegistersConfig(image_size=64, patch_size=8, hidden_size=32, num_hidden_layers=2,
                                    num_attention_heads=2, intermediate_size=64, num_register_tokens=4)
    return Dinov2WithRegistersModel._from_config(cfg, attn_implementation="eager").eval()


def rows_of(rec):
    return torch.stack([rec.all_rows(b) for b in range(rec.batch)])


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_segformer_rows_equal_transformers_own_attentions(impl):
    model = segformer(impl)
    x = torch.randn(2, 3, 96, 128)
    with torch.no_grad():
        expected = segformer("eager")(pixel_values=x, output_attentions=True)
        with vizattn.capture(model) as cap:
            got = model(pixel_values=x)
    torch.testing.assert_close(got.logits, expected.logits, atol=1e-5, rtol=1e-5)
    recs = list(cap.records.values())
    assert [r.grid for r in recs] == [(24, 32), (12, 16), (6, 8), (3, 4)]
    assert all(r.config["key_grid"] == (3, 4) for r in recs)  # keys on the grid reduced by sr_ratio 8, 4, 2, 1
    assert [r.config["heads"] for r in recs] == [1, 2, 5, 8]
    for rec, att in zip(recs, expected.attentions):
        torch.testing.assert_close(rows_of(rec), att, atol=1e-5, rtol=1e-5)
        rebuilt, output = reconstruction(rec)
        torch.testing.assert_close(rebuilt, output, atol=1e-5, rtol=1e-5)
    m = recs[0].query_map(5, 7, "head0")
    assert m.shape == (3, 4) and m.sum() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("kind,grid,extra", [("vit", (4, 4), 1), ("dinov2", (8, 8), 5)])
def test_vit_and_dinov2_set_class_and_register_tokens_aside(kind, grid, extra):
    model = vision_transformer(kind)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = model(pixel_values=x, output_attentions=True)
        with vizattn.capture(model) as cap:
            got = model(pixel_values=x)
    assert torch.equal(got.last_hidden_state, expected.last_hidden_state)
    for rec, att in zip(cap.records.values(), expected.attentions):
        assert rec.grid == grid and rec.config["key_extra"] == extra == rec.config["query_extra"]
        torch.testing.assert_close(rows_of(rec), att, atol=1e-5, rtol=1e-5)
        m, share = rec.query_map(1, 2, "head1"), rec.outside_share(1, 2, "head1")
        assert m.sum() + share == pytest.approx(1.0, abs=1e-5) and share > 0
        row = att[0, 1, extra + 1 * grid[1] + 2]
        np.testing.assert_allclose(m, row[extra:].reshape(grid).numpy(), atol=1e-6)
        assert rec.distribution_views == ()  # part of every row went to the tokens set aside


def test_multihead_attention_and_a_hand_written_block():
    model = Net().eval()
    x = torch.randn(2, 3, 14, 22)
    with torch.no_grad():
        plain = model(x)
        feats = model.block(model.stem(x)).flatten(2).transpose(1, 2)
        _, weights = model.mha(feats, feats, feats, average_attn_weights=False)
        with vizattn.capture(model, modules=["block"]) as cap:
            got = model(x)
    assert torch.equal(plain, got)
    block, mha = cap.records["block"], cap.records["mha"]
    assert block.grid == mha.grid == (7, 11) and mha.config["heads"] == 2
    torch.testing.assert_close(rows_of(mha), weights, atol=1e-6, rtol=1e-5)
    rebuilt, output = reconstruction(block)  # the hand-written block: rows · values = its own attention output
    torch.testing.assert_close(rebuilt, output, atol=1e-6, rtol=1e-5)
    per_head = rows_of(mha).flatten(0, 1) @ mha.data["values"]  # MHA: out_proj(rows · values) = the module output
    merged = per_head.view(2, 2, 77, 4).permute(0, 2, 1, 3).reshape(2, 77, 8)
    torch.testing.assert_close(model.mha.out_proj(merged), got, atol=1e-6, rtol=1e-5)
    q_rows = torch.softmax(
        (model.block.q(model.stem(x)).flatten(2).transpose(1, 2) @ model.block.k(model.stem(x)).flatten(2)) / 8**0.5, -1)
    torch.testing.assert_close(rows_of(block)[:, 0], q_rows, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("key", ["nl", "cc", "gc", "da", "ann"])
def test_mmseg_heads_read_live(key):
    from tests.foreign.mmseg_models import build

    model, _ = build(key, narrow=True)
    x = torch.randn(1, 3, 64, 96)
    meta = [dict(img_shape=(64, 96))]
    with torch.no_grad():
        with fidelity.SoftmaxLog() as log:
            plain = model.encode_decode(x, meta)
        with vizattn.capture(model) as cap:
            got = model.encode_decode(x, meta)
    assert torch.equal(plain, got)
    spatial = [r for r in cap.records.values() if r.views()]
    assert spatial and all(r.grid == (8, 12) for r in spatial)
    logged = [t.double() for t in log.outputs]
    for rec, ref in zip(cap.records.values(), logged):
        if isinstance(rec, ForeignRecord):
            torch.testing.assert_close(rows_of(rec).double().flatten(0, 1), ref.flatten(0, -3), atol=1e-6, rtol=0)
        elif rec.views():  # the cross and anchor readings: every map a distribution over the image
            for y, xx in [(0, 0), (7, 11), (3, 5)]:
                assert rec.query_map(y, xx).sum() == pytest.approx(1.0, abs=1e-5)
    if key == "cc":
        m = cap.records["decode_head.cca"].query_map(3, 5)
        row = logged[0][0, 3, 5]
        np.testing.assert_allclose(m[:, 5][np.arange(8) != 3], row[:8].numpy()[np.arange(8) != 3], atol=1e-6)
    if key == "da":
        assert isinstance(cap.records["decode_head.cam"], UnmappedRecord)
        assert "channels" in cap.records["decode_head.cam"].reason


def test_isa_head_read_live_gives_the_same_maps_as_its_checkpoint(tmp_path):
    """mmseg's ISAHead, captured live, makes one ISA record from its two softmaxes: its rows are mmseg's own, they
    rebuild each step's context, and every view (long, short, effective, padding share) equals the one of the
    same weights opened as a checkpoint (our ISA module). 64×96 input: a 8×12 grid, padded to 8×16 for 8×8 groups."""
    from tests.foreign.mmseg_models import build, checkpoint_bytes

    model, cfg = build("isa", narrow=True)
    head = model.decode_head
    x = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(2))
    meta = [dict(img_shape=(64, 96))]
    seen = {}  # each step's input and what its output projection received (rows · values, as a grid)
    hooks = []
    for step in ("global", "local"):
        block = getattr(head, f"{step}_relation")
        hooks.append(block.register_forward_pre_hook(lambda m, a, step=step: seen.__setitem__((step, "in"), a[0])))
        hooks.append(block.output_project.register_forward_pre_hook(
            lambda m, a, step=step: seen.__setitem__((step, "ctx"), a[0])))
    try:
        with torch.no_grad():
            with fidelity.SoftmaxLog() as log:
                plain = model.encode_decode(x, meta)
            with vizattn.capture(model) as cap:
                got = model.encode_decode(x, meta)
    finally:
        for h in hooks:
            h.remove()
    assert torch.equal(plain, got)
    assert list(cap.records) == ["decode_head"]
    rec = cap.records["decode_head"]
    assert rec.kind == "isa" and rec.grid == (8, 12) and rec.config["pad"] == (0, 0, 2, 2)
    torch.testing.assert_close(rec.data["long_rows"], log.outputs[0], atol=0, rtol=0)
    torch.testing.assert_close(rec.data["short_rows"], log.outputs[1], atol=0, rtol=0)
    # the rows rebuild each step's context: rows · values, the values from the block's own projection
    with torch.no_grad():
        for step, rows in (("global", rec.data["long_rows"]), ("local", rec.data["short_rows"])):
            values = getattr(head, f"{step}_relation").value_project(seen[step, "in"]).flatten(2).transpose(1, 2)
            ctx = seen[step, "ctx"].flatten(2).transpose(1, 2)
            torch.testing.assert_close(rows @ values, ctx, atol=1e-5, rtol=1e-5)
    # the same weights as a checkpoint, through our own ISA module: the same maps at every view
    path = tmp_path / "isa.pth"
    path.write_bytes(checkpoint_bytes(model, cfg))
    ours = vizattn.load(str(path))
    with torch.no_grad(), vizattn.capture(ours) as ours_cap:
        ours.infer(x)
    mine = ours_cap.records["head.context"]
    for y, xx in [(0, 0), (7, 11), (3, 5), (5, 0)]:
        for view in ("long", "short", "effective"):
            np.testing.assert_allclose(rec.query_map(y, xx, view), mine.query_map(y, xx, view), atol=1e-5)
        assert rec.outside_share(y, xx, "effective") == pytest.approx(mine.outside_share(y, xx, "effective"), abs=1e-5)
    assert rec.outside_share(3, 0, "short") > 0.01  # its block holds two padded columns: weight went there


def test_a_length_that_fits_no_grid_is_said_not_guessed():
    class Odd(nn.Module):
        def forward(self, x):
            b, c, h, w = x.shape
            t = x.flatten(2)[:, :, : h * w - 3]  # 3 positions dropped: no grid of this image has that many
            return torch.softmax(t.transpose(1, 2) @ t, dim=-1)

    class Wrap(nn.Module):
        def __init__(self):
            super().__init__()
            self.odd = Odd()

        def forward(self, x):
            return self.odd(x)

    model = Wrap()
    with vizattn.capture(model, modules=["odd"]) as cap:
        model(torch.randn(1, 4, 9, 9))
    rec = cap.records["odd"]
    assert isinstance(rec, UnmappedRecord) and "fit no grid" in rec.reason and rec.views() == ()
    assert fit_grid(110, [(8, 12)], max_extra=0) is None  # ANN's anchors are no grid
    assert fit_grid(69, [(64, 64)]) == ((8, 8), 5)


def test_nothing_is_left_behind_even_after_an_exception():
    model = Net().eval()
    x = torch.randn(1, 3, 14, 22)
    with pytest.raises(RuntimeError, match="boom"):
        with vizattn.capture(model, modules=["block"]):
            model(x)
            raise RuntimeError("boom")
    assert not torch._C._is_torch_function_mode_enabled()
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    with torch.no_grad():
        assert torch.equal(model(x), model(x))


def test_two_threads_on_one_model_get_their_own_maps():
    model = segformer("sdpa")
    images = [torch.randn(1, 3, 64, 64) for _ in range(2)]
    results, errors = {}, []

    def worker(i):
        try:
            for _ in range(3):
                with torch.no_grad(), vizattn.capture(model) as cap:
                    model(pixel_values=images[i])
                results[i] = {n: r.query_map(1, 1, r.views()[0]) for n, r in cap.records.items()}
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i in range(2):
        with torch.no_grad(), vizattn.capture(model) as cap:
            model(pixel_values=images[i])
        for n, r in cap.records.items():
            np.testing.assert_allclose(results[i][n], r.query_map(1, 1, r.views()[0]), atol=1e-6)
    assert any(not np.allclose(results[0][n], results[1][n]) for n in results[0])


def test_naming_a_module_that_does_not_exist_gets_one_sentence():
    with pytest.raises(VizattnError, match="No module of this model matches"):
        vizattn.capture(Net(), modules=["decode_head.*"])


def save_segformer(folder, size=128, labels=("road", "sidewalk", "building", "sky", "tree")):
    """A SegFormer model directory as transformers writes it (config.json, model.safetensors, processor size)."""
    import json

    model = segformer("sdpa", len(labels))
    model.config.id2label = dict(enumerate(labels))
    model.config.label2id = {n: i for i, n in model.config.id2label.items()}
    model.save_pretrained(folder, safe_serialization=True)
    (folder / "preprocessor_config.json").write_text(json.dumps({"size": {"height": size, "width": size}}))
    return model


def test_a_transformers_directory_opens_and_queries_from_the_cli(tmp_path, capsys):
    from vizattn.cli import main

    folder = tmp_path / "segformer-tiny"
    save_segformer(folder)
    model = vizattn.load(str(folder))
    assert model.card["classes"][:2] == ["road", "sidewalk"] and model.size == (128, 128)
    assert main(["query", "--model", str(folder), "--image", "scene:7", "--pixel", "100,200",
                 "--out", str(tmp_path / "out")]) == 0
    files = capsys.readouterr().out.split()
    meta = next(f for f in files if f.endswith(".json"))
    import json

    data = json.loads(open(meta).read())
    assert data["predicted_class"] in model.card["classes"]
    assert {p["module"] for p in data["panels"]} == {f"model.segformer.stages.{i}.blocks.0.attention" for i in range(4)}


def test_a_factory_is_imported_and_called(tmp_path, monkeypatch):
    pkg = tmp_path / "mymodels.py"
    pkg.write_text("from tests.foreign.test_observe import Net\ndef build():\n    return Net()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    model = vizattn.load("mymodels:build")
    assert isinstance(model, Net)
    with pytest.raises(VizattnError, match="names no importable function"):
        vizattn.load("mymodels:nothing")
