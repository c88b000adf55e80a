"""The query pixel: clicks on the image and on the panel grids, the number inputs and the one-cell steps."""
from __future__ import annotations

import streamlit as st

from vizattn.app.pure import click_pixel, stepped_pixel
from vizattn.errors import VizattnError

CLICK_KEY = "image_click"
GRID_KEYS = ("attn_grid", "compare_grid")  # the panel grids: a click on a panel moves the query too


def current_pixel(shape) -> tuple[int, int]:
    h, w = shape
    if "pixel" not in st.session_state or st.session_state.get("pixel_shape") != (h, w):
        st.session_state["pixel"] = (h // 2, w // 2)
        st.session_state["pixel_shape"] = (h, w)
    for key in (CLICK_KEY, *GRID_KEYS):
        click = st.session_state.get(key)
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
    c1, c2, c3, c4, c5, c6 = st.columns([2, 2, 1, 1, 1, 1])
    keys = (f"qy_{y}_{x}", f"qx_{y}_{x}")  # new keys when the query moves elsewhere, so the inputs follow
    c1.number_input("y", 0, h - 1, y, key=keys[0], on_change=_typed_pixel, args=keys)
    c2.number_input("x", 0, w - 1, x, key=keys[1], on_change=_typed_pixel, args=keys)
    step = 8  # one feature-grid cell at output stride 8
    for col, label, (dy, dx) in ((c3, "◀", (0, -step)), (c4, "▲", (-step, 0)), (c5, "▼", (step, 0)), (c6, "▶", (0, step))):
        col.button(label, key=f"move{label}", on_click=_step_pixel, args=(dy, dx, shape))
