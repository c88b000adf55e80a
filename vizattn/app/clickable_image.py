"""The clickable image: a Streamlit v2 component drawn in the page (clickable_image.js), which also lets the pointer
over the image drive the panel grid on the page. It replaces a third-party component that drew the image in a frame
of its own: one frame less to load before the first map, and the image and the grid share one document."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import streamlit as st
from PIL import Image

_component = st.components.v2.component(
    "vizattn_clickable_image", js=(Path(__file__).with_name("clickable_image.js")).read_text(encoding="utf-8"))


def jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image).save(out, "JPEG", quality=quality)
    return out.getvalue()


def clickable_image(image: np.ndarray, key: str) -> None:
    """Show `image` (H×W×3 uint8) at its column's width; a click with no panel grid on the page sets the component's
    value {x, y, width, height, t} (read by vizattn.app.query.current_pixel)."""
    _component(data=jpeg(image), key=key)
