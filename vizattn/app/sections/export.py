"""The Export tab: the current panels and the comparison grid as figures, HTML, NPZ maps and JSON.

Every file is built when its button is clicked (a deferred download) from what the page shows at that moment: the
pinned pixel and the sidebar's colormap, normalisation, clip, backdrop and opacity. A file prepared earlier can
therefore never describe another pixel or other settings than the panels on screen."""
from __future__ import annotations

import streamlit as st

from vizattn.app.cache import bundled_model
from vizattn.app.sections.attention import relevance_on_request
from vizattn.app.sections.compare import compare_forwards, picked_models
from vizattn.errors import VizattnError

MIME = {"png": "image/png", "svg": "image/svg+xml", "pdf": "application/pdf", "html": "text/html",
        "npz": "application/octet-stream", "json": "application/json"}
HTML_HELP = (" · the live panel grid in one file that opens offline (hover follows the pointer, a click pins), or "
             "past the 64 MiB factor budget the static figure, which then says so")
#: the sidebar's widget keys (vizattn.app.sidebar.display_options) -> the display option each one sets
SIDEBAR_KEYS = {"cmap": "cmap", "norm": "norm", "alpha": "alpha", "clip": "clip", "backdrop": "under"}


def shown_options() -> dict:
    """The display options the sidebar shows now, read from its widgets' state (for callers that do not pass them)."""
    return {opt: st.session_state[key] for key, opt in SIDEBAR_KEYS.items() if key in st.session_state}


def export_view(model_label, model, fw, src, pixel, opts: dict | None = None):
    if not fw.records:
        return
    from vizattn.export import EXPORT_FORMATS, compare_export, figure_options, query_export

    opts = figure_options(shown_options() if opts is None else opts)
    shown, choice = current_export(fw, pixel, model)  # the layers and their choice: worked out once per run
    st.caption(f"The current panels ({shown}) and the comparison grid, as figures (matplotlib), "
               "HTML, NPZ maps and JSON. "
               f"Each file is made when you click it, from what the page shows then: pixel {tuple(pixel)}, "
               f"{opts['cmap']}, {opts['norm']}, clip {opts['clip']:g}, opacity {opts['alpha']:g}, {opts['under']}.")
    picked = picked_models()
    hashes = lambda: {n: bundled_model(n).provenance.sha256 for n in picked}  # noqa: E731
    relevance = choice["view"] == "relevance"
    details = relevance_on_request(model, src.image, pixel, "export_relevance_go") if relevance else None
    sections = (("Current panels", st.session_state.get("forward_key"),
                 None if relevance and details is None else
                 lambda: query_export(model_label, fw, src, pixel, **choice, details=details,
                                      sha256=model.provenance.sha256, opts=opts)),
                ("Comparison grid", f"{src.key}|{','.join(picked)}",
                 lambda: compare_export(compare_forwards(src, picked), src, pixel, None, hashes(), opts)))
    for title, scope, make in sections:
        if make is None:
            continue  # the relevance of this pixel is not computed yet: relevance_on_request said how to
        # preparing is per (model, image) or (image, models): the files themselves follow the pixel and the options
        if st.button(f"Prepare exports: {title.lower()}", key=f"prep_{title}"):
            st.session_state[f"prepared_{title}"] = scope
        if st.session_state.get(f"prepared_{title}") != scope:
            continue
        try:
            made = make()
        except VizattnError as err:
            st.error(str(err))
            continue
        row = st.container(horizontal=True)  # buttons as wide as their labels, wrapping on a narrow column
        for fmt in EXPORT_FORMATS:
            name = f"{made.stem}.{fmt}"
            row.download_button(fmt.upper(), lambda made=made, fmt=fmt, name=name: made.files((fmt,))[name],
                                file_name=name, mime=MIME[fmt], key=f"dl_{title}_{fmt}", on_click="ignore",
                                help=f"{name}: made on click from what the page shows now"
                                + (HTML_HELP if fmt == "html" else ""))


def current_export(fw, pixel, model) -> tuple[str, dict]:
    """What the Attention tab shows, in words, and query_export's view/layer/model for it: one layer of a
    transformer, or its rollout or relevance, and every panel of a model without layers."""
    from vizattn.app.sections.attention import RELEVANCE, ROLLOUT, shown_layer
    from vizattn.explore import panels

    choice, group, several = shown_layer(panels(fw, *pixel))  # maps made only when read: cheap
    if not several:
        return "every module and view", {"view": None}
    if choice in (ROLLOUT, RELEVANCE):
        return choice, {"view": "rollout" if choice == ROLLOUT else "relevance", "model": model}
    return choice, {"view": None, "layer": group}
