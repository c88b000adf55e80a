"""The query pixel: clicks on the image and on the panel grids, the number inputs and the one-cell steps, and the
relay that makes the clickable image drive the panel grid as the grid's own panels do."""
from __future__ import annotations

import streamlit as st

from vizattn.app.pure import click_pixel, stepped_pixel
from vizattn.errors import VizattnError

CLICK_KEY = "image_click"
GRID_KEYS = ("attn_grid", "compare_grid", "diff_grid")  # the panel grids: a click on a panel moves the query too

# The clickable image and the panel grid are two components (two same-origin iframes). This script, run once in
# the page, hands the pointer's moves over the image to the grid's first panel at the same fraction of the image
# (the grid then repaints every panel for the pixel under the pointer, as when the pointer is on a panel). A click
# pins the image pixel under it in the grid at once (its `pin`: the grid sends the one value back, GRID_KEYS);
# with no grid on the page, or a grid without `pin`, the image keeps its own click (CLICK_KEY).
RELAY = """<script>
(() => {
  if (window.vizattnRelay) return;
  window.vizattnRelay = true;
  const IMAGE = "iframe[title*='streamlit_image_coordinates']", GRID = "iframe[title*='vizattn_panel_grid']";
  function stage() {
    for (const f of document.querySelectorAll(GRID)) {
      const s = f.contentDocument && f.contentDocument.querySelector(".stage");
      if (s && f.getBoundingClientRect().width > 0) return s;
    }
    return null;
  }
  function tell(s, type, fx, fy) {
    const t = s.getBoundingClientRect(), View = s.ownerDocument.defaultView;
    s.dispatchEvent(new View.MouseEvent(type, { bubbles: true, clientX: t.left + fx * t.width,
                                                 clientY: t.top + fy * t.height }));
  }
  function attach() {
    for (const f of document.querySelectorAll(IMAGE)) {
      const win = f.contentWindow, img = f.contentDocument && f.contentDocument.getElementById("image");
      if (!img || win.vizattnRelayed) continue;
      win.vizattnRelayed = true;
      const inside = v => Math.min(0.9999, Math.max(0, v));
      const at = e => [inside(e.offsetX / img.width), inside(e.offsetY / img.height)];
      img.addEventListener("mousemove", e => { const s = stage(); if (s) tell(s, "mousemove", ...at(e)); });
      img.addEventListener("mouseleave", () => {
        const s = stage();
        if (s) s.dispatchEvent(new s.ownerDocument.defaultView.MouseEvent("mouseleave"));
      });
      win.addEventListener("click", e => {  // capture: before the image's own handler
        const s = e.target === img && stage(), grid = s && s.ownerDocument.defaultView;
        if (!grid || typeof grid.pin !== "function") return;
        const [fx, fy] = at(e);  // the image pixel, as the page maps the image's own clicks (vizattn.app.pure.click_pixel)
        grid.pin(Math.floor(fy * img.naturalHeight), Math.floor(fx * img.naturalWidth), 0);
        tell(s, "mousemove", fx, fy);
        e.stopImmediatePropagation();
      }, true);
      f.contentDocument.body.dataset.relay = "yes";
    }
  }
  setInterval(attach, 250);  // the grid keeps two lines for its title itself (style.css), so hovering moves nothing
})();
</script>"""


def relay_hover() -> None:
    """Let the clickable image drive the panel grid (RELAY); the script runs once per page, whatever reruns."""
    st.html(RELAY, unsafe_allow_javascript=True)


def current_pixel(shape) -> tuple[int, int]:
    h, w = shape
    if "pixel" not in st.session_state or st.session_state.get("pixel_shape") != (h, w):
        st.session_state["pixel"] = (h // 2, w // 2)
        st.session_state["pixel_shape"] = (h, w)
    drilled = st.session_state.pop("drill_pixel", None)  # the Data set tab's extreme, in the image it opened
    if drilled is not None and 0 <= drilled[0] < h and 0 <= drilled[1] < w:
        st.session_state["pixel"], st.session_state["pixel_shape"] = tuple(drilled), (h, w)
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
    c1, c2 = st.columns(2)  # the image's column is narrow: the inputs on one row, the steps on the next
    keys = (f"qy_{y}_{x}", f"qx_{y}_{x}")  # new keys when the query moves elsewhere, so the inputs follow
    c1.number_input("y", 0, h - 1, y, key=keys[0], on_change=_typed_pixel, args=keys)
    c2.number_input("x", 0, w - 1, x, key=keys[1], on_change=_typed_pixel, args=keys)
    step = 8  # one feature-grid cell at output stride 8
    c3, c4, c5, c6 = st.columns(4)
    for col, label, (dy, dx) in ((c3, "◀", (0, -step)), (c4, "▲", (-step, 0)), (c5, "▼", (step, 0)), (c6, "▶", (0, step))):
        col.button(label, key=f"move{label}", on_click=_step_pixel, args=(dy, dx, shape), width="stretch")
