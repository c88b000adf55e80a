"""A reference page for `vizattn bench app`'s cold start: the first screen's Streamlit elements (the page's 16
widgets, its columns, tabs, expander and texts, in its layout) with none of vizattn: no model, no image work, no
component. How long Streamlit's frontend takes to draw them is the part of the first map vizattn's code cannot
shorten. The bench waits for its last text ("all drawn") and for every widget (WIDGETS_DRAWN in benchmarks/app.py):
Streamlit draws a text at once, each kind of widget once its code has arrived."""
import numpy as np
import streamlit as st

st.set_page_config(page_title="widgets alone", layout="wide")
st.title("vizattn — where did this pixel look?")
side = st.sidebar
side.header("Model")
side.radio("Source", ["bundled", "upload a checkpoint", "a checkpoint path on this machine"], horizontal=True)
side.selectbox("Bundled model", ["ann", "criss_cross", "danet", "fcn", "gc", "isa", "lesa", "nonlocal", "psa_parallel",
                                 "psa_parallel_paper", "psa_sequential", "psa_sequential_paper"], index=1)
side.caption("criss_cross · held-out mIoU 0.785")
side.caption("Shown: criss_cross — criss_cross head · told by the model card · 9 classes from vizattn's scenes")
side.header("Image")
side.radio("Source ", ["sample scene", "scene from a seed", "upload"])
side.select_slider("Scene size (px)", [256, 384, 512], value=384)
side.selectbox("Sample", [1000000007, 1000000021, 1000000042], format_func=lambda s: f"scene {s}")
side.header("Display")
side.selectbox("Colormap", ["inferno", "viridis", "magma", "plasma", "turbo", "gray"])
side.radio("Under the heatmap", ["dimmed photo", "photo", "heat only"], horizontal=True)
side.slider("Heatmap opacity", 0.0, 1.0, 0.9, 0.05)
side.slider("Contrast: saturate above this percentile", 90.0, 100.0, 100.0, 0.5)
side.radio("Normalisation", ["per-map", "shared", "log", "log shared", "relative to uniform"])
st.html("<style>.widgets-alone { display: none; }</style>")
left, right = st.columns([1, 1], gap="medium")
with left:
    st.image(np.full((384, 384, 3), 128, np.uint8), width="stretch")
    st.markdown("Query pixel **(192, 192)** · predicted **road** (90%)")
    c1, c2 = st.columns(2)
    c1.number_input("y", 0, 383, 192)
    c2.number_input("x", 0, 383, 192)
    for col, label in zip(st.columns(4), "◀▲▼▶"):
        col.button(label, width="stretch")
    legend = ("sky", "building", "road", "sidewalk", "vegetation", "terrain", "car", "person", "pole")
    st.markdown(" ".join(f"<span style='white-space:nowrap'>{c}</span>" for c in legend), unsafe_allow_html=True)
    with st.expander("Prediction, ground truth and confidence"):
        pass
    st.html("<script>window.widgetsAlone = true;</script>", unsafe_allow_javascript=True)
with right:
    tabs = st.tabs(["Attention", "Compare models", "Statistics", "Analysis", "Export", "Data set"])
    with tabs[0]:
        st.caption("The panels follow the pointer, over the image on the left or over a panel.")
        st.caption("Each loop's map and the two-loop map.")
        st.markdown("<div id='panel-state' style='display:none'>panels for (192, 192)</div>", unsafe_allow_html=True)
        st.caption("all drawn")
