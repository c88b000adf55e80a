"""AppTest: the page opens on its defaults, reacts to an injected click, switches model, view and image,
and answers bad uploads with one message while keeping what was loaded."""
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.evil import evil_checkpoints
from vizattn.zoo import available

APP = str(Path(__file__).resolve().parent.parent / "app.py")
pytestmark = pytest.mark.skipif(not available(), reason="needs the bundled models in vizattn/pretrained/")


def fresh() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def open_tab(at, name: str) -> AppTest:
    at.session_state["section"] = name
    at.run()
    assert not at.exception, at.exception
    return at


def markdown_text(at) -> str:
    return " ".join(m.value for m in at.markdown)


def query_line(at) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("Query pixel"))


def test_opens_on_defaults_without_exception():
    at = fresh()
    assert at.sidebar.selectbox(key="model_name").value == "criss_cross"
    assert "Query pixel **(192, 192)**" in query_line(at)  # the centre of the 384×384 sample scene
    assert not at.error


def test_injected_click_moves_the_query_and_updates_the_panels():
    at = fresh()
    at.session_state["image_click"] = {"value": {"x": 100, "y": 50, "width": 640, "height": 640}}
    at.run()
    assert not at.exception
    assert "Query pixel **(30, 60)**" in query_line(at)  # 50·384/640, 100·384/640
    assert any("panels for (30, 60)" in m.value for m in at.markdown)


def test_a_click_on_a_panel_moves_the_query_there():
    at = fresh()
    at.session_state["attn_grid"] = {"value": {"y": 40, "x": 300, "panel": 1, "t": 1}}  # image pixels, as the grid sends them
    at.run()
    assert not at.exception
    assert "Query pixel **(40, 300)**" in query_line(at) and "panels for (40, 300)" in markdown_text(at)


def test_number_inputs_move_the_query_precisely():
    at = fresh()
    at.number_input(key="qy_192_192").set_value(10).run()
    assert "Query pixel **(10, 192)**" in query_line(at)


def test_switching_model_and_image():
    at = fresh()
    at.sidebar.selectbox(key="model_name").select("isa").run()
    assert not at.exception and "panels for" in " ".join(m.value for m in at.markdown)
    at.sidebar.radio(key="image_source").set_value("scene from a seed").run()
    at.sidebar.number_input(key="seed").set_value(5).run()
    assert not at.exception and "truth" in query_line(at)
    at.sidebar.selectbox(key="model_name").select("fcn").run()
    assert not at.exception and any("no attention module" in i.value for i in at.info)


def test_bad_image_upload_shows_one_message_and_keeps_the_page():
    at = fresh()
    at.sidebar.radio(key="image_source").set_value("upload").run()
    at.sidebar.file_uploader(key="image_upload").upload("broken.png", b"\x89PNG\r\n\x1a\nnot really").run()
    assert not at.exception
    assert any("not a readable image" in e.value for e in at.sidebar.error)
    assert "Query pixel" in query_line(at)


def test_good_image_upload_is_used():
    buf = io.BytesIO()
    Image.fromarray(np.full((60, 90, 3), 128, np.uint8)).save(buf, "PNG")
    at = fresh()
    at.sidebar.radio(key="image_source").set_value("upload").run()
    at.sidebar.file_uploader(key="image_upload").upload("grey.png", buf.getvalue()).run()
    assert not at.exception and "Query pixel **(30, 45)**" in query_line(at)


def test_bad_and_unsafe_checkpoints_show_one_message(tmp_path):
    at = fresh()
    at.sidebar.radio(key="model_source").set_value("upload a checkpoint").run()
    at.sidebar.file_uploader(key="ckpt_upload").upload("junk.safetensors", b"garbage bytes").run()
    assert not at.exception and any("not a readable safetensors" in e.value for e in at.sidebar.error)
    target = tmp_path / "ran.txt"
    for name, blob in evil_checkpoints(target).items():
        at.sidebar.file_uploader(key="ckpt_upload").upload(name, blob).run()
        assert not at.exception and any(("would run code" in e.value or "not a readable" in e.value)
                                         for e in at.sidebar.error), name
    assert not target.exists()
    assert "Query pixel" in query_line(at)  # the page still shows the model it had


def test_step_buttons_move_one_feature_cell():
    at = fresh()
    at.button(key="move▶").click().run()
    assert "Query pixel **(192, 200)**" in query_line(at)
    at.button(key="move▲").click().run()
    assert "Query pixel **(184, 200)**" in query_line(at)


def test_only_the_open_tab_is_computed_and_drawn():
    at = fresh()
    assert "panels for (192, 192)" in markdown_text(at) and "compare for" not in markdown_text(at)
    open_tab(at, "Compare models")
    attention_models = len([n for n in available() if n != "fcn"])  # every bundled model with a module
    assert f"compare for (192, 192) over {attention_models} models" in markdown_text(at) and "panels for" not in markdown_text(at)
    at.session_state["image_click"] = {"value": {"x": 100, "y": 50, "width": 640, "height": 640}}
    at.run()
    assert f"compare for (30, 60) over {attention_models} models" in markdown_text(at)  # the open grid follows the click


def test_compare_tab_keeps_the_chosen_models_while_closed():
    at = open_tab(fresh(), "Compare models")
    at.multiselect[0].set_value(["isa", "gc"]).run()
    assert "over 2 models" in markdown_text(at)
    open_tab(at, "Attention")
    open_tab(at, "Compare models")
    assert "over 2 models" in markdown_text(at)


def test_statistics_tab_draws_the_charts_in_one_figure():
    at = open_tab(fresh(), "Statistics")
    charts = at.get("plotly_chart")
    assert len(charts) == 1
    fig = json.loads(charts[0].proto.spec)
    titles = [a["text"] for a in fig["layout"]["annotations"]]
    assert titles[:3] == ["Entropy", "Mean attended distance", "Weight on the query's class"]
    bars = [d for d in fig["data"] if d["type"] == "bar"]
    ticks = [d for d in fig["data"] if d["type"] == "scatter"]
    assert len(bars) == len(titles) and len(ticks) >= 3
    views = bars[0]["y"]
    assert views == ["effective", "loop1", "loop2"]  # labelled by view, the main view first
    assert all(len(b["text"]) == len(views) for b in bars[:3])  # the numbers are on the bars
    assert ticks[0]["x"] == [1.0] * 3  # a uniform map's entropy, beside each view's
    assert fig["layout"]["xaxis"]["title"]["text"] == "0: all on one cell · 1: uniform"


def test_analysis_tab_attributes_the_clicked_pixel():
    at = open_tab(fresh(), "Analysis")
    before = len(at.get("image"))
    at.button(key="attribute").click().run()
    assert not at.exception
    assert len(at.get("image")) == before + 1  # the attribution figure beside the attention map
    assert any("Spearman" in c.value for c in at.caption)


def test_export_buttons_offer_every_format():
    at = open_tab(fresh(), "Export")
    at.button(key="prep_Current panels").click().run()
    assert not at.exception
    labels = [b.label for b in at.get("download_button")]
    assert {"PNG", "SVG", "PDF", "HTML", "NPZ", "JSON"} <= set(labels)


def test_comparison_export_works_without_opening_the_compare_tab():
    at = open_tab(fresh(), "Export")
    at.button(key="prep_Comparison grid").click().run()
    assert not at.exception
    labels = [b.label for b in at.get("download_button")]
    assert sorted(labels) == ["HTML", "JSON", "NPZ", "PDF", "PNG", "SVG"]


def test_a_photograph_through_a_scene_model_is_said_and_confidence_shown():
    at = fresh()
    assert not any("never seen a photograph" in w.value for w in at.warning)  # a generated scene: its own domain
    at.sidebar.radio(key="image_source").set_value("upload").run()
    photo = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (120, 160, 3), np.uint8)).save(photo, "PNG")
    at.sidebar.file_uploader(key="image_upload").upload("street.png", photo.getvalue()).run()
    assert not at.exception
    assert any("never seen a photograph" in w.value for w in at.warning)
    at.session_state["prediction_strip"] = True  # the strip open: the confidence is drawn
    at.run()
    assert any("Confidence" in c.value for c in at.caption)


def sidebar_captions(at) -> str:
    """The sidebar's captions as the reader sees them (file-borne text is markdown-escaped in the source)."""
    return " ".join(c.value for c in at.sidebar.caption).replace("\\", "")


def test_the_sidebar_names_the_bundled_model_shown_by_its_provenance():
    from vizattn.app.pure import provenance_line
    from vizattn.text import markdown_text
    from vizattn.zoo import load

    at = fresh()
    for name in ("criss_cross", "gc"):
        if name != "criss_cross":
            at.sidebar.selectbox(key="model_name").select(name).run()
        model = load(name)
        # what the sidebar draws from the card before PyTorch is what the loader says
        line = markdown_text(f"Shown: {name} — {provenance_line(model.provenance, len(model.classes))}")
        assert line in " ".join(c.value for c in at.sidebar.caption)
        assert f"sha256 {model.provenance.sha256[:12]}" in sidebar_captions(at)


def test_choosing_upload_before_a_file_shows_the_default_labelled_never_the_last_model():
    at = fresh()
    at.sidebar.selectbox(key="model_name").select("isa").run()
    assert any("isa at pixel" in m.value or "panels for" in m.value for m in at.markdown)
    at.sidebar.radio(key="model_source").set_value("upload a checkpoint").run()
    assert not at.exception
    infos = " ".join(i.value for i in at.sidebar.info)
    assert "No checkpoint uploaded yet" in infos and "bundled default, criss_cross" in infos
    assert "Shown: isa" not in sidebar_captions(at)  # the model of the other source is gone
    assert at.session_state["forward_key"].startswith("criss_cross|")  # the page shows the default, not isa
    uploader = at.sidebar.file_uploader(key="ckpt_upload")
    assert uploader.proto.max_upload_size_mb == 512  # what vizattn.io reads at most (MAX_CHECKPOINT_BYTES)


def test_an_uploaded_checkpoint_is_named_and_a_bad_one_after_it_keeps_it_and_says_so(tmp_path):
    import torch

    from vizattn.models.segmenter import ModelConfig, build_model
    from vizattn.zoo import save

    torch.manual_seed(0)
    save(build_model(ModelConfig("gc")).eval(), tmp_path / "mine.safetensors")
    at = fresh()
    at.sidebar.radio(key="model_source").set_value("upload a checkpoint").run()
    at.sidebar.file_uploader(key="ckpt_upload").upload("mine.safetensors", (tmp_path / "mine.safetensors").read_bytes()).run()
    assert not at.exception and "Shown: mine-safetensors — gc head" in sidebar_captions(at)
    assert not at.sidebar.info
    at.sidebar.file_uploader(key="ckpt_upload").upload("junk.safetensors", b"garbage").run()
    assert any("not a readable safetensors" in e.value for e in at.sidebar.error)
    assert "Shown: mine-safetensors" in sidebar_captions(at)  # refused: what was shown is said, and stays
    at.sidebar.radio(key="model_source").set_value("bundled").run()
    assert "Shown: criss_cross" in sidebar_captions(at)


def test_image_upload_texts_are_true_and_the_scene_size_is_only_for_scenes():
    at = fresh()
    assert at.sidebar.select_slider(key="scene_size").value == 384
    at.sidebar.select_slider(key="scene_size").set_value(256).run()
    at.sidebar.radio(key="image_source").set_value("upload").run()
    assert not at.exception
    assert not [s for s in at.sidebar.select_slider if s.key == "scene_size"]  # hidden for uploads
    uploader = at.sidebar.file_uploader(key="image_upload")
    assert "PNG, JPEG, BMP, TIFF or WebP" in uploader.label
    assert uploader.proto.max_upload_size_mb == 64 and set(uploader.proto.type) >= {".png", ".webp", ".tif", ".bmp"}
    assert any("No image uploaded yet" in i.value for i in at.sidebar.info)
    assert "Query pixel **(128, 128)**" in query_line(at)  # the stand-in sample scene keeps the chosen size
    at.sidebar.radio(key="image_source").set_value("sample scene").run()
    assert at.sidebar.select_slider(key="scene_size").value == 256


def test_analysis_tables_name_the_module_with_headers_for_people():
    at = open_tab(fresh(), "Analysis")
    frames = at.dataframe
    assert len(frames) == 2
    first, where = (f.value for f in frames)
    assert list(first.columns) == ["measure", "value"]  # one module: named in the caption, not in a column
    assert {"positions reached after loop 1", "positions reached after all loops"} <= set(first["measure"])
    assert any("measures of head.context" in c.value for c in at.caption)  # the module, never "model"
    assert list(where.columns)[:2] == ["query class", "mass on own class"] and "mean distance (px)" in where.columns
    assert not any("_" in c for c in list(first["measure"]) + list(where.columns))
    assert any("head.context’s attention lands" in c.value for c in at.caption)


def test_statistics_table_names_every_view_in_full():
    at = open_tab(fresh(), "Statistics")
    (table,) = (f.value for f in at.dataframe)
    assert list(table.columns) == ["view", "statistic", "this view", "a uniform map"]
    assert set(table["view"]) == {"effective", "loop1", "loop2"}
    assert "mean distance (px)" in set(table["statistic"])


def test_the_prediction_strip_draws_only_while_open_and_shows_the_forward_s_images():
    """Closed (the default), a click encodes no prediction images; opened, it shows the prediction, the ground
    truth of a generated scene and the confidence, as the PNGs of the forward's own arrays."""
    from vizattn.app.pure import confidence_image
    from vizattn.explore import run_model
    from vizattn.export import image_source
    from vizattn.viz.overlay import label_overlay
    from vizattn.zoo import load

    at = fresh()
    assert not at.get("image")  # closed: nothing drawn inside
    at.session_state["prediction_strip"] = True
    at.run()
    assert not at.exception, at.exception
    assert len(at.get("image")) == 3  # prediction, truth, confidence
    src = image_source("scene:1000000007", 384)
    fw = run_model(load("criss_cross"), src.image)
    from vizattn.app.cache import prediction_pngs

    pngs = prediction_pngs("check", src.image, fw, src.labels)
    expected = {"prediction": label_overlay(src.image, fw.prediction, fw.palette),
                "truth": label_overlay(src.image, src.labels, fw.palette, 0.7),
                "confidence": confidence_image(fw.confidence)}
    for name, array in expected.items():  # PNG is lossless: the page shows exactly these pixels
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(pngs[name]))), array)
