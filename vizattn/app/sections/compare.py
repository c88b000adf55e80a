"""The Compare models tab: every bundled attention model's main view at the query pixel, side by side; or two
models' difference, A, B and A − B per module pair (vizattn.diff), with their statistics and deltas."""
from __future__ import annotations

import streamlit as st

from vizattn.app.cache import bundled_model, cached_photo, forward_for, hover_factors
from vizattn.app.panel_grid import panel_grid, show_grid
from vizattn.app.query import held_factors
from vizattn.app.sections import kept_choice, state_marker
from vizattn.app.sections.statistics import STATISTICS
from vizattn.bundled import available, model_card
from vizattn.errors import REFUSALS, VizattnError
from vizattn.text import markdown_text

MODES = ("side by side", "difference")
STAT_NAMES = {key: name for key, _, _, name in STATISTICS}  # the statistics' keys, as a reader's row names


def attention_models() -> list[str]:
    return [n for n in available() if model_card(n).get("module")]


def picked_models() -> list[str]:
    """The comparison's models, kept while its tab is closed (a widget that is not drawn loses its state)."""
    return st.session_state.get("compare_picked", attention_models())


def compare_forwards(src, picked) -> dict:
    return {n: forward_for(n, src.key, bundled_model(n), src.image) for n in picked}


def compare_view(src, pixel, opts):
    if kept_choice("Show", MODES, "compare_mode", MODES[0], radio=True, horizontal=True) == "difference":
        difference_view(src, pixel, opts)
        return
    picked = st.multiselect("Models", attention_models(), default=picked_models())
    st.session_state["compare_picked"] = picked
    if not picked:
        return
    from vizattn.export import compare_panels

    chosen, titles, predictions = compare_panels(compare_forwards(src, picked), pixel, None)
    show_grid(src, chosen, titles, opts, 3, f"{len(picked)} models at pixel {pixel}", "compare_grid",
              f"{','.join(picked)}|{src.key}", predictions)
    state_marker("compare-state", f"compare for {pixel} over {len(picked)} models")


@st.cache_data(max_entries=16, show_spinner="Taking the difference…")
def diff_for(key: str, _fw_a, _fw_b, names: tuple[str, str], pixel: tuple[int, int], shas: tuple, _labels,
             _instances):
    """(files, differences) of two forwards at one pixel; keyed by the models, image and pixel (and so is its
    refusal, in the one refusal memory)."""
    from vizattn.diff import diff_files

    return REFUSALS.run(("diff", key), diff_files, _fw_a, _fw_b, names, pixel, None, shas, ("png", "npz", "json"),
                        _labels, _instances)


def live_difference(src, fw_a, fw_b, names: tuple[str, str], pixel, opts) -> bool:
    """A, B and A − B in the panel grid, following the pointer (the browser subtracts B's rows from A's, as in the
    notebook widget), or the sentence why not (grids that differ, factors past the budget). Whether it is shown."""
    from vizattn.diff import live_grid_args

    a, b = names

    def factors(flat):  # packed once per (models, image, views), as the other grids' (hover_factors)
        return hover_factors(f"diff|{a}|{b}|{src.key}|{[(p.module, p.view) for p in flat]}", flat)

    try:
        args = live_grid_args(fw_a, fw_b, names, pixel, opts, f"{a} (A) vs {b} (B) at pixel {tuple(pixel)}",
                              cached_photo(src.key, opts["under"], src.image), factors)
    except VizattnError as err:
        st.caption(str(err))
        return False
    if held_factors("diff_grid") == args["factors_key"]:
        args["blob"] = None  # the grid holds these factors already
    panel_grid(args, "diff_grid")
    state_marker("diff-grid", f"live difference for {tuple(pixel)}: {len(args['panels']) // 3} pair(s)")
    return True


def difference_view(src, pixel, opts):
    """A, B and A − B at the pinned pixel: A and B on one sequential scale, A − B diverging around 0."""
    names = available()  # every bundled model: one without attention is refused with its sentence
    marked = {n: n if model_card(n).get("module") else f"{n} (no attention)" for n in names}
    left, right = st.columns(2)
    with left:
        a = kept_choice("A", names, "diff_a", "criss_cross", format_func=marked.get)
    with right:
        b = kept_choice("B", names, "diff_b", "isa" if a != "isa" else "criss_cross", format_func=marked.get)
    if a == b:
        st.info(f"A and B are both '{a}': their difference is 0 everywhere. Pick two different models.")
        return
    models = (bundled_model(a), bundled_model(b))
    fws = compare_forwards(src, [a, b])
    scene_trained = all(m.provenance.scene_trained for m in models)
    labels = src.labels if src.labels is not None and scene_trained else None
    shas = tuple(m.provenance.sha256 for m in models)
    try:
        files, diffs = diff_for(f"{a}|{b}|{src.key}|{pixel}", fws[a], fws[b], (a, b), tuple(pixel), shas, labels,
                                src.instances if labels is not None else None)
    except VizattnError as err:
        st.error(str(err))
        state_marker("diff-state", f"diff refused for {pixel}")
        return
    png = next(data for name, data in files.items() if name.endswith(".png"))
    live = live_difference(src, fws[a], fws[b], (a, b), pixel, opts)
    with st.expander("The figure as exported (PNG)", expanded=not live):
        st.image(png, caption=f"A: {a} · B: {b} at pixel {pixel}: A and B on one scale, A − B blue below 0, red above",
                 width="stretch")
    for d in diffs:
        st.markdown(markdown_text(f"{d.a.module} · {d.a.view} (A) − {d.b.module} · {d.b.view} (B): taken {d.where}"))
        if d.stats_a and d.stats_b:
            st.dataframe(difference_rows(d, a, b), hide_index=True, width="stretch")
        else:
            st.caption("No statistics: one of the two is not a distribution over positions (a gate).")
    st.caption(f"sha256 — A {a}: {shas[0] or 'unknown'} · B {b}: {shas[1] or 'unknown'}")
    cols = st.columns(len(files))
    for col, (name, data) in zip(cols, files.items()):
        col.download_button(name.rsplit(".", 1)[1].upper(), data, file_name=name, key=f"diff_dl_{name}",
                            mime={"png": "image/png", "json": "application/json"}.get(name.rsplit(".", 1)[1],
                                                                                     "application/octet-stream"))
    state_marker("diff-state", f"diff for {pixel}: {a} vs {b}")


def difference_rows(d, a: str, b: str) -> list[dict]:
    """The statistics of both and their deltas, one row per statistic, with a reader's headers."""
    deltas = d.deltas
    return [{"statistic": STAT_NAMES.get(k, k), f"A: {a}": d.stats_a[k], f"B: {b}": d.stats_b[k], "A − B": deltas[k]}
            for k in d.stats_a if k in deltas]
