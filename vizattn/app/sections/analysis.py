"""The Analysis tab: the papers' analyses on this image and, on request, attributions of the query pixel."""
from __future__ import annotations

import streamlit as st

from vizattn.app.cache import forward_budget_s, work_guard, image_analyses
from vizattn.app.pure import analysis_rows, has_truth
from vizattn.data import CLASSES as SCENE_CLASSES


def analysis_view(model, fw, src, pixel, chosen):
    """The papers' analyses on this image; the full versions over many scenes are in `vizattn report`."""
    import copy

    from vizattn.analysis.attribution import attribution_report
    from vizattn.evaluate import to_tensor
    from vizattn.viz.analysis_figures import attribution_figure, psa_figure

    if not fw.records:
        return
    if not model.provenance.ours:
        st.info("The analyses run on vizattn's own models; for another model use the Attention, Statistics and "
                "Export tabs, `vizattn query` / `vizattn compare`, or `vizattn report --models PATH --images DIR`.")
        return
    truth = has_truth(src.labels, fw.classes, SCENE_CLASSES)
    numbers = image_analyses(st.session_state["forward_key"], fw, src.labels if truth else None,
                             src.instances if truth else None)
    st.dataframe(analysis_rows(numbers), hide_index=True)
    where = [{"module": m, "query class": c, **v} for m, table in numbers["where"].items() for c, v in table.items()]
    if where:
        st.dataframe(where, hide_index=True)
        st.caption(f"Where attention lands, by the query's class ({'ground truth' if truth else 'the prediction'}): "
                   "mass on its own class and instance, mean distance in px; 48 sampled queries.")
    st.caption(f"Main view per module: {', '.join(sorted({r.default_view for r in fw.records.values()}))}. "
               "Over 20 scenes with the papers' numbers beside ours: `vizattn report --out DIR`.")
    if numbers.get("psa"):
        st.pyplot(psa_figure(numbers["psa"]))
    if not chosen:
        return
    main = [i for i, p in enumerate(chosen) if p.main]
    pick = st.selectbox("Attention map to correlate with", range(len(chosen)), index=main[0] if main else 0,
                        format_func=lambda i: chosen[i].title + (" (main view)" if i in main else ""), key="attr_view")
    target = chosen[pick]
    if st.button("Attribute this pixel (Integrated Gradients, Saliency, LayerGradCam)", key="attribute"):
        waiting = st.empty()
        # the same guard and budget as forwards: one heavy job at a time, stopped at a module boundary when spent
        with st.spinner("Attributing… (32 integration steps, in chunks of 4)"), \
                work_guard(forward_budget_s()).slot(lambda: waiting.info("Waiting for another session's model…")):
            private = copy.deepcopy(model)  # captum hooks the layer: never on the model other sessions share
            layer = dict(private.named_modules())[target.module]
            rep = attribution_report(private, to_tensor(src.image), pixel, target.grid_map, layer)
        waiting.empty()
        st.pyplot(attribution_figure(src.image, target.grid_map, rep["maps"], pixel, rep["rank_correlation"],
                                     f"attention: {target.view}"))
        st.caption(f"ρ: Spearman rank correlation with the attention map ({target.title}) on the feature grid.")
