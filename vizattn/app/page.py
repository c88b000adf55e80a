"""The page: what `streamlit run app.py` (a checkout) and `vizattn app` (the installed package) both run."""
from __future__ import annotations

import streamlit as st

# light imports only: the sidebar draws before PyTorch and the model code are imported (by the first forward)
from vizattn.app.errors import one_sentence
from vizattn.app.sections.explore import explore
from vizattn.app.sidebar import display_options, first_choice, pick_image, pick_model


def main():
    st.set_page_config(page_title="vizattn", layout="wide")
    st.title("vizattn — where did this pixel look?")
    first = first_choice()
    if first is not None:  # a session's first run: the image and its maps go out before the sidebar's widgets
        try:
            explore(*first)
        finally:  # the sidebar is drawn whatever happened above: the next run takes the usual path
            drawn = pick_model(), pick_image(), display_options()
        model_key, _, _, src, opts = first
        if (drawn[0][0], drawn[1].key, drawn[2]) != (model_key, src.key, opts):
            st.rerun()  # the sidebar says otherwise (it should not): draw what it says
        return
    model_key, model_label, model = pick_model()
    src = pick_image()
    opts = display_options()
    explore(model_key, model_label, model, src, opts)


def run():
    with one_sentence():  # anything a user caused and the page did not catch closer to the source
        main()


if __name__ == "__main__":  # streamlit runs this file as __main__ for `vizattn app`
    run()
