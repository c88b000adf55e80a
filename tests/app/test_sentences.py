"""The page always shows its own sentences, also from inside the click fragment: a non-finite output, a model
that fails on the image, the forward budget and a busy server reach the page as one sentence each, never as
Streamlit's redacted "This app has encountered an error"."""

import pytest
from streamlit.testing.v1 import AppTest

from tests.app.pages import page_with



def with_factory(spec: str, monkeypatch, budget: str = "300") -> AppTest:
    monkeypatch.setenv("VIZATTN_FORWARD_BUDGET_S", budget)
    return page_with(spec, timeout=120)


def errors(at) -> list[str]:
    return [e.value for e in at.error]


@pytest.mark.parametrize("spec, words", [
    ("tests.support.factories:nan_model", "not finite (NaN or Inf)"),
    ("tests.support.factories:failing_model", "The model failed on this 384×384 image"),
])
def test_a_failing_forward_shows_its_sentence(spec, words, monkeypatch):
    at = with_factory(spec, monkeypatch)
    assert any(words in e for e in errors(at)), errors(at)


def test_the_forward_budget_stops_a_model_that_reports_no_progress(monkeypatch):
    at = with_factory("tests.support.factories:slow_model", monkeypatch, budget="1")
    assert any("was stopped so that other sessions are served" in e for e in errors(at)), errors(at)


def test_a_busy_server_says_so(monkeypatch):
    from vizattn.app.cache import work_guard

    guard = work_guard(2.0)  # the page's own guard for this budget (one per server process)
    with guard.slot():  # another session's forward holds the only slot
        at = with_factory("tests.support.factories:plain_model", monkeypatch, budget="2")
    assert any("busy with another session's model" in e for e in errors(at)), errors(at)
