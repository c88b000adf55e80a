"""The Compare models tab: every bundled attention model's main view at the query pixel, side by side."""
from __future__ import annotations

import streamlit as st

from vizattn.app.cache import bundled_model, forward_for, loaded
from vizattn.app.panel_grid import show_grid
from vizattn.app.sections import state_marker
from vizattn.bundled import available, model_card


def attention_models() -> list[str]:
    return [n for n in available() if model_card(n).get("module")]


def picked_models() -> list[str]:
    """The comparison's models, kept while its tab is closed (a widget that is not drawn loses its state)."""
    return st.session_state.get("compare_picked", attention_models())


def compare_forwards(src, picked) -> dict:
    return {n: loaded(forward_for(n, src.key, bundled_model(n), src.image)) for n in picked}


def compare_view(src, pixel, opts):
    picked = st.multiselect("Models", attention_models(), default=picked_models())
    st.session_state["compare_picked"] = picked
    if not picked:
        return
    from vizattn.export import compare_panels

    chosen, titles, predictions = compare_panels(compare_forwards(src, picked), pixel, None)
    show_grid(src, chosen, titles, opts, 3, f"{len(picked)} models at pixel {pixel}", "compare_grid",
              f"{','.join(picked)}|{src.key}", predictions)
    state_marker("compare-state", f"compare for {pixel} over {len(picked)} models")
