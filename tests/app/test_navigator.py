"""AppTest: a transformer's Attention tab has a layer navigator; choosing a layer changes the panels; rollout and
relevance (on request) appear as maps with their choices stated; each record's verification is said once."""

import pytest
import streamlit.config

from tests.app.pages import grid_payloads, page_with
from vizattn.zoo import available

pytestmark = pytest.mark.skipif(not available(), reason="needs the bundled models in vizattn/pretrained/")


@pytest.fixture
def loopback():
    """The page offers paths on this machine only while bound to loopback (vizattn.app.sidebar.loopback_only)."""
    before = streamlit.config.get_option("server.address")
    streamlit.config.set_option("server.address", "127.0.0.1")
    yield
    streamlit.config.set_option("server.address", before)


def grid_titles(at) -> list[str]:
    """The panel titles the grid component was last sent."""
    sent = grid_payloads(at)
    return [p["title"] for p in sent[-1][0]["panels"]] if sent else []


def captions(at) -> str:
    return " ".join(c.value for c in at.caption)


def test_a_segformer_folder_gets_a_navigator_and_a_layer_changes_the_panels(tmp_path, loopback):
    from tests.foreign.test_observe import save_segformer

    save_segformer(tmp_path / "segformer")
    at = page_with(str(tmp_path / "segformer"))
    nav = at.selectbox(key="layer_group")
    assert nav.options == [f"stage {s} · block 0" for s in range(4)] + ["rollout (all layers)",
                                                                        "relevance (all layers)"]
    assert grid_titles(at) == ["stage 0 · block 0 · head 0"]
    nav.set_value("stage 2 · block 0").run()
    assert not at.exception, at.exception
    assert grid_titles(at) == ["stage 2 · block 0 · mean"] + [f"stage 2 · block 0 · head {i}" for i in range(5)]
    assert any("id='layer-state'" in m.value and ">stage 2 · block 0<" in m.value for m in at.markdown)
    assert "verified (max |Δ|" in captions(at) and "· 4 layers" in captions(at)


def test_a_vit_offers_rollout_and_relevance_on_request(loopback):
    at = page_with("tests.support.factories:tiny_vit")
    nav = at.selectbox(key="layer_group")
    assert nav.options[:12] == [f"layer {i}" for i in range(12)] and len(nav.options) == 14
    nav.set_value("layer 7").run()
    assert grid_titles(at) == ["layer 7 · mean", "layer 7 · head 0", "layer 7 · head 1", "layer 7 · head 2"]
    nav.set_value("rollout (all layers)").run()
    assert not at.exception, at.exception
    assert any("rollout for (192, 192)" in m.value for m in at.markdown)
    assert "residual 0.5" in captions(at) and "went to the class token" in captions(at)
    at.selectbox(key="layer_group").set_value("relevance (all layers)").run()
    assert not at.exception, at.exception
    assert not any("relevance for" in m.value for m in at.markdown)  # nothing computed before the button
    at.button(key="relevance_go").click().run()
    assert not at.exception, at.exception
    assert any("relevance for (192, 192)" in m.value for m in at.markdown)
    assert "Chefer" in captions(at) and "went to the class token" in captions(at)



def _open(at, section: str):
    at.session_state["section"] = section
    at.run()
    assert not at.exception, at.exception
    return at


def test_the_export_tab_exports_the_layer_the_attention_tab_shows(loopback):
    """What you see is what you export: a transformer's chosen layer (or its rollout), not every layer's panels."""
    at = page_with("tests.support.factories:tiny_vit")
    at.selectbox(key="layer_group").set_value("layer 7").run()
    at = _open(at, "Export")
    assert "The current panels (layer 7)" in captions(at)
    at.button(key="prep_Current panels").click().run()
    assert not at.exception, at.exception
    json_button = next(b for b in at.get("download_button") if b.label == "JSON")
    assert json_button.proto.help.split(":")[0].endswith("_layer-7.json")  # the file is named after the layer
    at = _open(at, "Attention")
    at.selectbox(key="layer_group").set_value("rollout (all layers)").run()
    at = _open(at, "Export")
    assert "The current panels (rollout (all layers))" in captions(at)
    json_button = next(b for b in at.get("download_button") if b.label == "JSON")
    assert json_button.proto.help.split(":")[0].endswith("_rollout.json")


def _counted_relevance(monkeypatch) -> list:
    """The pixels every relevance backward pass is run for (vizattn.analysis.relevance.relevance_details), from
    no kept relevance (the server's store, which an earlier test in this process may have filled)."""
    import vizattn.analysis.relevance as relevance
    from vizattn.app.sections.attention import _relevance_store

    _relevance_store.clear()

    calls, real = [], relevance.relevance_details
    monkeypatch.setattr(relevance, "relevance_details", lambda model, image, y, x: calls.append((y, x))
                        or real(model, image, y, x))
    return calls


def test_the_relevance_export_is_the_attention_tab_s_relevance(loopback, monkeypatch):
    """Exporting the relevance the Attention tab shows reuses its rows: no second backward pass."""
    calls = _counted_relevance(monkeypatch)
    at = page_with("tests.support.factories:tiny_vit")
    at.selectbox(key="layer_group").set_value("relevance (all layers)").run()
    at.button(key="relevance_go").click().run()
    assert not at.exception, at.exception
    assert calls == [(192, 192)]
    at = _open(at, "Export")
    assert "The current panels (relevance (all layers))" in captions(at)
    at.button(key="prep_Current panels").click().run()
    assert not at.exception, at.exception
    json_button = next(b for b in at.get("download_button") if b.label == "JSON")
    assert json_button.proto.help.split(":")[0].endswith("_relevance.json")
    assert calls == [(192, 192)]


def test_a_relevance_export_runs_a_backward_pass_only_on_its_button_and_under_the_work_guard(loopback, monkeypatch):
    """A relevance not computed yet is a backward pass: the Export tab offers a button for it (a rerun alone never
    starts one) and runs it under the server's work guard, so while another session's model holds the slot past
    the budget it says so in a sentence and runs nothing."""
    import threading

    from vizattn.app.cache import work_guard

    monkeypatch.setenv("VIZATTN_FORWARD_BUDGET_S", "1")  # the smallest budget an operator can set
    calls = _counted_relevance(monkeypatch)
    at = page_with("tests.support.factories:tiny_vit")
    at.selectbox(key="layer_group").set_value("relevance (all layers)").run()
    at = _open(at, "Export")
    assert "The relevance of pixel (192, 192) is not computed yet" in captions(at)
    assert not [b for b in at.button if b.key == "prep_Current panels"]  # nothing to export before it is computed
    at.run()
    assert calls == []
    held, release = threading.Event(), threading.Event()

    def other_session():
        with work_guard(1.0).slot():
            held.set()
            release.wait(30)

    other = threading.Thread(target=other_session)
    other.start()
    try:
        assert held.wait(10)
        at.button(key="export_relevance_go").click().run()
    finally:
        release.set()
        other.join()
    assert not at.exception, at.exception
    assert any("busy with another session's model" in e.value for e in at.error)
    assert calls == []
    at.button(key="export_relevance_go").click().run()  # the slot free again: computed once, then exportable
    assert not at.exception, at.exception
    assert calls == [(192, 192)]
    at.button(key="prep_Current panels").click().run()
    json_button = next(b for b in at.get("download_button") if b.label == "JSON")
    assert json_button.proto.help.split(":")[0].endswith("_relevance.json")
    assert calls == [(192, 192)]


def test_a_layer_export_holds_that_layer_s_panels_with_their_short_titles():
    import json

    from tests.support.factories import tiny_vit
    from vizattn.explore import panels, run_model
    from vizattn.export import image_source, query_export
    from vizattn.layers import layer_groups

    src = image_source("scene:3", 96)
    fw = run_model(tiny_vit(), src.image)
    chosen = panels(fw, 40, 50)
    groups = layer_groups({n: list(dict.fromkeys(p.view for p in chosen if p.module == n)) for n in fw.records})
    made = query_export("tiny_vit", fw, src, (40, 50), None, layer=groups[7])
    assert made.titles == ["layer 7 · mean", "layer 7 · head 0", "layer 7 · head 1", "layer 7 · head 2"]
    assert {p["module"] for p in made.meta["panels"]} == set(groups[7].names) and made.meta["view"] == "layer 7"
    assert made.stem.endswith("_layer-7")
    meta = json.loads(made.files(("json",))[f"{made.stem}.json"])
    assert len(meta["panels"]) == 4 and [p["view"] for p in meta["panels"]] == ["mean", "head0", "head1", "head2"]
