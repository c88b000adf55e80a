"""Hardening, round 2: a bounded corpus of hostile inputs, generated here (no stored binaries), through the library,
the CLI and the app. Each gets one sentence, within bounded time and memory; nothing runs, and nothing is written
outside the output folder."""
import io
import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save as save_safetensors

import vizattn
from vizattn import io as vio
from vizattn import jsonsafe, schema
from benchmarks.measure import peak_memory_mib
from vizattn.errors import VizattnError
from vizattn.models.segmenter import ModelConfig, build_model

PEAK_CAP_MIB = 300  # every refusal below happens before anything large is allocated
TIME_CAP_S = 10


def one_sentence(err: Exception) -> str:
    text = str(err)
    assert "\n" not in text and "Traceback" not in text and text.rstrip().endswith((".", ")")), text
    return text


def refused(fn, *words) -> str:
    """fn() raises VizattnError with these words, in bounded time and extra peak memory."""
    caught = {}

    def call():
        with pytest.raises(VizattnError) as info:
            fn()
        caught["err"] = info.value

    t0 = time.perf_counter()
    peak = peak_memory_mib(call, torch.device("cpu"))
    assert time.perf_counter() - t0 < TIME_CAP_S
    assert peak < PEAK_CAP_MIB, f"{peak:.0f} MiB"
    text = one_sentence(caught["err"])
    for w in words:
        assert w in text, text
    return text


def own_checkpoint(config: dict, weights_of: str = "criss_cross") -> bytes:
    """A vizattn safetensors checkpoint: real (small) weights with the configuration a hostile user wrote."""
    state = {k: v.contiguous() for k, v in build_model(ModelConfig(weights_of)).state_dict().items()}
    return save_safetensors(state, metadata={"vizattn_config": json.dumps(config)})


BAD_CONFIGS = [
    ({"head": "criss_cross", "module_options": {"recurrence": 3000}}, "recurrence=3000"),
    ({"head": "criss_cross", "num_classes": 10**9}, "num_classes"),
    ({"head": "criss_cross", "head_channels": 10**6}, "head_channels"),
    ({"head": "criss_cross", "widths": [32, 64, 2**20]}, "widths"),
    ({"head": "criss_cross", "widths": "abc"}, "widths"),
    ({"head": "criss_cross", "num_classes": True}, "num_classes"),
    ({"head": "criss_cross", "num_classes": -3}, "num_classes"),
    ({"head": "criss_cross", "dilation": 2.5}, "dilation"),
    ({"head": "isa", "module_options": {"group": [0, 8]}}, "group"),
    ({"head": "isa", "module_options": {"group": [10**5, 10**5]}}, "group"),
    ({"head": "criss_cross", "module_options": {"evil": 1}}, "evil"),
    ({"head": "criss_cross", "extra": {"a": 1}}, "extra"),
    ({"head": "nope"}, "head"),
    ({"num_classes": 9}, "without a head"),
]


@pytest.mark.parametrize("config,words", BAD_CONFIGS, ids=[w for _, w in BAD_CONFIGS])
def test_hostile_configs_are_refused_before_anything_is_built(config, words):
    blob = own_checkpoint(config)
    refused(lambda: vizattn.load(blob, file_name="hostile.safetensors"), words, "hostile.safetensors")


def test_a_config_that_fits_no_weights_allocates_nothing():
    """Within every bound (widths 1024, 1024 head channels, 4096 classes: a 1.3 GB model), but the file holds the
    weights of a 1.8 MB model: checked on the meta device, refused before a byte of the big model exists."""
    blob = own_checkpoint({"head": "criss_cross", "widths": [1024, 1024, 1024], "head_channels": 1024,
                           "num_classes": 4096})
    refused(lambda: vizattn.load(blob, file_name="big.safetensors"), "does not fit", "shape mismatches")


def test_the_cost_of_a_model_is_estimated_before_it_is_built(monkeypatch):
    """The forward's FLOPs and largest tensor at 1024² come from a meta-device run: over the limit, refused."""
    blob = own_checkpoint({"head": "criss_cross"})
    gflops, biggest = schema.estimate_cost(build_model(ModelConfig("criss_cross")).eval().to("meta"))
    assert 10 < gflops < 100 and 2**20 < biggest < 2**30  # the zoo's criss-cross model: ~22 GFLOPs
    monkeypatch.setattr(schema, "MAX_GFLOPS", 5.0)
    refused(lambda: vizattn.load(blob, file_name="heavy.safetensors"), "GFLOPs", "heavy.safetensors")
    monkeypatch.setattr(schema, "MAX_GFLOPS", 1000.0)
    assert vizattn.load(blob, file_name="fine.safetensors").config.head == "criss_cross"


def test_metadata_nested_shared_or_self_referential_is_refused_at_once():
    state = build_model(ModelConfig("fcn")).state_dict()
    shared = []
    for _ in range(60):  # 2^60 leaves through shared references: a few bytes as a pickle
        shared = [shared, shared]
    loop = []
    loop.append(loop)
    for meta in (shared, loop):
        buf = io.BytesIO()
        torch.save({"state_dict": state, "meta": meta}, buf)
        refused(lambda: vio.read_checkpoint(buf.getvalue(), "nested.pt"), "metadata nested or sized beyond")


def torch_zip(entries_from: bytes, extra: dict[str, bytes], compress) -> bytes:
    """A torch checkpoint's archive rewritten with `compress`, plus extra entries."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(entries_from)) as src, zipfile.ZipFile(out, "w", compress) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
        for name, data in extra.items():
            dst.writestr(name, data)
    return out.getvalue()


def test_archives_are_checked_before_torch_reads_them(monkeypatch):
    buf = io.BytesIO()
    torch.save(build_model(ModelConfig("fcn")).state_dict(), buf)
    prefix = zipfile.ZipFile(io.BytesIO(buf.getvalue())).namelist()[0].split("/")[0]
    bomb = torch_zip(buf.getvalue(), {f"{prefix}/data/999": bytes(64 * 2**20)}, zipfile.ZIP_DEFLATED)
    assert len(bomb) < 2 * 2**20  # 64 MB of zeros inflate from a few hundred kB
    calls = []
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(1))
    refused(lambda: vio.read_checkpoint(bomb, "bomb.pt"), "compressed")
    monkeypatch.setattr(vio, "MAX_INFLATED_BYTES", 2**20)  # stored entries adding up past the limit
    refused(lambda: vio.read_checkpoint(buf.getvalue(), "big.pt"), "once read")
    assert not calls  # refused from the directory alone: torch never read either


def test_refusals_are_remembered_by_content(monkeypatch):
    blob = b"not a checkpoint at all" * 10
    with pytest.raises(VizattnError, match="first.pt"):
        vio.read_checkpoint(blob, "first.pt")
    monkeypatch.setattr(vio, "_read_torch", lambda *a: pytest.fail("parsed twice"))
    monkeypatch.setattr(vio, "_read_safetensors", lambda *a: pytest.fail("parsed twice"))
    with pytest.raises(VizattnError, match="again.pt"):  # the same sentence, under the name it has now
        vio.read_checkpoint(blob, "again.pt")



def test_one_refusal_memory_serves_the_page_and_the_library(monkeypatch):
    """The page's caches keep no refusal of their own: an upload refused by the sidebar's cached load is refused
    again by the next rerun and by the library at once, from `vizattn.errors.REFUSALS`, without parsing again."""
    import vizattn.zoo as zoo
    from vizattn.app import cache
    from vizattn.errors import REFUSALS

    blob = vio.Content(b"neither safetensors nor a torch archive" * 8, "first.pt")
    before = len(REFUSALS)
    with pytest.raises(VizattnError, match="first.pt"):
        cache.uploaded_model(blob.sha256[:16], blob, "first.pt", None)
    assert len(REFUSALS) == before + 2  # the bytes (read_checkpoint) and the load (upload, its head)
    monkeypatch.setattr(zoo, "load", lambda *a, **k: pytest.fail("loaded twice"))
    monkeypatch.setattr(vio, "_read_torch", lambda *a: pytest.fail("parsed twice"))
    monkeypatch.setattr(vio, "_read_safetensors", lambda *a: pytest.fail("parsed twice"))
    with pytest.raises(VizattnError, match="first.pt"):  # a rerun: Streamlit cached no error, the memory answers
        cache.uploaded_model(blob.sha256[:16], blob, "first.pt", None)
    with pytest.raises(VizattnError, match="renamed.pt"):  # the library, same bytes under another name
        vio.read_checkpoint(bytes(blob), "renamed.pt")
    assert not [n for n in vars(vio) if "REFUSED" in n.upper()]  # no second memory in io


def test_the_refusal_memory_is_bounded_and_forgets_the_oldest():
    from vizattn.errors import Refusals

    memory = Refusals(limit=3)

    def refuse(i):
        raise VizattnError(f"refused {i}")

    for i in range(5):
        with pytest.raises(VizattnError):
            memory.run(i, refuse, i)
    assert len(memory) == 3
    assert memory.run(0, lambda: "read again") == "read again"  # forgotten: run again
    with pytest.raises(VizattnError, match="refused 4"):
        memory.run(4, lambda: pytest.fail("run again"))

def jpeg(size=(64, 48), **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (*size[::-1], 3), np.uint8)).save(buf, "JPEG", **kw)
    return buf.getvalue()


def test_images_are_opened_by_content_and_decoding_work_is_bounded(tmp_path):
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nnewpath 0 0 moveto 10 10 lineto stroke\nshowpage\n"
    refused(lambda: vio.read_image(eps, "photo.png"), "not a PNG, JPEG", "photo.png")
    gif = io.BytesIO()
    Image.new("RGB", (8, 8)).save(gif, "GIF")
    refused(lambda: vio.read_image(gif.getvalue(), "anim.png"), "not a PNG, JPEG")
    progressive = jpeg(progressive=True)
    assert 2 < progressive.count(b"\xff\xda") <= vio.MAX_JPEG_SCANS  # a real progressive JPEG: about 10 scans
    assert vio.read_image(progressive, "ok.jpg").shape == (48, 64, 3)
    # thousands of (empty) scans: the marker counted before any decoding
    many = progressive[:-2] + b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00" * 3000 + b"\xff\xd9"
    refused(lambda: vio.read_image(many, "scans.jpg"), "3,0", "scans")


def test_export_figures_stay_bounded_whatever_the_aspect_ratio():
    from vizattn.explore import panels, run_model
    from vizattn.viz.figures import matplotlib_grid

    model = vizattn.load("criss_cross")
    for shape in ((8, 1024), (1024, 8)):
        image = np.random.default_rng(1).integers(0, 255, (*shape, 3), np.uint8)
        chosen = panels(run_model(model, image), shape[0] // 2, shape[1] // 2)
        w, h = matplotlib_grid(image, chosen).get_size_inches()
        assert w <= 3.2 * 4 and h <= 3.2 * 4 * 1 + 0.5  # at most 4:1 per cell, one row of 3 panels


def test_many_classes_and_non_finite_outputs():
    from vizattn.explore import run_model

    class Wide(torch.nn.Module):
        def __init__(self, k, fill=None):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, k, 1)
            self.fill = fill

        def forward(self, x):
            out = self.conv(x)
            with torch.no_grad():
                out[:, -1] += 100.0  # the last class wins everywhere
            return out if self.fill is None else out.fill_(self.fill)

    image = np.zeros((16, 16, 3), np.uint8)
    fw = run_model(Wide(300).eval(), image)
    assert fw.prediction.dtype == np.int32 and int(fw.prediction.max()) == 299  # no wrap at 256
    assert len(fw.classes) == 300 and fw.palette.shape == (300, 3)
    refused(lambda: run_model(Wide(5, float("nan")).eval(), image), "not finite")


def test_json_exports_are_valid_json_even_with_non_finite_numbers():
    def strict(text):
        return json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))

    assert strict(jsonsafe.dumps({"a": float("nan"), "b": [np.float32("inf"), 1.5], "c": np.arange(2)})) == \
        {"a": None, "b": [None, 1.5], "c": [0, 1]}


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "vizattn.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def test_cli_refuses_bad_paths_counts_and_planted_links(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    out = tmp_path / "out"
    out.mkdir()
    (out / "isa_scene1_y1x1_all.json").symlink_to(victim)
    link_dir = tmp_path / "linked"
    link_dir.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    cases = [
        (["query", "--model", "isa", "--image", "scene:1", "--pixel", "1,1", "--out", str(out)], "symbolic link"),
        (["query", "--model", "isa", "--image", "scene:1", "--pixel", "1,1", "--out", str(link_dir)], "symbolic link"),
        (["query", "--model", "isa", "--image", "scene:1", "--pixel", "1,1", "--out", "/dev/null"], "not a folder"),
        (["query", "--model", "isa", "--image", "scene:-1", "--pixel", "1,1", "--out", str(out)], "scene:SEED"),
        (["query", "--model", ".", "--image", "scene:1", "--pixel", "1,1", "--out", str(out)], "is a folder"),
        (["query", "--model", "isa", "--image", "scene:1", "--pixel", "1,1,1", "--out", str(out)], "--pixel"),
        (["evaluate", "--model", "isa", "--scenes", "0"], "outside 1..10000"),
        (["report", "--out", str(out), "--scenes", "-5"], "outside 1..10000"),
    ]
    for args, words in cases:
        r = cli(*args, cwd=tmp_path)
        assert r.returncode == 2, (args, r.stderr)
        last = r.stderr.strip().splitlines()[-1]
        assert words in last and "Traceback" not in r.stderr, (args, r.stderr)
    assert victim.read_text() == "keep"
    assert sorted(p.name for p in out.iterdir()) == ["isa_scene1_y1x1_all.json"]  # nothing written beside it
    assert not (tmp_path / "elsewhere").exists()


def test_app_shows_one_sentence_for_each_hostile_upload_and_keeps_its_model():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "app.py"), default_timeout=120).run()
    at.sidebar.radio(key="model_source").set_value("upload a checkpoint").run()
    uploads = [("recurrence.safetensors", own_checkpoint({"head": "criss_cross", "module_options": {"recurrence": 3000}}),
                "recurrence=3000"),
               ("wide.safetensors", own_checkpoint({"head": "criss_cross", "widths": [1024, 1024, 1024]}), "does not fit")]
    for name, blob, words in uploads:
        at.sidebar.file_uploader(key="ckpt_upload").upload(name, blob).run()
        errors = [e.value for e in at.sidebar.error]
        assert any(words in e for e in errors), errors
        assert not at.exception
    at.sidebar.radio(key="image_source").set_value("upload").run()
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    at.sidebar.file_uploader(key="image_upload").upload("photo.png", eps).run()
    assert any("not a PNG, JPEG" in e.value for e in at.sidebar.error)
    for click in ({"x": "a", "y": None}, {"x": float("nan"), "y": 1, "width": 0, "height": 0}, [1, 2], {"x": 1e308, "y": 1e308}):
        at.session_state["image_click"] = {"value": click}  # the component's one state value
        at.run()
        assert not at.exception
        assert any("without a usable position" in w.value or "outside" in w.value for w in at.warning), click
