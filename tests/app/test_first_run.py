"""A session's first run sends the image and its maps before the sidebar's widgets (vizattn.app.sidebar.first_choice):
what it draws then is what the sidebar says, so the next run draws the same screen."""
import pytest
import streamlit
from streamlit.testing.v1 import AppTest

from tests.app.pages import APP, grid_payloads
from vizattn.app import page, sidebar


def sent(at) -> list[dict]:
    return [args for args, _ in grid_payloads(at)]


@pytest.fixture
def calls(monkeypatch):
    """The order in which the page draws its parts, and what first_choice said each run; a rerun (the sidebar
    disagreeing with the first screen) fails."""
    order, choices = [], []

    def spy(name, fn):
        def wrapped(*args, **kwargs):
            order.append(name)
            return fn(*args, **kwargs)
        return wrapped

    def choice():
        choices.append(sidebar.first_choice())
        return choices[-1]

    def no_rerun(*args, **kwargs):
        raise AssertionError("the sidebar disagreed with the first screen")

    from vizattn.app.cache import _live

    _live.clear()  # as in a fresh server: no live forward of the default model yet (other tests may have run one)
    monkeypatch.setattr(page, "first_choice", choice)
    monkeypatch.setattr(page, "explore", spy("explore", page.explore))
    monkeypatch.setattr(page, "pick_model", spy("sidebar", page.pick_model))
    monkeypatch.setattr(streamlit, "rerun", no_rerun)
    return order, choices


def test_the_first_screen_goes_out_before_the_sidebar_and_is_the_one_the_sidebar_asks_for(calls):
    order, choices = calls
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    assert not at.exception, at.exception
    assert choices[0] is not None and choices[0][0] == "criss_cross" and order == ["explore", "sidebar"]
    first = sent(at)
    assert first and first[0]["title"] == "criss_cross at pixel (192, 192)"
    assert at.sidebar.selectbox(key="model_name").value == "criss_cross"
    assert at.sidebar.radio(key="image_source").value == "sample scene"
    at.run()  # nothing changed: the sidebar drawn first this time, the same screen
    assert not at.exception and choices[1] is None and order[2:] == ["sidebar", "explore"]
    assert sent(at) == first


def test_a_session_that_chose_something_draws_its_sidebar_first(calls):
    order, _ = calls
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    at.sidebar.selectbox(key="model_name").select("gc").run()
    assert not at.exception and sent(at)[0]["title"] == "gc at pixel (192, 192)" and order[2:] == ["sidebar", "explore"]


def test_where_the_live_forward_has_run_in_this_server_the_sidebar_comes_first(calls, monkeypatch):
    from vizattn.app import cache

    _, choices = calls
    monkeypatch.setattr(cache, "opening_fits", lambda *args: False)  # e.g. criss_cross on this scene ran live
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    assert not at.exception and choices == [None]
