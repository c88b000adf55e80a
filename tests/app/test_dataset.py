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


def test_a_linked_file_is_refused(run_folder, tmp_path):
    copy = tmp_path / "linked"
    copy.mkdir()
    for f in run_folder.iterdir():
        if f.is_file():
            (copy / f.name).write_bytes(f.read_bytes())
    (copy / "rows.parquet").unlink()
    (copy / "rows.parquet").symlink_to(run_folder / "rows.parquet")
    at = open_folder(copy)
    assert any("symbolic link" in e.value for e in at.error), [e.value for e in at.error]


def test_off_loopback_the_tab_explains_and_offers_no_path_field(monkeypatch):
    import streamlit

    monkeypatch.setattr(streamlit, "get_option", lambda name, _get=streamlit.get_option:
                        "0.0.0.0" if name == "server.address" else _get(name))  # served to the network
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    at.session_state["section"] = "Data set"
    at.run()
    assert not at.exception and not [t for t in at.text_input if t.key == "dataset_path"]
    assert any("bound to 127.0.0.1" in i.value for i in at.info)
