"""The query pixel: clicks on the image and on the panel grids, the number inputs and the one-cell steps."""
from __future__ import annotations

import streamlit as st

from vizattn.app.pure import click_pixel, stepped_pixel
from vizattn.errors import VizattnError

CLICK_KEY = "image_click"
GRID_KEYS = ("attn_grid", "compare_grid", "diff_grid")  # the panel grids: a click on a panel moves the query too


def component_value(key: str):
    """What the component under `key` (the clickable image, a panel grid) last said, or None: its one state value
    `value` (a click {x, y, width, height, t}; a grid's pin {y, x, panel, have, t} or {have, t}), as the browser
    sent it: `click_pixel` refuses what is not a position."""
    state = st.session_state.get(key)
    return state.get("value") if hasattr(state, "get") else None


def held_factors(key: str) -> str | None:
    """The factors key the panel grid under `key` says it holds (every value it sends names it), or None."""
    said = component_value(key)
    return said.get("have") if isinstance(said, dict) else None


def current_pixel(shape) -> tuple[int, int]:
    h, w = shape
    if "pixel" not in st.session_state or st.session_state.get("pixel_shape") != (h, w):
        st.session_state["pixel"] = (h // 2, w // 2)
        st.session_state["pixel_shape"] = (h, w)
    drilled = st.session_state.pop("drill_pixel", None)  # the Data set tab's extreme, in the image it opened
    if drilled is not None and 0 <= drilled[0] < h and 0 <= drilled[1] < w:
        st.session_state["pixel"], st.session_state["pixel_shape"] = tuple(drilled), (h, w)
    for key in (CLICK_KEY, *GRID_KEYS):
        click = component_value(key)
        if not click or click == st.session_state.get(f"handled_{key}"):
            continue
        st.session_state[f"handled_{key}"] = click
        if isinstance(click, dict) and "have" in click and "y" not in click:
            continue  # the grid saying which factors it holds, not a click
        try:
            st.session_state["pixel"] = click_pixel(click, key == CLICK_KEY, (h, w))
        except VizattnError as err:
            st.warning(str(err))
    return st.session_state["pixel"]


def _typed_pixel(key_y: str, key_x: str) -> None:
    st.session_state["pixel"] = (int(st.session_state[key_y]), int(st.session_state[key_x]))


def _step_pixel(dy: int, dx: int, shape) -> None:
    st.session_state["pixel"] = stepped_pixel(st.session_state["pixel"], dy, dx, shape)


def query_controls(shape):
    """Number inputs and one-cell steps; callbacks move the query before the rerun, so it draws once."""
    h, w = shape
    y, x = st.session_state["pixel"]
    c1, c2 = st.columns(2)  # the image's column is narrow: the inputs on one row, the steps on the next
    keys = (f"qy_{y}_{x}", f"qx_{y}_{x}")  # new keys when the query moves elsewhere, so the inputs follow
    c1.number_input("y", 0, h - 1, y, key=keys[0], on_change=_typed_pixel, args=keys)
    c2.number_input("x", 0, w - 1, x, key=keys[1], on_change=_typed_pixel, args=keys)
    step = 8  # one feature-grid cell at output stride 8
    c3, c4, c5, c6 = st.columns(4)
    for col, label, (dy, dx) in ((c3, "◀", (0, -step)), (c4, "▲", (-step, 0)), (c5, "▼", (step, 0)), (c6, "▶", (0, step))):
        col.button(label, key=f"move{label}", on_click=_step_pixel, args=(dy, dx, shape), width="stretch")
