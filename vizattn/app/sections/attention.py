"""The Attention tab: the chosen model's panels at the query pixel."""
from __future__ import annotations

import streamlit as st

from vizattn.app.panel_grid import show_grid
from vizattn.app.sections import state_marker


def attention_view(model_label, src, chosen, pixel, opts):
    if not chosen:
        return
    show_grid(src, chosen, None, opts, 3, f"{model_label} at pixel {pixel}", "attn_grid", st.session_state["forward_key"])
    st.caption("The panels follow the pointer; a click pins the query there (arrow keys then move it a cell). "
               "Colorbars give the weights.")
    for note in dict.fromkeys(p.note for p in chosen if p.note):
        st.caption(note)
    state_marker("panel-state", f"panels for {pixel}")
