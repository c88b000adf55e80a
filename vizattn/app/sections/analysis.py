"""The Analysis tab: the papers' analyses on this image and, on request, attributions of the query pixel."""
from __future__ import annotations

import streamlit as st

from vizattn.app.cache import forward_budget_s, work_guard, image_analyses
from vizattn.app.pure import WHERE_COLUMNS, analysis_rows, has_truth, where_rows
from vizattn.data import CLASSES as SCENE_CLASSES


def module_names(fw) -> tuple[dict[str, str], str | None]:
    """The analyses' labels (`module_label`, as `image_analyses` made them) -> the modules' names, and the module
    whose loops the coverage counts."""
    from vizattn.analysis.summary import module_label

    names = {module_label("model", m, len(fw.records)): m for m in fw.records}
    loops = [m for m, rec in fw.records.items() if "loop_coverage" in rec.statistics]
    return names, (loops[0] if loops else None)


def analysis_view(model, fw, src, pixel, chosen, opts):
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
    names, coverage = module_names(fw)
    share = st.column_config.NumberColumn(format="%.3f")
    rows = analysis_rows(numbers, names, coverage)
    one = len(fw.records) == 1  # then the caption names the module, and the tables leave its column out
    if rows and one:
        st.caption(f"The papers' measures of {next(iter(fw.records))} on this image:")
    if rows:  # long form (module, measure, value): it fits the tab's column whatever the measures' names
        st.dataframe([{**({} if one else {"module": r["module"]}), "measure": k, "value": v}
                      for r in rows for k, v in r.items() if k != "module"], hide_index=True, width="stretch",
                     column_config={"value": share})
    where = where_rows(numbers["where"], names)
    if where:
        st.dataframe([{k: v for k, v in r.items() if not (one and k == "module")} for r in where], hide_index=True,
                     width="stretch", column_config={
            "module": st.column_config.TextColumn("module", width="medium"),
            **{WHERE_COLUMNS[k]: st.column_config.NumberColumn(label, help=WHERE_COLUMNS[k], format=fmt, width="small")
               for k, label, fmt in (("own_class", "own class", "%.3f"), ("own_instance", "own object", "%.3f"),
                                     ("distance_px", "distance (px)", "%.1f"), ("entropy", "entropy", "%.3f"),
                                     ("queries", "queries", "%d"))}})
        st.caption(f"Where {where[0]['module'] + '’s' if one else ''} attention lands, by the query's class "
                   f"({'ground truth' if truth else 'the prediction'}): "
                   "the share of the weight on the query's own class and object, the mean distance of the weight "
                   "from the query and its entropy (0: all on one cell, 1: uniform); 48 sampled queries.")
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
                                     f"attention: {target.view}", opts["cmap"], opts["under"], columns=2))
        st.caption(f"ρ: Spearman rank correlation with the attention map ({target.title}) on the feature grid.")
