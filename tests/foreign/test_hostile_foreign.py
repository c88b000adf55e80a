"""Hardening of the foreign doors (issue 24): hostile mmseg checkpoints and transformers folders, generated here (no
stored binaries), through the library and the CLI. Each gets one sentence, within 300 MB of extra peak memory and
10 s, before the model it describes exists: sizes are typed and bounded, the model is built on the meta device,
checked against the file's tensors and costed at the largest input it will be given."""
import json
import shutil
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import save_file

import vizattn
from tests.foreign.mmseg_models import narrow_checkpoint
from tests.test_hostile import PEAK_CAP_MIB, TIME_CAP_S, refused
from vizattn import schema
from vizattn.errors import VizattnError
from vizattn.foreign.mmseg import parse_config

D = "decode_head."
CONV_SEG = f"{D}conv_seg.weight"


def hollow(*shape) -> torch.Tensor:
    """A tensor declaring `shape` with no elements: `shape` with one size set to 0 stays a few bytes in a file."""
    return torch.zeros(*shape)


@pytest.fixture(scope="module", autouse=True)
def warm():
    """One-time costs are paid before measuring: mmseg's narrow models are built, transformers is imported and the
    FLOP counter (which imports torch._dynamo) has run once."""
    narrow_checkpoint("nl")
    import transformers  # noqa: F401

    schema.estimate_cost(torch.nn.Conv2d(3, 1, 1).to("meta"), (8, 8))


# (id, head, state changes, config text, words the sentence must hold)
MMSEG = [
    # item 2: small files declaring big models
    ("conv_seg-7000-hollow", "nl", {CONV_SEG: hollow(19, 7000, 0, 1)}, None, "channels=7000"),
    ("conv_seg-40000-hollow", "nl", {CONV_SEG: hollow(19, 40000, 0, 1)}, None, "channels=40000"),
    ("conv_seg-2000-hollow", "nl", {CONV_SEG: hollow(19, 2000, 0, 1)}, None, "shape mismatches"),
    ("base-width-256", "nl", {"backbone.layer1.0.conv1.weight": hollow(256, 0, 1, 1)}, None, "base_channels=256"),
    ("base-width-128-hollow", "nl", {"backbone.layer1.0.conv1.weight": hollow(128, 0, 1, 1)}, None, "does not fit"),
    ("test-scale-4096sq-cc", "cc", {}, "test_pipeline = [dict(type='Resize', scale=(4096, 4096), keep_ratio=True)]",
     "test scale"),
    ("test-scale-4096sq-nl", "nl", {}, "test_pipeline = [dict(type='Resize', scale=(4096, 4096), keep_ratio=True)]",
     "test scale"),
    ("test-scale-4096x2048-nl-cost", "nl", {},
     "test_pipeline = [dict(type='Resize', scale=(4096, 2048), keep_ratio=True)]", "GiB tensor"),
    ("test-scale-9000", "nl", {}, "test_pipeline = [dict(type='Resize', scale=(9000, 20))]", "test scale"),
    ("classes-1500-unnamed", "nl", {CONV_SEG: torch.zeros(1500, 32, 1, 1), f"{D}conv_seg.bias": torch.zeros(1500)},
     None, "num_classes=1500"),
    # item 8: type confusion in the config text
    ("config-model-int", "nl", {}, "model = 5", "model is int"),
    ("config-decode_head-str", "nl", {}, "model = dict(decode_head='x')", "decode_head is str"),
    ("config-dilations-int", "nl", {}, "model = dict(backbone=dict(dilations=5))", "D8"),
    ("config-test_cfg-list", "nl", {}, "model = dict(test_cfg=[1])", "test_cfg is list"),
    ("config-mean-str", "nl", {}, "img_norm_cfg = dict(mean='abc', std=[1.0, 1.0, 1.0])", "mean='abc'"),
    ("config-std-zero", "nl", {}, "img_norm_cfg = dict(mean=[0, 0, 0], std=[0, 1, 1])", "std="),
    ("config-list-key", "nl", {}, "model = {[1]: 2}", "keyed by a list"),
    ("config-align_corners-str", "nl", {}, "model = dict(decode_head=dict(align_corners='yes'))", "align_corners"),
    # item 8: shapes that divided by zero or indexed past a tensor's dimensions
    ("nl-zero-channels", "nl", {f"{D}nl_block.theta.conv.weight": hollow(0, 32, 1, 1)}, None, "(0, 32, 1, 1)"),
    ("nl-wider-than-head", "nl", {f"{D}nl_block.theta.conv.weight": hollow(7000, 0, 1, 1)}, None,
     "inside a 32-channel head"),
    ("danet-zero-channels", "da", {f"{D}pam.key_project.weight": hollow(0, 32, 1, 1)}, None, "(0, 32, 1, 1)"),
    ("danet-wider-than-head", "da", {f"{D}pam.key_project.weight": hollow(64, 0, 1, 1)}, None,
     "inside a 32-channel head"),
    ("psa-huge-mask", "psa", {f"{D}attention.1.weight": hollow(10**6, 0, 1, 1)}, None, "mask_size"),
    ("conv_seg-1d", "nl", {CONV_SEG: torch.zeros(19)}, None, "not the 4-D weight"),
    ("stem-0d", "nl", {"backbone.stem.6.weight": torch.tensor(1.0)}, None, "backbone.stem.6.weight"),
    ("layer3-key-x", "nl", {"backbone.layer3.x.conv1.weight": torch.zeros(1)}, None, "names no ResNet block"),
    ("layer3-key-huge-index", "nl", {"backbone.layer3." + "9" * 5000 + ".conv1.weight": torch.zeros(1)}, None,
     "names no ResNet block"),
    # item 9: a config text near 1 MB is refused unparsed
    ("config-text-1mb", "nl", {}, "a=1\n" * 250_000, "64,000 characters"),
]


@pytest.mark.parametrize("key,changes,text,words", [c[1:] for c in MMSEG], ids=[c[0] for c in MMSEG])
def test_hostile_mmseg_checkpoints_are_refused_before_the_model_exists(key, changes, text, words):
    blob = narrow_checkpoint(key, text, **changes)
    assert len(blob) < 4 * 2**20  # every one of these is a small file
    refused(lambda: vizattn.load(blob, file_name="hostile.pth"), words, "hostile.pth")


def test_mmseg_models_are_costed_at_their_test_scale_before_they_are_built(monkeypatch):
    """The cost is that of a forward at the config's test scale (the largest input a query gives it), counted on the
    meta device; over the limit, refused before the real model is built or a weight is copied."""
    from vizattn.foreign.mmseg import MMSegModel

    blob = narrow_checkpoint("cc", "test_pipeline = [dict(type='Resize', scale=(2048, 1024))]")
    sizes = []
    real = schema.estimate_cost
    monkeypatch.setattr(schema, "estimate_cost", lambda model, size=(1024, 1024): sizes.append(size) or real(model, size))
    monkeypatch.setattr(schema, "MAX_FOREIGN_GFLOPS", 1.0)
    monkeypatch.setattr(MMSegModel, "load_state_dict", lambda *a, **k: pytest.fail("weights loaded before costing"))
    refused(lambda: vizattn.load(blob, file_name="heavy.pth"), "GFLOPs", "1024×2048 image", "heavy.pth")
    assert sizes == [(1024, 2048)]


def test_a_config_text_within_the_bound_parses_quickly():
    """The worst text under the 64 kB bound (tens of thousands of statements) parses in well under a second."""
    text = "a=1\n" * 15_999
    t0 = time.perf_counter()
    assert parse_config(text, "many.pth")["a"] == 1
    assert time.perf_counter() - t0 < 2.0


@pytest.fixture(scope="module")
def segformer_folder(tmp_path_factory):
    from tests.foreign.test_observe import save_segformer

    folder = tmp_path_factory.mktemp("hf") / "segformer"
    save_segformer(folder)
    return folder


@pytest.fixture
def folder(segformer_folder, tmp_path):
    """A fresh copy of a small SegFormer folder, to be spoiled by one test."""
    copy = tmp_path / "model"
    shutil.copytree(segformer_folder, copy)
    return copy


def edit_json(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def deep_config(folder):
    (folder / "config.json").write_text("[" * 100_000 + "]" * 100_000)


def linked_config(folder):
    big = folder.parent / "big.json"
    with open(big, "wb") as f:
        f.truncate(3 * 2**30)  # sparse: 3 GB long, no disk used
    (folder / "config.json").unlink()
    (folder / "config.json").symlink_to(big)


def foreign_weights(folder):
    from tests.foreign.test_observe import vision_transformer

    save_file({k: v.contiguous() for k, v in vision_transformer("vit").state_dict().items()},
              str(folder / "model.safetensors"))


def headless_weights(folder):
    from safetensors.torch import load_file

    state = load_file(str(folder / "model.safetensors"))
    save_file({k: v for k, v in state.items() if not k.startswith("decode_head.")}, str(folder / "model.safetensors"))


def wrong_shapes(folder):
    from safetensors.torch import load_file

    state = load_file(str(folder / "model.safetensors"))
    state["decode_head.classifier.weight"] = torch.zeros(9, 32, 1, 1)
    save_file(state, str(folder / "model.safetensors"))


def wider_than_weights(folder):
    edit_json(folder / "config.json", lambda c: c.update(hidden_sizes=[64, 128, 320, 512], decoder_hidden_size=256))


def preprocessor(size):
    return lambda folder: (folder / "preprocessor_config.json").write_text(json.dumps({"size": size}))


def set_config(**values):
    return lambda folder: edit_json(folder / "config.json", lambda c: c.update(values))


HF = [
    # item 3: sizes, files and JSON shapes
    ("depths-3000", lambda f: edit_json(f / "config.json", lambda c: c["depths"].__setitem__(-1, 3000)), "depths="),
    ("hidden-size-str", set_config(hidden_sizes=[16, 32, 40, "64"]), "hidden_sizes="),
    ("heads-huge", set_config(num_attention_heads=[1, 2, 5, 10**6]), "num_attention_heads="),
    ("labels-1500", set_config(id2label={str(i): f"c{i}" for i in range(1500)}), "id2label"),
    ("num-labels-huge", set_config(num_labels=10**7), "num_labels="),
    ("preprocessor-4000sq", preprocessor({"height": 4000, "width": 4000}), "8..2048"),
    ("preprocessor-str", preprocessor("512"), "size '512'"),
    ("preprocessor-list-json", lambda f: (f / "preprocessor_config.json").write_text("[1, 2]"), "JSON list"),
    ("config-linked-3gb", linked_config, "is a link"),
    ("weights-linked", lambda f: ((f / "model.safetensors").rename(f.parent / "w.safetensors"),
                                  (f / "model.safetensors").symlink_to(f.parent / "w.safetensors")), "is a link"),
    ("config-list", lambda f: (f / "config.json").write_text("[1, 2, 3]"), "JSON list"),
    ("config-100000-deep", deep_config, "nested beyond"),
    ("config-over-1mb", lambda f: (f / "config.json").write_text(" " * (2**20 + 1) + "{}"), "larger than 1 MB"),
    ("config-no-model-type", set_config(model_type=None), "model_type"),
    ("config-unknown-type", set_config(model_type="no-such-model"), "does not know"),
    ("config-architectures-str", set_config(architectures="SegformerForSemanticSegmentation"), "architectures"),
    ("config-channels-1", set_config(num_channels=1), "num_channels=1"),
    # item 3: weights that fit none of the model, or leave part of it random
    ("weights-fit-none", foreign_weights, "none of its"),
    ("weights-missing-head", headless_weights, "missing weights: decode_head"),
    ("weights-wrong-shape", wrong_shapes, "shape mismatches: decode_head.classifier.weight"),
    ("config-wider-than-weights", wider_than_weights, "shape mismatches"),
    ("weights-missing", lambda f: (f / "model.safetensors").unlink(), "no model.safetensors"),
    ("weights-not-safetensors", lambda f: (f / "model.safetensors").write_bytes(b"\x08" + b"\0" * 7 + b"{}garbage"),
     "not a readable safetensors"),
]


@pytest.mark.parametrize("spoil,words", [c[1:] for c in HF], ids=[c[0] for c in HF])
def test_hostile_transformers_folders_are_refused_before_the_model_exists(folder, spoil, words):
    spoil(folder)
    refused(lambda: vizattn.load(str(folder)), words)


def test_transformers_models_are_costed_at_the_preprocessor_size_before_loading(folder, monkeypatch, capfd):
    import transformers

    (folder / "preprocessor_config.json").write_text(json.dumps({"size": {"height": 96, "width": 160}}))
    sizes = []
    real = schema.estimate_cost
    monkeypatch.setattr(schema, "estimate_cost", lambda model, size=(1024, 1024): sizes.append(size) or real(model, size))
    monkeypatch.setattr(schema, "MAX_FOREIGN_GFLOPS", 1e-6)
    monkeypatch.setattr(transformers.PreTrainedModel, "from_pretrained",
                        classmethod(lambda *a, **k: pytest.fail("weights loaded before costing")))
    refused(lambda: vizattn.load(str(folder)), "GFLOPs", "96×160 image")
    assert sizes == [(96, 160)]
    monkeypatch.undo()
    model = vizattn.load(str(folder))  # the folder itself is fine, and loads without transformers' own reports
    assert model.size == (96, 160)
    printed = capfd.readouterr()
    assert "LOAD REPORT" not in printed.err + printed.out and "Loading weights" not in printed.err


def test_a_task_checkpoint_still_opens_as_its_base_model(folder):
    """Without `architectures`, the AutoModel of its type (the base model) takes the task checkpoint's weights; the
    task head's weights are left aside, as transformers does, and the base model is complete."""
    edit_json(folder / "config.json", lambda c: c.pop("architectures"))
    model = vizattn.load(str(folder))
    assert type(model).__name__ == "SegformerModel"


def test_a_half_precision_folder_is_costed_and_loaded_in_float32(tmp_path):
    from tests.foreign.test_observe import segformer

    segformer("sdpa", 5).half().save_pretrained(tmp_path / "fp16", safe_serialization=True)
    model = vizattn.load(str(tmp_path / "fp16"))
    assert next(model.parameters()).dtype == torch.float32


# a few of the above through the CLI: exit code 2, one line on stderr, nothing written
def cli_cases(tmp_path, folder):
    wide = tmp_path / "wide.pth"
    wide.write_bytes(narrow_checkpoint("nl", None, **{CONV_SEG: hollow(19, 7000, 0, 1)}))
    confused = tmp_path / "confused.pth"
    confused.write_bytes(narrow_checkpoint("nl", "model = 5"))
    deep = tmp_path / "deep"
    shutil.copytree(folder, deep)
    edit_json(deep / "config.json", lambda c: c["depths"].__setitem__(-1, 3000))
    alien = tmp_path / "alien"
    shutil.copytree(folder, alien)
    foreign_weights(alien)
    return [(wide, "channels=7000"), (confused, "model is int"), (deep, "depths="), (alien, "none of its")]


def test_the_cli_refuses_hostile_foreign_models_in_one_line(tmp_path, folder):
    for model, words in cli_cases(tmp_path, folder):
        out = tmp_path / f"out-{model.name}"
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "vizattn.cli", "query", "--model", str(model), "--image", "scene:1",
                            "--pixel", "10,10", "--out", str(out)], capture_output=True, text=True, timeout=120)
        took = time.perf_counter() - t0
        assert r.returncode == 2, (model, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("vizattn: ") and words in lines[0], (model, r.stderr)
        assert "Traceback" not in r.stderr and not r.stdout.strip()
        assert not out.exists() or not any(out.iterdir())
        assert took < TIME_CAP_S + 20  # a fresh interpreter imports torch first; the refusal itself is measured below


def test_the_cli_refusals_stay_within_memory_and_time(tmp_path, folder, capsys):
    from benchmarks.measure import peak_memory_mib
    from vizattn.cli import main

    for model, words in cli_cases(tmp_path, folder):
        out = tmp_path / f"out-{model.name}"
        codes = []
        t0 = time.perf_counter()
        peak = peak_memory_mib(lambda: codes.append(main(["query", "--model", str(model), "--image", "scene:1",
                                                          "--pixel", "10,10", "--out", str(out)])), torch.device("cpu"))
        assert time.perf_counter() - t0 < TIME_CAP_S and peak < PEAK_CAP_MIB, (model, peak)
        err = capsys.readouterr().err.strip().splitlines()
        assert codes == [2] and len(err) == 1 and err[0].startswith("vizattn: ") and words in err[0], (model, err)
        assert not out.exists() or not any(out.iterdir())


def test_refusals_are_sentences_not_tracebacks():
    """The library raises VizattnError only: nothing else escapes the foreign doors for these files."""
    blob = narrow_checkpoint("nl", "model = dict(decode_head=dict(type=[1]))")
    with pytest.raises(VizattnError, match="inconsistent"):
        vizattn.load(blob, file_name="typed.pth")


def test_the_page_refuses_hostile_foreign_models_with_one_sentence_and_keeps_its_model(tmp_path, folder):
    """The same files through the app (AppTest): uploaded or named by path, each gives one sentence in the sidebar,
    no exception reaches the page, and the page still shows a model."""
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "app.py"), default_timeout=120)
    at.run()
    cases = cli_cases(tmp_path, folder)
    at.sidebar.radio(key="model_source").set_value("upload a checkpoint").run()
    for model, words in cases[:2]:  # the two mmseg files, uploaded
        at.sidebar.file_uploader(key="ckpt_upload").upload(model.name, model.read_bytes()).run()
        assert not at.exception, at.exception
        errors = [e.value for e in at.sidebar.error]
        assert any(words in e and "\n" not in e for e in errors), (model.name, errors)
    at.sidebar.radio(key="model_source").set_value("a checkpoint path on this machine").run()
    for model, words in cases[2:]:  # the two transformers folders, by path
        at.sidebar.text_input(key="ckpt_path").set_value(str(model)).run()
        assert not at.exception, at.exception
        errors = [e.value for e in at.sidebar.error]
        assert any(words in e and "\n" not in e for e in errors), (model.name, errors)
    assert any(m.value.startswith("Query pixel") for m in at.markdown)  # the page still shows a model
