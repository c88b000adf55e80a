"""The attention grid as a Streamlit component, drawn in the page (a Streamlit v2 component: a shadow root, no
frame). Its frontend stays in vizattn/viz/panel_grid_frontend/ (shared with the notebook widget and the HTML
export); vizattn.viz.panel_grid says what it is sent."""
from __future__ import annotations

import json
import struct

import streamlit as st

from vizattn.app.cache import cached_photo, hover_factors
from vizattn.app.query import held_factors
from vizattn.viz.hover import BUDGET
from vizattn.viz.panel_grid import CORE, FRONTEND, frontend_text, grid_args, split_blob

_component = st.components.v2.component(
    "vizattn_panel_grid", js=frontend_text(*CORE, "streamlit.js"),
    css=(FRONTEND / "style.css").read_text(encoding="utf-8"))


def pack(args: dict, key: str) -> bytes:
    """One binary payload (streamlit.js `unpack`): the JSON args' length (4 bytes, little-endian), the args, then the
    factors. One `bytes` goes to the browser as it is: a dict would be searched for dataframes (pandas, ≈0.4 s of
    the first screen) and its bytes would not travel as bytes."""
    rest, blob = split_blob(args)
    text = json.dumps(dict(rest, key=key)).encode()
    return struct.pack("<I", len(text)) + text + blob


def unpack(data: bytes) -> tuple[dict, bytes]:
    """(the args, the factors) of a `pack`ed payload, as streamlit.js reads it."""
    (n,) = struct.unpack_from("<I", data)
    return json.loads(data[4:4 + n]), data[4 + n:]


def panel_grid(args: dict, key: str) -> None:
    _component(data=pack(args, key), key=key)


def show_grid(src, chosen, titles, opts, columns: int, title: str, key: str, forwards_key: str,
              subtitles=None) -> None:
    live = hover_factors(f"{forwards_key}|{[(p.module, p.view) for p in chosen]}", chosen) or False
    args = grid_args(src.image, chosen, titles, opts["cmap"], opts["norm"], opts["alpha"], columns, title,
                     base=cached_photo(src.key, opts["under"], src.image), clip=opts["clip"], under=opts["under"],
                     subtitles=subtitles, live=live)
    if live and held_factors(key) == args["factors_key"]:
        args["blob"] = None  # the grid said it holds these factors: a click sends the pixel, not megabytes again
    panel_grid(args, key)
    if not live:
        st.caption("This grid is too large for the browser to follow the pointer "
                   f"(its factors pass the {BUDGET >> 20} MiB budget): click a pixel to move the query.")
