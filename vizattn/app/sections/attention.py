"""The Attention tab: the chosen model's panels at the query pixel, one layer at a time (vizattn.layers groups
the records: a transformer's stage and block, or layer; one module elsewhere), and for transformers the rollout
and the relevance over all layers."""
from __future__ import annotations

import html
import threading
from collections import OrderedDict

import streamlit as st

from vizattn.app.cache import forward_budget_s, work_guard
from vizattn.app.panel_grid import show_grid
from vizattn.app.sections import kept_choice, state_marker
from vizattn.errors import VizattnError
from vizattn.text import markdown_text

ROLLOUT, RELEVANCE = "rollout (all layers)", "relevance (all layers)"
LAYER_KEY = "layer_group"
RESIDUAL, FUSION = 0.5, "mean"


MAX_TOGETHER = 12  # modules without layers are shown together up to this many panels (the bundled zoo: at most 10)


def layer_options(chosen) -> tuple[list, list[str]]:
    """The Attention tab's layers for these panels (vizattn.layers), and its selector's options: the layers, then
    rollout and relevance where they can follow the records."""
    from vizattn.layers import LayerGroup, layer_groups

    records = {p.module: p.record for p in chosen}
    # each module's main view first, as everywhere on the page (panels() orders them so)
    groups = layer_groups({n: list(dict.fromkeys(p.view for p in chosen if p.module == n)) for n in records})
    if len(groups) > 1 and len(chosen) <= MAX_TOGETHER and all(g.label in g.names for g in groups):
        # a few modules without layers (ANN's AFNB and APNB, a head or two): all on one screen, as before
        groups = [LayerGroup("all modules", tuple(n for g in groups for n in g.names),
                             tuple(e for g in groups for e in g.entries))]
    return groups, [g.label for g in groups] + ([ROLLOUT, RELEVANCE] if _followable(records) else [])


def shown_layer(chosen):
    """What the Attention tab shows for these panels, opened or not: (its choice, the layer's group or None for
    rollout and relevance, whether there is a choice at all)."""
    groups, options = layer_options(chosen)
    kept = st.session_state.get(f"{LAYER_KEY}_kept")
    choice = kept if kept in options else options[0]
    group = groups[options.index(choice)] if options.index(choice) < len(groups) else None
    return choice, group, len(options) > 1


def attention_view(model_label, src, chosen, pixel, opts, model=None):
    if not chosen:
        return
    records = {p.module: p.record for p in chosen}
    groups, options = layer_options(chosen)
    choice = options[0]
    if len(options) > 1:
        choice = kept_choice("Layer", options, LAYER_KEY, options[0],
                             help="The model's attention one layer at a time: its heads and their mean. Rollout and "
                                  "relevance follow the query pixel back through every layer.")
    if choice == ROLLOUT:
        _rollout_view(records, src, pixel, opts)
    elif choice == RELEVANCE:
        _relevance_view(records, src, pixel, opts, model)
    else:
        group = groups[options.index(choice)]
        by = {(p.module, p.view): p for p in chosen}
        shown = [(by[e.name, e.view], e) for e in group.entries if (e.name, e.view) in by]
        panels = [p for p, _ in shown]
        columns = 2 if len(panels) <= 4 else 3  # beside the clickable image: half the row
        # the title as before (the selector names the layer): browser tests wait on its "… at pixel (y, x)" ending
        show_grid(src, panels, [e.title for _, e in shown], opts, columns, f"{model_label} at pixel {pixel}", "attn_grid",
                  st.session_state["forward_key"])
        if len(groups) > 1:  # the full names once, under the short titles (a subtitle per panel overflows them)
            st.caption("Module: " + " · ".join(markdown_text(name) for name in group.names))  # a model's names: text
        st.caption("The panels follow the pointer, over the image on the left or over a panel; a click pins the query "
                   "there (arrow keys then move it a cell). Colorbars give the weights.")
        for note in dict.fromkeys(p.note for p in panels if p.note):
            st.caption(note)
    verification_lines(records)
    state_marker("panel-state", f"panels for {pixel}")  # read as "panels for (y, x)" by the browser tests
    state_marker("layer-state", html.escape(choice))  # labels can carry a model's own module names


def verification_lines(records) -> None:
    """Whether the maps are the ones the modules used: one caption per distinct text, with how many layers it
    covers; the layers verified within tolerance share one line with their largest |Δ|."""
    passed = [r for r in records.values() if r.verified is not None
              and (r.verified_tolerance is None or r.verified <= r.verified_tolerance)]
    said = {}
    if passed:
        said[max(passed, key=lambda r: r.verified).verification] = len(passed)
    ok = {id(r) for r in passed}  # by identity: records are dataclasses holding tensors
    for rec in records.values():
        if id(rec) not in ok and rec.verification:
            said[rec.verification] = said.get(rec.verification, 0) + 1
    for text, n in said.items():
        st.caption(f"{text} · {n} layer{'s' if n != 1 else ''}" if len(records) > 1 else text)


def _followable(records) -> bool:
    """Whether rollout and relevance can follow these records (a transformer's self-attention layers)."""
    if not any(r.follows_layers for r in records.values()):
        return False  # asked first: vizattn.analysis.rollout imports PyTorch, which a kept opening has not loaded
    from vizattn.analysis.rollout import layers_of

    try:
        layers_of(records)
    except VizattnError:
        return False
    return True


def _share_line(details, records) -> str:
    from vizattn.analysis.rollout import layers_of

    extra = layers_of(records)[0].extra
    if not extra:
        return ""
    tokens = "the class token" if extra == 1 else f"the class and register tokens ({extra})"
    return f" {details.extra_share:.1%} went to {tokens}, set aside; the map holds the rest."


def _show_map(details, records, src, pixel, opts, caption: str) -> None:
    from vizattn.analysis.rollout import layers_of
    from vizattn.explore import cell_box, to_image
    from vizattn.viz.overlay import heat_overlay, uniform_level

    shape = src.image.shape[:2]
    last = layers_of(records)[-1]
    image = heat_overlay(src.image, to_image(details.map, shape), opts["alpha"], opts["cmap"], opts["norm"],
                         pixel=pixel, box=cell_box(*details.cell, shape, last.grid), clip=opts["clip"],
                         under=opts["under"], uniform=uniform_level(details.map, True))
    st.image(image, caption=caption, width=min(440, max(shape)))  # a panel's size: the caption stays on screen


@st.cache_data(max_entries=64, show_spinner=False)
def _rollout(forward_key: str, pixel: tuple[int, int], _records, shape):
    from vizattn.analysis.rollout import rollout_details

    return rollout_details(_records, *pixel, FUSION, RESIDUAL, shape=shape)


def _rollout_view(records, src, pixel, opts) -> None:
    details = _rollout(st.session_state["forward_key"], tuple(pixel), records, tuple(src.image.shape[:2]))
    _show_map(details, records, src, pixel, opts, f"Attention rollout of pixel {pixel} over {len(details.layers)} "
              "layers: how much of what it holds after the last layer came from each position.")
    st.caption(f"Rollout (Abnar & Zuidema 2020): head fusion {FUSION}, residual {RESIDUAL} (A' = {RESIDUAL}·I + "
               f"{1 - RESIDUAL}·A, rows renormalised), nothing discarded; on the first layer's "
               f"{details.grid[0]}×{details.grid[1]} grid." + _share_line(details, records))
    state_marker("rollout-state", f"rollout for {pixel}")


@st.cache_resource
def _relevance_store():
    """Relevance rows computed on request, kept per (model, image, pixel) for every session (the 32 newest)."""
    return threading.Lock(), OrderedDict()


def _relevance_key(pixel) -> tuple:
    return st.session_state["forward_key"], tuple(pixel)


def kept_relevance(pixel):
    """The relevance rows of this model, image and pixel if a session has computed them, else None."""
    lock, store = _relevance_store()
    with lock:
        return store.get(_relevance_key(pixel))


def relevance_for(model, image, pixel):
    """The relevance rows of this model, image and pixel: kept ones, or computed now under the server's work guard
    and budget (a backward pass, as heavy as a forward) and kept for every session (the 32 newest)."""
    from vizattn.analysis.relevance import relevance_details

    details = kept_relevance(pixel)
    if details is None:
        with st.spinner("Computing relevance (one forward and one backward pass)…"):
            with work_guard(forward_budget_s()).slot(lambda: st.info("Waiting for another session's model to finish…")):
                details = kept_relevance(pixel)  # another session may have computed them while this one waited
                if details is None:
                    details = relevance_details(model, image, *pixel)
        lock, store = _relevance_store()
        with lock:
            store[_relevance_key(pixel)] = details
            while len(store) > 32:
                store.popitem(last=False)
    return details


def relevance_on_request(model, image, pixel, key: str):
    """The relevance rows of this pixel: kept ones, or on the button `key` a backward pass under the server's work
    guard (never on a mere rerun); None until then, said in a sentence (the Attention and Export tabs)."""
    details = kept_relevance(pixel)
    if details is None:
        st.caption(f"The relevance of pixel {tuple(pixel)} is not computed yet: a backward pass through the model "
                   "(one forward and one backward pass, heavier than a click).")
        if model is None:
            st.caption("The loaded model is not at hand here, so relevance cannot be computed.")
        elif st.button(f"Compute relevance for pixel {tuple(pixel)}", key=key):
            try:
                details = relevance_for(model, image, pixel)
            except VizattnError as err:  # the server busy past the budget, or the budget spent
                st.error(str(err))
    return details


def _relevance_view(records, src, pixel, opts, model) -> None:
    details = relevance_on_request(model, src.image, pixel, "relevance_go")
    if details is None:
        return
    _show_map(details, records, src, pixel, opts, f"Relevance of pixel {pixel} for the class predicted there, over "
              f"{len(details.layers)} layers.")
    skipped = f" Not followed (no gradient): {', '.join(details.skipped)}." if details.skipped else ""
    st.caption("Relevance (Chefer, Gur & Wolf 2021): R ← R + Ā·R over the layers, Ā the head mean of "
               "(∇A ⊙ A)⁺ for the logit of the predicted class; the query's own cell keeps R's identity (1)."
               + _share_line(details, records) + skipped)
    state_marker("relevance-state", f"relevance for {pixel}")


