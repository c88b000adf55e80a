"""The Statistics tab: per-view statistics at the query pixel beside a uniform map's, and the modules' gates."""
from __future__ import annotations

import numpy as np
import streamlit as st

from vizattn.app.pure import has_truth
from vizattn.data import CLASSES as SCENE_CLASSES
from vizattn.viz.figures import histogram_bars, plotly_bar_charts

STATISTICS = (  # key, chart title, axis title, the table's name for it
    ("entropy", "Entropy", "0: all on one cell · 1: uniform", "entropy (0…1)"),
    ("mean_distance_px", "Mean attended distance", "pixels from the query", "mean distance (px)"),
    ("mass_own_class", "Weight on the query's class", "share of the weight", "mass on own class"),
    ("mass_own_instance", "Weight on the query's object", "share of the weight", "mass on own object"),
)
CHART_WIDTH = 400  # px the charts are planned for: the tab's column beside the clickable image at 1280 px


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
        for key, title, axis, _ in STATISTICS:
            if not all(key in s_ for s_ in stats):
                continue
            values = [tidy(s_[key]) for s_ in stats]
            charts.append(dict(title=title, x=labels, y=values, horizontal=True, xtitle=axis,
                               text=[f"{v:.3g}" if v else "0" for v in values], chance=[tidy(c[key]) for c in chance]))
        st.dataframe(statistics_rows(labels, stats, chance), hide_index=True, width="stretch",
                     column_config={"this view": st.column_config.NumberColumn("this view", format="%.3g"),
                                    "a uniform map": st.column_config.NumberColumn(
                                        "a uniform map", format="%.3g", help="what a map spread evenly would score")})
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
        st.plotly_chart(plotly_bar_charts(charts, columns=1, row_height=24 + 22 * max(3, len(labels)),
                                          width=CHART_WIDTH), width="stretch", key="stat_charts", theme=None)


def statistics_rows(labels, stats, chance) -> list[dict]:
    """One row per (view, statistic), in long form so the table fits a narrow column whatever the view names."""
    from vizattn.analysis.stats import tidy

    return [{"view": lab, "statistic": name, "this view": tidy(s_[key]), "a uniform map": tidy(c.get(key))}
            for lab, s_, c in zip(labels, stats, chance) for key, _, _, name in STATISTICS if key in s_]


def histogram_chart(title: str, values, xtitle: str) -> dict:
    centres, counts = histogram_bars(np.asarray(values))
    return dict(title=title, x=centres, y=counts, hover="weight ≈ %{x:.3g}: %{y} positions", xtitle=xtitle,
                ytitle="positions")
