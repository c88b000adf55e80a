"""The Statistics tab: per-view statistics at the query pixel beside a uniform map's, and the modules' gates."""
from __future__ import annotations

import numpy as np
import streamlit as st

from vizattn.app.pure import has_truth
from vizattn.data import CLASSES as SCENE_CLASSES
from vizattn.viz.figures import histogram_bars, plotly_bar_charts

STATISTICS = (  # key, chart title, axis title
    ("entropy", "Entropy", "0: all on one cell · 1: uniform"),
    ("mean_distance_px", "Mean attended distance", "pixels from the query"),
    ("mass_own_class", "Weight on the query's class", "share of the weight"),
    ("mass_own_instance", "Weight on the query's object", "share of the weight"),
)


def statistics_view(chosen, src, fw):
    from vizattn.analysis.stats import chance_statistics, panel_statistics, tidy

    if not chosen:
        return
    truthful = has_truth(src.labels, fw.classes, SCENE_CLASSES)  # scene labels are in our classes
    truth = src.labels if truthful else fw.prediction
    instances = src.instances if truthful else None
    shown = [p for p in chosen if p.distribution]
    several = len({p.module for p in shown}) > 1
    labels = [p.title if several else p.view for p in shown]
    stats = [panel_statistics(p, truth, instances) for p in shown]
    chance = [chance_statistics(p, truth, instances) for p in shown]
    charts = []
    if shown:
        st.caption(f"Per view at the clicked pixel, with what a uniform map would score (grey ticks). Class and object "
                   f"from {'the ground truth' if truthful else 'the prediction'}"
                   + ("" if truthful else "; objects need the ground truth of a generated scene") + ".")
        for key, title, axis in STATISTICS:
            if not all(key in s_ for s_ in stats):
                continue
            values = [tidy(s_[key]) for s_ in stats]
            charts.append(dict(title=title, x=labels, y=values, horizontal=True, xtitle=axis,
                               text=[f"{v:.3g}" if v else "0" for v in values], chance=[tidy(c[key]) for c in chance]))
        st.dataframe([{"view": lab, **{title: tidy(s_.get(key)) for key, title, _ in STATISTICS if key in s_},
                       **{f"{title} (uniform)": tidy(c.get(key)) for key, title, _ in STATISTICS if key in c}}
                      for lab, s_, c in zip(labels, stats, chance)], hide_index=True)
    for name, rec in fw.records.items():
        if rec.kind == "gc":
            charts.append(histogram_chart(f"{name}: GC mask weights", rec.data["mask"][0], "mask weight (sums to 1)"))
        if rec.kind == "lesa":
            shares = [tidy(v) for v in rec.shares()]
            charts.append(dict(title=f"{name}: unary vs binary", x=["unary 1/(1+w)", "binary w/(1+w)"], y=shares,
                               text=[f"{v:.3f}" for v in shares], ytitle="mean share over positions"))
        if rec.kind == "psa":
            ch = rec.data["channel_weights"][0].flatten().numpy()
            charts.append(dict(title=f"{name}: channel weights A_ch", x=np.arange(len(ch)), y=ch, xtitle="channel",
                               ytitle="sigmoid gate (0..1)", hover="channel %{x}: %{y:.4g}"))
            charts.append(histogram_chart(f"{name}: spatial weights A_sp", rec.data["spatial_weights"][0],
                                          "sigmoid gate (0..1)"))
    if charts:
        st.plotly_chart(plotly_bar_charts(charts, columns=2, row_height=60 + 34 * max(4, len(labels))),
                        width="stretch", key="stat_charts", theme=None)


def histogram_chart(title: str, values, xtitle: str) -> dict:
    centres, counts = histogram_bars(np.asarray(values))
    return dict(title=title, x=centres, y=counts, hover="weight ≈ %{x:.3g}: %{y} positions", xtitle=xtitle,
                ytitle="positions")
