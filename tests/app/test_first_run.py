"""A session's first run sends the image and its maps before the sidebar's widgets (vizattn.app.sidebar.first_choice):
what it draws then is what the sidebar says, so the next run draws the same screen."""
from streamlit.testing.v1 import AppTest

from tests.app.pages import APP
from tests.app.test_navigator import _walk
from vizattn.app.panel_grid import unpack


def sent(at) -> list[dict]:
    return [unpack(el.proto.bytes)[0] for el in _walk(at._tree)
            if getattr(el, "type", "") == "bidi_component" and "vizattn_panel_grid" in el.proto.component_name]


def test_the_first_screen_drawn_before_the_sidebar_is_the_one_the_sidebar_then_asks_for():
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    assert not at.exception
    first = sent(at)
    assert first and first[0]["title"] == "criss_cross at pixel (192, 192)"
    assert at.sidebar.selectbox(key="model_name").value == "criss_cross"
    assert at.sidebar.radio(key="image_source").value == "sample scene"
    at.run()  # nothing changed: the sidebar drawn first this time, the same screen
    assert not at.exception and sent(at) == first


def test_a_session_that_chose_something_draws_its_sidebar_first():
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    at.sidebar.selectbox(key="model_name").select("gc").run()
    assert not at.exception and sent(at)[0]["title"] == "gc at pixel (192, 192)"
