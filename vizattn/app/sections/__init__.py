"""The page's sections: `explore` (the clickable image, the prediction and the tabs) and one module per tab."""
from __future__ import annotations

import streamlit as st


def state_marker(element_id: str, text: str) -> None:
    """An invisible mark of what the page shows, for the browser tests and `vizattn bench app` to wait on."""
    st.markdown(f"<div id='{element_id}' style='display:none'>{text}</div>", unsafe_allow_html=True)


def kept_choice(label: str, options, key: str, default, **kwargs):
    """A radio or selectbox whose choice survives its tab being closed (kept under `key`_kept): a widget that is
    not drawn loses its state, and other tabs (the Export tab) read the kept choice."""
    kept = st.session_state.get(f"{key}_kept", default)
    index = options.index(kept) if kept in options else 0
    widget = st.radio if kwargs.pop("radio", False) else st.selectbox
    value = widget(label, options, index=index, key=key, **kwargs)
    st.session_state[f"{key}_kept"] = value
    return value
