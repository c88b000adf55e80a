"""The attention grid as a Streamlit component. Its frontend stays in vizattn/viz/panel_grid_frontend/ (shared
with the notebook widget and the HTML export); vizattn.viz.panel_grid says what it is sent."""
from __future__ import annotations

import json

import streamlit as st
import streamlit.components.v1 as components

from vizattn.app.cache import cached_photo, hover_factors
from vizattn.viz.hover import BUDGET
from vizattn.viz.panel_grid import FRONTEND, grid_args, split_blob

_component = components.declare_component("vizattn_panel_grid", path=str(FRONTEND))


def panel_grid(args: dict, key: str) -> None:
    """Send `grid_args` to the component: its JSON as one string and the factors as the one binary argument.
    (Streamlit tests every list or dict argument for a dataframe, which imports pandas, ≈0.4 s of the first
    screen; a string it passes as it is. main.js parses it.)"""
    rest, blob = split_blob(args)
    _component(args=json.dumps(rest), blob=blob or None, key=key, default=None)


def show_grid(src, chosen, titles, opts, columns: int, title: str, key: str, forwards_key: str,
              subtitles=None) -> None:
    live = hover_factors(f"{forwards_key}|{[(p.module, p.view) for p in chosen]}", chosen) or False
    args = grid_args(src.image, chosen, titles, opts["cmap"], opts["norm"], opts["alpha"], columns, title,
                     base=cached_photo(src.key, opts["under"], src.image), clip=opts["clip"], under=opts["under"],
                     subtitles=subtitles, live=live)
    if live and (st.session_state.get(key) or {}).get("have") == args["factors_key"]:
        args["blob"] = None  # the grid said it holds these factors: a click sends the pixel, not megabytes again
    panel_grid(args, key)
    if not live:
        st.caption("This grid is too large for the browser to follow the pointer "
                   f"(its factors pass the {BUDGET >> 20} MiB budget): click a pixel to move the query.")
