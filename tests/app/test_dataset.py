"""AppTest: the Data set tab opens a `vizattn analyze` folder, draws its statistics, and a selected extreme opens
that image at that query pixel with the statistic's value; links and foreign folders are refused with a sentence."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from vizattn.analyze import Job, analyze
from vizattn.zoo import available

APP = str(Path(__file__).resolve().parents[2] / "app.py")
pytestmark = pytest.mark.skipif(not available(), reason="needs the bundled models in vizattn/pretrained/")


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("analyze") / "out"
    analyze(Job(model="criss_cross", scenes=2, queries=8, size=96), out, progress=False)
    return out


def open_folder(path) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    at.session_state["section"] = "Data set"
    at.run()
    at.text_input(key="dataset_path").set_value(str(path)).run()
    assert not at.exception, at.exception
    return at


def query_line(at) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("Query pixel"))


def test_selecting_an_extreme_opens_that_image_at_that_pixel(run_folder):
    import pyarrow.parquet as pq

    at = open_folder(run_folder)
    assert not at.error, [e.value for e in at.error]
    stat = at.selectbox(key="dataset_stat").value
    table = at.dataframe[0].value
    row = table.iloc[1]
    extremes = pq.read_table(run_folder / "extremes.parquet").to_pandas()
    assert len(table) == (extremes["statistic"] == stat).sum()
    assert ((extremes["image"] == row["image"]) & (extremes["y"] == row["y"]) & (extremes["x"] == row["x"])).any()
    row = row.to_dict() | {"statistic": stat}

    at.sidebar.selectbox(key="model_name").select("isa").run()  # the drill-down switches to the run's model
    at.session_state[f"dataset_extremes_{stat}"] = {"selection": {"rows": [1], "columns": []}}
    at.run()
    assert not at.exception, at.exception
    assert f"Query pixel **({row['y']}, {row['x']})**" in query_line(at)
    seed = row["image"].split(":")[1]
    assert any(f"Showing scene{seed}" in i.value for i in at.sidebar.info)
    note = " ".join(s.value for s in at.success)
    assert f"{row['value']:.3g}** at ({row['y']}, {row['x']})" in note and f"rank {row['rank']} {row['end']}" in note
    assert f"class {row['class']}, module criss\\_cross" in note
    assert at.sidebar.selectbox(key="model_name").value == "criss_cross"
    at.run()  # a later rerun keeps the pinned pixel (the selection is handled once)
    assert f"Query pixel **({row['y']}, {row['x']})**" in query_line(at)

    at.sidebar.button(key="drill_back").click().run()  # back to the sidebar's own image: the 384×384 sample
    assert not at.exception and "Query pixel **(192, 192)**" in query_line(at)


def test_a_folder_that_is_no_analyze_output_is_one_sentence(tmp_path):
    at = open_folder(tmp_path)
    assert any("has no summary.json" in e.value for e in at.error), [e.value for e in at.error]


def copied_run(run_folder: Path, copy: Path) -> Path:
    """A copy of the run's files in `copy`, to spoil one of them."""
    copy.mkdir()
    for f in run_folder.iterdir():
        if f.is_file():
            (copy / f.name).write_bytes(f.read_bytes())
    return copy


def test_a_linked_file_is_refused(run_folder, tmp_path):
    copy = copied_run(run_folder, tmp_path / "linked")
    (copy / "rows.parquet").unlink()
    (copy / "rows.parquet").symlink_to(run_folder / "rows.parquet")
    at = open_folder(copy)
    assert any("symbolic link" in e.value for e in at.error), [e.value for e in at.error]


def test_a_fifo_or_an_oversized_file_is_refused_in_its_own_sentence(run_folder, tmp_path, monkeypatch):
    import os

    from vizattn.app.sections import dataset

    copy = copied_run(run_folder, tmp_path / "odd")
    (copy / "summary.json").unlink()
    os.mkfifo(copy / "summary.json")  # no writer: a blocking read would freeze the page
    at = open_folder(copy)
    assert any("summary.json' is not a regular file; open the --out folder" in e.value for e in at.error), \
        [e.value for e in at.error]
    (copy / "summary.json").unlink()
    (copy / "summary.json").write_bytes((run_folder / "summary.json").read_bytes())
    monkeypatch.setitem(dataset.LIMITS, "summary.json", 16)  # the same file, over a limit it passes
    at = open_folder(copy)
    assert any("summary.json' is larger than" in e.value and "it was not read" in e.value for e in at.error), \
        [e.value for e in at.error]


def test_off_loopback_the_tab_explains_and_offers_no_path_field(monkeypatch):
    import streamlit

    monkeypatch.setattr(streamlit, "get_option", lambda name, _get=streamlit.get_option:
                        "0.0.0.0" if name == "server.address" else _get(name))  # served to the network
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    at.session_state["section"] = "Data set"
    at.run()
    assert not at.exception and not [t for t in at.text_input if t.key in ("dataset_path", "dataset_images")]
    assert any("bound to 127.0.0.1" in i.value for i in at.info)


# --- an analyze started from the page ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """Three small photographs-to-be: generated scenes written as PNGs (H≠W)."""
    from PIL import Image

    from vizattn.data import generate_scene

    folder = tmp_path_factory.mktemp("images")
    for i in range(3):
        Image.fromarray(generate_scene(7 + i, (40, 56)).image).save(folder / f"img{i}.png")
    return folder


def data_set_tab() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    at.session_state["section"] = "Data set"
    at.run()
    return at


def fill(at, images, out) -> AppTest:
    at.text_input(key="dataset_images").set_value(str(images))
    at.text_input(key="dataset_out").set_value(str(out))
    at.number_input(key="dataset_queries").set_value(8)
    at.number_input(key="dataset_shard").set_value(1)  # one image per shard: three shards
    return at


def run_thread():
    import threading

    return next((t for t in threading.enumerate() if t.name == "vizattn-analyze"), None)


def finish(at) -> AppTest:
    """Wait for the background run, then rerun the page (what the progress fragment's polling does)."""
    thread = run_thread()
    if thread is not None:
        thread.join(120)
        assert not thread.is_alive()
    at.run()
    assert not at.exception, at.exception
    return at


def texts(elements) -> str:
    return " ".join(e.value for e in elements)


def progress_text(at) -> str:
    return " ".join(p.proto.text for p in at.get("progress"))


class Gate:
    """Wraps vizattn.analyze.analyze so that a run pauses once, when `done == 1` (after the first shard of a fresh
    run; at the start of a resumed one), until the test lets it go: progress and cancel are then deterministic."""

    def __init__(self, monkeypatch):
        import threading

        import vizattn.analyze as analyze_module

        self.reached, self.go = threading.Event(), threading.Event()
        real = analyze_module.analyze

        def gated(*args, on_shard, **kwargs):
            paused = []

            def on(done, total):
                on_shard(done, total)  # the page's callback: the progress it shows
                if done == 1 and not paused:
                    paused.append(True)
                    self.reached.set()
                    assert self.go.wait(60)
                    self.go.clear()
                    on_shard(done, total)  # and again: a cancel pressed meanwhile stops the run here

            return real(*args, on_shard=on, **kwargs)

        monkeypatch.setattr(analyze_module, "analyze", gated)

    def wait(self):
        assert self.reached.wait(60)
        self.reached.clear()


def test_an_analyze_started_from_the_page_shows_progress_and_opens_its_folder(images, tmp_path, monkeypatch):
    gate = Gate(monkeypatch)
    out = tmp_path / "run"
    at = fill(data_set_tab(), images, out)
    assert "Model: **criss\\_cross** (the sidebar's)" in texts(at.caption)
    at.button(key="dataset_start_button").click().run()
    gate.wait()
    at.run()  # while it runs the page reruns freely and shows how far it is
    assert not at.exception and "1 of 3 shards" in progress_text(at), progress_text(at)
    assert at.button(key="dataset_start_button").disabled  # one run at a time per server
    gate.go.set()
    finish(at)
    assert at.text_input(key="dataset_path").value == str(out)  # opened as if typed in
    assert "Finished: 3 shards" in texts(at.success)
    assert not at.error and len(at.dataframe[0].value) > 0
    assert at.selectbox(key="dataset_stat").value


def test_a_cancelled_run_resumes_to_the_numbers_of_an_uninterrupted_one(images, tmp_path, monkeypatch):
    import json

    import pandas as pd

    from vizattn.analyze import Job, analyze

    gate = Gate(monkeypatch)
    out = tmp_path / "run"
    at = fill(data_set_tab(), images, out)
    at.button(key="dataset_start_button").click().run()
    gate.wait()  # the first shard is written
    at.run()
    at.button(key="dataset_cancel").click().run()
    gate.go.set()
    finish(at)
    assert "Cancelled after 1 of 3 shards" in texts(at.warning), texts(at.warning)
    assert sorted(p.name for p in (out / "shards").glob("*.json")) == ["00000.json"]
    assert not (out / "summary.json").exists() and at.text_input(key="dataset_path").value == ""

    at.button(key="dataset_start_button").click().run()  # the same settings, kept: resume
    gate.wait()
    at.run()
    assert "Resuming: 1 of 3 shards already done." in texts(at.caption)
    gate.go.set()
    finish(at)
    assert "Finished: 3 shards (1 resumed from an earlier run)" in texts(at.success)
    assert at.text_input(key="dataset_path").value == str(out)

    whole = tmp_path / "whole"
    analyze(Job(model="criss_cross", images=str(images.resolve()), queries=8), whole, shard_size=1, progress=False)
    for name in ("rows.parquet", "extremes.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(out / name), pd.read_parquet(whole / name))
    summary = [json.loads((f / "summary.json").read_text())["summary"] for f in (out, whole)]
    assert summary[0] == summary[1]


def test_what_the_page_cannot_analyse_is_one_sentence(images, tmp_path):
    at = fill(data_set_tab(), images / "img0.png", tmp_path / "run")  # a file, not a folder
    at.button(key="dataset_start_button").click().run()
    assert not at.exception and run_thread() is None
    assert any("is not a folder" in e.value for e in at.error), texts(at.error)
    fill(at, images, images).button(key="dataset_start_button").click().run()  # the images' own folder as output
    assert run_thread() is None and "other than the images' own" in texts(at.error), texts(at.error)

    at.sidebar.radio(key="model_source").set_value("upload a checkpoint").run()  # a model only this page holds
    assert any("uploaded checkpoint lives only in this page's memory" in w.value for w in at.warning)
    assert at.button(key="dataset_start_button").disabled


@pytest.mark.parametrize("key, module, name", [
    ("query_independence|ann:apnb|attention", "ann:apnb", "map distance between queries (GCNet): attention maps"),
    ("coverage|loop1", "", "positions reached after loop 1"),  # the model's: the chart takes the row's model
    ("unary_binary|danet (softmax self weight)|unary", "danet", "weight on itself (unary share)"),
    ("unary_binary|danet (softmax self weight)|unary_max", "danet", "largest weight on itself"),
    ("unary_binary|lesa (gate 1/(1+w))|binary", "lesa", "binary share of the gate (LESA)"),
    ("psa|psa_parallel|spatial|saturated", "psa_parallel", "PSA spatial weights: saturated share"),
    ("a|key|from|elsewhere", "", "a|key|from|elsewhere"),
])
def test_the_other_statistics_are_named_as_the_analysis_tab_names_them(key, module, name):
    from vizattn.app.sections.dataset import statistic_name

    assert statistic_name(key) == (module, name)
