"""What a click changes: the clickable image beside the open tab (the Attention panels first), the query line,
the prediction, ground truth and confidence behind an expander, and the tabs (a Streamlit fragment)."""
from __future__ import annotations

import numpy as np
import streamlit as st

from vizattn.app.clickable_image import clickable_image
from vizattn.app.cache import bundled_model, cached_backdrop, forward_for, opening_forward, prediction_pngs
from vizattn.app.errors import one_sentence
from vizattn.app.pure import domain_warning, has_truth, side_by_side_css
from vizattn.app.query import CLICK_KEY, current_pixel, held_factors, query_controls
from vizattn.app.sections.analysis import analysis_view
from vizattn.app.sections.attention import attention_view
from vizattn.app.sections.compare import compare_view
from vizattn.app.sections.dataset import dataset_view
from vizattn.app.sections.export import export_view
from vizattn.app.sections.statistics import statistics_view
from vizattn.data import CLASSES as SCENE_CLASSES
from vizattn.text import markdown_text
from vizattn.viz.overlay import heat_overlay, label_overlay

SECTIONS = ("Attention", "Compare models", "Statistics", "Analysis", "Export", "Data set")


@st.fragment
def explore(model_key, model_label, model, src, opts):
    """Everything a click changes. A click reruns only this fragment (not the sidebar), and only the open
    section is computed and sent: the browser redraws what the person is looking at, nothing else."""
    with one_sentence():  # a fragment's errors never reach the script's handler: shown here, as sentences
        _explore(model_key, model_label, model, src, opts)


def _explore(model_key, model_label, model, src, opts):
    from vizattn.explore import panels, unmapped

    y, x = current_pixel(src.image.shape[:2])  # a forward's shape is its image's
    # the first screen (the Attention tab at the default pixel) from the kept opening while the live forward is
    # not ready: no PyTorch import stands between the server's start and the first map
    fw = opening_forward(model_key, src, (y, x)) if model is None and _attention_open() else None
    kept = fw is not None
    if not kept:
        if model is None:  # a bundled model, loaded on first use
            model = bundled_model(model_key)
        fw = forward_for(model_key, src.key, model, src.image)
    st.session_state["forward_key"] = f"{model_key}|{src.key}"
    chosen = panels(fw, y, x) if fw.records else []
    main = chosen[0] if chosen else None  # the first module's main view: panels() puts main views first
    truth = has_truth(src.labels, fw.classes, SCENE_CLASSES)  # generated scenes carry our classes

    # point here, see there: the image, bounded by the window's height, and beside it the open tab
    h, w = fw.shape
    st.html(f"<style>{side_by_side_css(w / h, image_key=CLICK_KEY)}</style>")  # one share for every tab
    left, right = st.columns([1, 1], gap="medium")
    with left:
        if main:  # coloured per grid cell and spread (the same pixels), over a backdrop made once per image
            shown = heat_overlay(src.image, main.image_map, opts["alpha"], opts["cmap"], opts["norm"],
                                 pixel=(y, x), box=main.cell_box, clip=opts["clip"], under=opts["under"],
                                 uniform=main.uniform,
                                 grid=main.grid_map,
                                 base=cached_backdrop(src.key, opts["under"], src.image))
        else:
            shown = label_overlay(src.image, fw.prediction, fw.palette)
        clickable_image(shown, key=CLICK_KEY)  # fits its column; the pointer over it drives the panel grid
    with right:
        if not fw.records:
            st.info(f"'{model_label}' has no attention module vizattn can read; pick another model, or name its "
                    "attention modules with `vizattn.capture(model, modules=[...])` in Python.")
        for reason in unmapped(fw):
            st.caption(reason)
        # a photograph through a model of generated scenes (an upload of the kept opening's scene loads the model)
        if src.labels is None and (model or bundled_model(model_key)).provenance.scene_trained:
            st.warning(domain_warning())
        tabs = st.tabs(SECTIONS, key="section", on_change="rerun")  # lazy: only the open tab runs
        views = (lambda: attention_view(model_label, src, chosen, (y, x), opts, model),
                 lambda: compare_view(src, (y, x), opts),
                 lambda: statistics_view(chosen, src, fw),
                 lambda: analysis_view(model, fw, src, (y, x), chosen, opts),
                 lambda: export_view(model_label, model, fw, src, (y, x), opts),
                 dataset_view)
        for tab, view in zip(tabs, views):
            if tab.open:
                with tab, one_sentence():  # said in the tab: the query controls below the image still draw
                    view()
    with left:  # below the image, sent after the open tab: the maps need not wait behind these widgets
        cls = markdown_text(fw.classes[fw.prediction[y, x]])
        gt = f" · truth **{markdown_text(fw.classes[src.labels[y, x]])}**" if truth else ""
        st.markdown(f"Query pixel **({y}, {x})** · predicted **{cls}** ({fw.confidence[y, x]:.0%}){gt}")
        query_controls(fw.shape)
        legend(fw)
        # lazy: drawn only while open, from PNGs encoded once per (model, image) and passed through as they are
        with st.expander("Prediction, ground truth and confidence" if truth else "Prediction and confidence",
                         key="prediction_strip", on_change="rerun") as strip:
            if strip.open:
                pictures = prediction_pngs(st.session_state["forward_key"], src.image, fw, src.labels if truth else None)
                st.image(pictures["prediction"], caption="Prediction", width="stretch", output_format="PNG")
                truth_col, conf_col = st.columns(2)
                if truth:
                    truth_col.caption("Ground truth")
                    truth_col.image(pictures["truth"], width="stretch", output_format="PNG")
                conf_col.caption("Confidence (0 … 1)", help="the largest class probability: dark 0, bright 1")
                conf_col.image(pictures["confidence"], width="stretch", output_format="PNG")
    if kept and held_factors("attn_grid"):
        # the browser holds the first screen (the grid said so, which reran this fragment): now the live forward,
        # PyTorch's import included, so that the next click finds it ready. In this script thread, after the screen
        # is sent: a thread of its own would import PyTorch beside other runs' imports, which Python cannot do
        # safely for a package with circular imports like PyTorch's.
        forward_for(model_key, src.key, bundled_model(model_key), src.image)


def _attention_open() -> bool:
    """Whether this run draws the Attention tab (the tabs' kept state: the first tab until another is opened)."""
    return st.session_state.get("section") in (None, SECTIONS[0])


def legend(fw) -> None:
    """The prediction's colours: every class, or (over 12) the classes predicted in this image."""
    present = np.unique(fw.prediction) if len(fw.classes) > 12 else range(len(fw.classes))
    st.markdown(" ".join(  # class names come from files: escaped, never markup
        f"<span style='white-space:nowrap'><span style='background:rgb{tuple(int(v) for v in fw.palette[i])};"
        f"padding:0 6px;border-radius:3px'>&nbsp;</span> {markdown_text(fw.classes[i])}</span>"
        for i in present), unsafe_allow_html=True)
    if len(fw.classes) > 12:
        st.caption(f"Legend: the classes predicted in this image ({len(present)} of {len(fw.classes)}).")
