"""The page's sections: `explore` (the clickable image, the prediction and the tabs) and one module per tab."""
from __future__ import annotations

import streamlit as st


def state_marker(element_id: str, text: str) -> None:
    """An invisible mark of what the page shows, for the browser tests and `vizattn bench app` to wait on."""
    st.markdown(f"<div id='{element_id}' style='display:none'>{text}</div>", unsafe_allow_html=True)
