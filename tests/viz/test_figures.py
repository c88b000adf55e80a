"""Plotly figure builders written without make_subplots: each chart on its own axes, with known contents."""
import numpy as np

from vizattn.viz.figures import histogram_bars, plotly_bar_charts


def test_histogram_bars_count_every_value_at_bin_centres():
    centres, counts = histogram_bars(np.array([0.0, 0.0, 0.5, 1.0]), bins=2)
    assert np.allclose(centres, [0.25, 0.75]) and counts.tolist() == [2, 2]


def test_bar_charts_each_on_their_own_axes_in_a_grid():
    charts = [dict(title=f"c{i}", x=["a", "b"], y=[i, i + 1]) for i in range(5)]
    fig = plotly_bar_charts(charts, columns=3).to_dict()
    assert [t["xaxis"] for t in fig["data"]] == ["x", "x2", "x3", "x4", "x5"]
    assert [list(t["y"]) for t in fig["data"]] == [[i, i + 1] for i in range(5)]
    assert [a["text"] for a in fig["layout"]["annotations"]] == [c["title"] for c in charts]
    lay = fig["layout"]
    # two rows: the first three charts side by side, the last two below them, no overlaps
    assert lay["xaxis"]["domain"][1] < lay["xaxis2"]["domain"][0] < lay["xaxis3"]["domain"][0]
    assert lay["yaxis4"]["domain"][1] < lay["yaxis"]["domain"][0]
    assert lay["xaxis4"]["domain"] == lay["xaxis"]["domain"]
