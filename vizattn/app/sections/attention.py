"""The Attention tab: the chosen model's panels at the query pixel."""
from __future__ import annotations

import streamlit as st

from vizattn.app.panel_grid import show_grid
from vizattn.app.sections import state_marker


def attention_view(model_label, src, chosen, pixel, opts):
    if not chosen:
        return
    columns = 2 if len(chosen) <= 4 else 3  # beside the clickable image: half the row
    show_grid(src, chosen, None, opts, columns, f"{model_label} at pixel {pixel}", "attn_grid", st.session_state["forward_key"])
    st.caption("The panels follow the pointer, over the image on the left or over a panel; a click pins the query "
               "there (arrow keys then move it a cell). Colorbars give the weights.")
    for note in dict.fromkeys(p.note for p in chosen if p.note):
        st.caption(note)
    state_marker("panel-state", f"panels for {pixel}")
