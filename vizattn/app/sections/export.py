"""The Export tab: the current panels and the comparison grid as figures, HTML, NPZ maps and JSON."""
from __future__ import annotations

import streamlit as st

from vizattn.app.cache import bundled_model
from vizattn.app.sections.compare import compare_forwards, picked_models
from vizattn.errors import VizattnError


def export_view(model_label, model, fw, src, pixel):
    if not fw.records:
        return
    from vizattn.export import compare_files, query_files

    st.caption("The current panels and the comparison grid, as figures (matplotlib), HTML, NPZ maps and JSON.")
    picked = picked_models()
    hashes = lambda: {n: bundled_model(n).provenance.sha256 for n in picked}  # noqa: E731
    for title, make in (("Current panels", lambda: query_files(model_label, fw, src, pixel, None,
                                                                model.provenance.sha256)),
                        ("Comparison grid", lambda: compare_files(compare_forwards(src, picked), src, pixel, None, hashes()))):
        if st.button(f"Prepare exports: {title.lower()}", key=f"prep_{title}"):
            try:
                st.session_state[f"files_{title}"] = make()
            except VizattnError as err:
                st.error(str(err))
        files = st.session_state.get(f"files_{title}") or {}
        cols = st.columns(max(1, len(files)))
        for col, (fname, data) in zip(cols, files.items()):
            col.download_button(fname.rsplit(".", 1)[1].upper(), data, file_name=fname, key=f"dl_{fname}")
