"""mmseg checkpoints opened by vizattn compute what mmseg computes: each head's model built from mmseg's own
shipped config (R-50-D8, Cityscapes and ADE20K), every weight and BN statistic random, saved as mmseg saves it,
loaded through vizattn.load; logits (whole and slide) and attention rows compared with mmseg's own."""
import io

import numpy as np
import pytest
import torch

import vizattn
from tests.foreign.mmseg_models import build, checkpoint_bytes
from benchmarks import fidelity
from vizattn.errors import VizattnError
from vizattn.foreign.mmseg import CITYSCAPES, classes_and_palette, parse_config

# head -> (fidelity cases whose row functions read its softmaxes, in forward order, and how many softmaxes each)
ROWS = {"nl": [("nonlocal", 1)], "isa": [("isa", 2)], "cc": [("criss_cross", 2)], "gc": [("gc", 1)],
        "ann": [("afnb", 1), ("apnb", 1)], "da": [("danet", 2)], "psa": [("psanet", 2)]}
SIZE = (64, 128)


def mmseg_logits(model, x, mode, crop=(64, 96), stride=(64, 64)):
    from mmengine.config import ConfigDict

    model.test_cfg = ConfigDict(mode=mode, crop_size=crop, stride=stride)
    meta = [dict(img_shape=tuple(x.shape[2:]), ori_shape=tuple(x.shape[2:]), pad_shape=tuple(x.shape[2:]))]
    with torch.no_grad(), fidelity.SoftmaxLog() as log:
        out = model.inference(x, meta)
    return out, [t.double() for t in log.outputs]


@pytest.mark.parametrize("key", ["nl", "isa", "cc", "gc", "ann", "da", "psa", "psa-ade"])
def test_checkpoint_computes_what_mmseg_computes(key, tmp_path):
    ref, cfg = build(key)
    path = tmp_path / f"{key}.pth"
    path.write_bytes(checkpoint_bytes(ref, cfg))
    ours = vizattn.load(str(path))
    head = key.split("-")[0]
    assert ours.config.head == head and ours.config.num_classes == (150 if key.endswith("ade") else 19)
    x = torch.randn(1, 3, *SIZE, generator=torch.Generator().manual_seed(1))
    expected, logged = mmseg_logits(ref, x, "whole")
    with torch.no_grad(), vizattn.capture(ours) as cap:
        got = ours.infer(x)
    assert (got - expected).abs().max() <= 1e-4 * max(1.0, expected.abs().max().item())
    # attention rows: mmseg's own softmax outputs against our records, at corners, centre and random positions
    records, start = list(cap.records.values()), 0
    for rec, (case, n) in zip(records, ROWS[head]):
        part = logged[start : start + n]
        start += n
        pairs = [p for y, xx in fidelity.positions(*rec.grid, count=8) for p in fidelity.CASES[case].rows(part, rec, 0, y, xx)]
        assert max(float(np.abs(np.asarray(a, np.float64) - b).max()) for a, b in pairs) <= 1e-5
    assert start == len(logged) == sum(n for _, n in ROWS[head])
    # slide mode: crops, the logits summed and averaged where they overlap, as mmseg does
    ours.config.mode, ours.config.crop, ours.config.stride = "slide", (64, 96), (64, 64)  # two overlapping crops
    expected, _ = mmseg_logits(ref, x, "slide")
    with torch.no_grad():
        got = ours.infer(x)
    assert (got - expected).abs().max() <= 1e-4 * max(1.0, expected.abs().max().item())


def test_config_text_and_classes_from_meta(tmp_path):
    ref, cfg = build("gc", narrow=True)
    names = [f"thing {i}" for i in range(19)]
    palette = [(i, 2 * i, 3 * i) for i in range(19)]
    for style in ("1.x", "0.x"):
        model = vizattn.load(checkpoint_bytes(ref, cfg, style, names, palette), file_name=f"gc-{style}.pth")
        assert model.card["classes"] == names and model.card["palette"][3] == [3, 6, 9]
        assert model.card["classes_from"] == "the checkpoint"
        c = model.config
        assert (c.test_scale, c.mode, c.mean[0], c.options["fusion_types"]) == ((2048, 1024), "whole", 123.675, ["channel_add"])
        assert c.stem_channels == 8 and c.base_channels == 4 and c.channels == 32


def test_classes_by_count_when_the_checkpoint_names_none():
    names, palette, source = classes_and_palette({}, 19)
    assert names == list(CITYSCAPES) and palette[0] == (128, 64, 128) and "Cityscapes" in source
    assert len(classes_and_palette({}, 150)[0]) == 150 and "ADE20K" in classes_and_palette({}, 150)[2]
    assert classes_and_palette({}, 21)[0][0] == "background"
    names, palette, source = classes_and_palette({"CLASSES": ["a"] * 3}, 7)  # a list that does not fit is ignored
    assert names == [f"class {i}" for i in range(7)] and len(set(palette)) == 7


def test_config_is_read_as_data_never_run(tmp_path):
    marker = tmp_path / "ran"
    text = f"import os\nos.system('touch {marker}')\nmodel = dict(decode_head=dict(type='GCHead', ratio=__import__('os')))\n"
    values = parse_config(text, "evil")
    assert not marker.exists() and values["model"]["decode_head"] == {"type": "GCHead", "ratio": None}
    assert parse_config("x = (" * 5000, "deep") == {}


def test_inconsistent_or_unsupported_checkpoints_get_one_sentence():
    ref, cfg = build("nl", narrow=True)
    state = ref.state_dict()
    lying = {"meta": {"config": "model = dict(decode_head=dict(type='ISAHead'))"}, "state_dict": state}
    for obj, words in [
        (lying, "inconsistent"),
        ({"state_dict": {k: v for k, v in state.items() if not k.startswith("decode_head.nl_block")}}, "not of a head"),
        ({"state_dict": {**state, "decode_head.extra.weight": torch.zeros(1)}}, "unexpected keys: decode_head.extra"),
    ]:
        buf = io.BytesIO()
        torch.save(obj, buf)
        with pytest.raises(VizattnError, match=words):
            vizattn.load(buf.getvalue(), file_name="x.pth")


def test_auxiliary_head_is_ignored_by_name_and_apnb_alias_checked():
    ref, cfg = build("ann", narrow=True)
    state = ref.state_dict()
    assert any(k.startswith("auxiliary_head.") for k in state)
    buf = io.BytesIO()
    torch.save({"state_dict": state}, buf)
    assert vizattn.load(buf.getvalue(), file_name="ann.pth").config.head == "ann"
    state["decode_head.context.stages.0.query_project.conv.weight"] = state[
        "decode_head.context.stages.0.query_project.conv.weight"] + 1
    buf = io.BytesIO()
    torch.save({"state_dict": state}, buf)
    with pytest.raises(VizattnError, match="shared key projection"):
        vizattn.load(buf.getvalue(), file_name="ann.pth")


def test_segment_resizes_to_the_test_scale_and_back():
    ref, cfg = build("cc", narrow=True)
    model = vizattn.load(checkpoint_bytes(ref, cfg), file_name="cc.pth")
    assert model.test_size(512, 1024) == (1024, 2048) and model.test_size(1024, 2048) == (1024, 2048)
    model.config.test_scale = (256, 128)
    image = np.random.default_rng(0).integers(0, 256, (90, 200, 3), dtype=np.uint8)
    with torch.no_grad():
        logits = model.segment(image)
    assert logits.shape == (1, 19, 90, 200) and torch.isfinite(logits).all()


def test_report_runs_on_mmseg_checkpoints_over_an_image_folder(tmp_path):
    """`vizattn report --models PATH --images DIR`: the analyses that apply, with the checkpoint's own classes."""
    import json

    import matplotlib.cbook
    from PIL import Image

    from vizattn.cli import main
    from vizattn.data import generate_scene

    folder = tmp_path / "images"
    folder.mkdir()
    Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).resize((128, 150)).save(folder / "a.png")
    Image.fromarray(generate_scene(5, (96, 128)).image).save(folder / "b.png")
    paths = []
    for key in ("cc", "nl"):
        ref, cfg = build(key, narrow=True)
        cfg.test_pipeline[1]["scale"] = (256, 128)  # keep the forward small: the config's test scale is honoured
        paths.append(tmp_path / f"{key}.pth")
        paths[-1].write_bytes(checkpoint_bytes(ref, cfg, "1.x", CITYSCAPES, [(i, i, i) for i in range(19)]))
    assert main(["report", "--out", str(tmp_path / "out"), "--scenes", "2", "--images", str(folder),
                 "--models", *map(str, paths)]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["scenes"] == 2 and report["images"] == str(folder)
    assert set(report["query_independence"]) == {str(p) for p in paths}
    assert "criss_cross" not in report and "lesa_unary_ablation" not in report and "attribution" not in report
    where_classes = {c for table in report["where"].values() for c in table}
    assert where_classes and where_classes <= set(CITYSCAPES)
    md = (tmp_path / "out" / "report.md").read_text()
    assert "2 images from" in md and "no ground truth" in md


def test_report_refuses_an_empty_image_folder(tmp_path, capsys):
    from vizattn.cli import main

    (tmp_path / "empty").mkdir()
    assert main(["report", "--out", str(tmp_path / "o"), "--images", str(tmp_path / "empty")]) == 2
    assert "No PNG/JPEG" in capsys.readouterr().err


@pytest.mark.parametrize("bad,words", [
    ("recurrence=3000", "recurrence=3000"),
    ("mask_size=(1000, 1000)", "mask_size"),
    ("key_pool_scales=(1, 3, 6, 800)", "key_pool_scales"),
    ("down_factor=(0, 8)", "down_factor"),
])
def test_hostile_config_values_are_refused_before_anything_is_built(bad, words):
    """The config text is untrusted: values that would drive allocation or time are bounded and refused."""
    key = {"recurrence": "cc", "mask_size": "psa", "key_pool_scales": "ann", "down_factor": "isa"}[bad.split("=")[0]]
    ref, _ = build(key, narrow=True)
    buf = io.BytesIO()
    torch.save({"meta": {"config": f"model = dict(decode_head=dict({bad}))"}, "state_dict": ref.state_dict()}, buf)
    with pytest.raises(VizattnError, match=words.split("=")[0]):
        vizattn.load(buf.getvalue(), file_name="hostile.pth")
