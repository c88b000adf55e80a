"""The sidebar: which model (bundled, an upload, or a path on this machine), which image, and how to draw."""
from __future__ import annotations

import streamlit as st

from vizattn.app.cache import decoded_upload, import_torch, path_model, scene, uploaded_model
from vizattn.app.pure import LOOPBACK, is_loopback_request, provenance_line
from vizattn.bundled import available, model_card
from vizattn.errors import VizattnError
from vizattn.io import MAX_IMAGE_SIDE, Content
from vizattn.sources import ImageSource, safe_name
from vizattn.text import markdown_text
from vizattn.viz.overlay import BACKDROPS, NORMALISATIONS

SAMPLE_SEEDS = (1_000_000_007, 1_000_000_021, 1_000_000_042)  # held-out scenes: never seen in training
DEFAULT_MODEL = "criss_cross"
SCENE_SIZES, DEFAULT_SIZE = (256, 384, 512), 384
CMAPS = ("inferno", "viridis", "magma", "plasma", "turbo", "gray")
DISPLAY_DEFAULTS = {"cmap": CMAPS[0], "under": BACKDROPS[0], "alpha": 0.9, "clip": 100.0, "norm": NORMALISATIONS[0]}
FIRST_WIDGET = "model_source"  # the sidebar's first widget: in the session's state from its first run on


def first_choice():
    """What the sidebar will show on a session's first run — (model key, label, model, image, display options): the
    bundled default on the first sample scene, the display defaults — where nothing has been chosen yet and the
    kept opening can draw it (vizattn.opening); else None. The page then sends the image and the grid before any
    widget: Streamlit shows a run's new elements once each kind of widget's code has arrived, so the first map no
    longer waits behind the sidebar's."""
    from vizattn.app.cache import opening_fits

    if FIRST_WIDGET in st.session_state or any(k in st.session_state for k in ("drill_model", "drill_source", "pixel")):
        return None
    if DEFAULT_MODEL not in available():
        return None
    src = scene(f"scene:{SAMPLE_SEEDS[0]}", DEFAULT_SIZE)
    h, w = src.image.shape[:2]
    # the kept opening must draw it (vizattn.app.query.current_pixel starts at the centre): never a forward, which
    # would hold the sidebar back
    if not opening_fits(DEFAULT_MODEL, src, (h // 2, w // 2)):
        return None
    return DEFAULT_MODEL, DEFAULT_MODEL, None, src, dict(DISPLAY_DEFAULTS)


def loopback_only() -> bool:
    """True while the server answers this machine only and this request came from it: the bind address, and the
    request's Host and Origin, are all loopback names (behind a same-host proxy or DNS rebinding, a loopback bind
    alone is not a local person). Only then may the page read paths on this machine."""
    if str(st.get_option("server.address") or "") not in LOOPBACK:
        return False
    headers = getattr(st.context, "headers", None) or {}
    if not headers:  # no request at all (AppTest, a bare script run): the bind address decides
        return True
    return is_loopback_request(headers.get("Host"), headers.get("Origin"))


def pick_model():
    """(model key, label, model): the model is None for a bundled one, loaded where its forward runs. The sidebar
    says what the page shows: the model's provenance, or that the bundled default stands in until one loads."""
    st.sidebar.header("Model")
    names = available()
    if not names:
        st.error("No bundled models in pretrained/: run `vizattn train --all` first.")
        st.stop()
    drilled = st.session_state.pop("drill_model", None)  # the Data set tab opened an extreme of this model's run
    if drilled in names:
        st.session_state["model_source"], st.session_state["model_name"] = "bundled", drilled
    sources = ["bundled", "upload a checkpoint"] + (["a checkpoint path on this machine"] if loopback_only() else [])
    source = st.sidebar.radio("Source", sources, horizontal=True, key=FIRST_WIDGET)
    if source != "bundled":
        return _foreign_model(source, names)
    default = names.index(DEFAULT_MODEL) if DEFAULT_MODEL in names else 0
    name = st.sidebar.selectbox("Bundled model", names, index=default, key="model_name")
    card = model_card(name)  # the card alone: the model loads where its forward runs
    ev = card.get("evaluation", {})
    options = ", ".join(f"{k}={v}" for k, v in card.get("module_options", {}).items())
    module = card.get("module") or "no attention (baseline)"
    st.sidebar.caption(f"{module}{f' ({options})' if options else ''} · held-out mIoU {ev.get('miou', 0):.3f}")
    _say_shown(name, bundled_provenance(name), len(card.get("classes", [])))
    return name, name, None


def model_for_analyze() -> tuple[str | None, str]:
    """The sidebar's model as `vizattn analyze --model` names it (a bundled name, or the file, folder or factory
    typed in the path field), or None and the sentence why an analyze cannot load it."""
    import os

    source = st.session_state.get("model_source", "bundled")
    if source == "bundled":
        return st.session_state.get("model_name") or DEFAULT_MODEL, ""
    if source == "upload a checkpoint":
        return None, ("An uploaded checkpoint lives only in this page's memory, where an analyze cannot load it: save "
                      "it on this machine and give its path under 'a checkpoint path on this machine', or pick a "
                      "bundled model.")
    path = str(st.session_state.get("ckpt_path") or "").strip()
    if not path or f"last_model:{source}" not in st.session_state:
        return None, "No checkpoint path has loaded in the sidebar yet: give one there, or pick a bundled model."
    if st.session_state.get("ckpt_head", "from the keys") != "from the keys":
        return None, ("An analyze tells a checkpoint's head from its keys, and this one's was chosen by hand: run "
                      "`vizattn analyze --model FILE` on a checkpoint that says its head, or pick a bundled model.")
    return os.path.expanduser(path), ""


def _say_shown(label: str, provenance, n_classes: int) -> None:
    # file-borne text (names, classes_from): escaped, never markup
    st.sidebar.caption(markdown_text(f"Shown: {label} — {provenance_line(provenance, n_classes)}"))


@st.cache_data(max_entries=32, show_spinner=False)
def bundled_provenance(name: str):
    """A bundled model's provenance as `vizattn.zoo.load` gives it, from its card and its weights' hash alone:
    the sidebar draws before PyTorch is imported (tests/test_app.py checks the two agree)."""
    from vizattn.bundled import PRETRAINED
    from vizattn.model import SCENES, Provenance
    from vizattn.sources import file_sha256

    card = model_card(name)
    return Provenance("bundled", "vizattn", name, file_sha256(PRETRAINED / f"{name}.safetensors"), SCENES,
                      f"{card.get('head', name)} head", "the model card", "vizattn's scenes")


def _foreign_model(source: str, names: list[str]):
    """An uploaded checkpoint, or a file, transformers folder or factory named on this machine. What this source
    loaded last stays while its file or path is given (a refused replacement says so and keeps it); with nothing
    given, the bundled default is shown, labelled as such: never a model of another source."""
    from vizattn.io import MAX_CHECKPOINT_BYTES

    import_torch()  # vizattn.models imports PyTorch
    from vizattn.models.segmenter import HEADS

    head = st.sidebar.selectbox("Head (plain state dicts of our architecture only)", ["from the keys", *HEADS],
                                key="ckpt_head", help="mmseg checkpoints and vizattn checkpoints say it themselves")
    head = None if head == "from the keys" else head
    slot = f"last_model:{source}"
    try:
        if source == "upload a checkpoint":
            up = st.sidebar.file_uploader("Checkpoint: ours (.safetensors, .pt) or an mmseg .pth", key="ckpt_upload",
                                          max_upload_size=MAX_CHECKPOINT_BYTES // 2**20)
            if up is None:
                st.session_state.pop(slot, None)
            else:
                data = Content(up.getvalue(), up.name)  # hashed once: the cache key, the refusal memory, provenance
                key = data.sha256[:16]
                model = uploaded_model(key, data, up.name, head)
                st.session_state[slot] = (f"upload-{key}-{head}", safe_name(up.name), model)
        else:
            path = st.sidebar.text_input(
                "A checkpoint file, a transformers model folder, or package.module:function", key="ckpt_path",
                help="Read on the machine running this app, and offered only while the server is bound to "
                     "127.0.0.1. A factory runs your own code: use it for your own models only.")
            if path.strip():
                st.session_state[slot] = _path_model(path.strip(), head)
            else:
                st.session_state.pop(slot, None)
    except VizattnError as err:
        st.sidebar.error(str(err))
    if slot in st.session_state:
        key, label, model = st.session_state[slot]
        _say_shown(label, model.provenance, len(model.classes))
        return key, label, model
    default = DEFAULT_MODEL if DEFAULT_MODEL in names else names[0]
    given = "uploaded" if source == "upload a checkpoint" else "named"
    st.sidebar.info(f"No checkpoint {given} yet: the page shows the bundled default, {default}, until one loads.")
    return default, f"{default} (bundled default)", None


def _path_model(text: str, head: str | None):
    """(key, label, model) for what `text` names (vizattn.zoo.source_of says what it is): files and folders keyed
    by path and modification time, so an overwritten checkpoint loads again; anything else by its text."""
    from pathlib import Path

    from vizattn.zoo import source_of

    p = Path(text).expanduser()
    kind = source_of(str(p)).kind
    if kind in ("checkpoint", "transformers folder"):
        stamp = p.stat().st_mtime
        model = path_model(str(p), stamp, head)
        return f"path-{p}-{stamp}-{head}", safe_name(p.name or text), model
    # a factory (or a bundled name typed here): code and names have no file to stamp
    return f"{kind}-{text}", safe_name(text), path_model(text, 0.0, None)


IMAGE_TYPES = ["png", "jpg", "jpeg", "bmp", "tif", "tiff", "webp"]


def pick_image() -> ImageSource:
    from vizattn.io import MAX_IMAGE_BYTES

    st.sidebar.header("Image")
    drilled = st.session_state.get("drill_source")  # an image the Data set tab opened at one of its extremes
    if drilled is not None:
        st.sidebar.info(markdown_text(f"Showing {drilled.name} from the Data set tab."))
        if not st.sidebar.button("Back to the sidebar's image", key="drill_back"):
            return drilled
        for key in ("drill_source", "drill_note"):
            st.session_state.pop(key, None)
    kind = st.sidebar.radio("Source", ["sample scene", "scene from a seed", "upload"], key="image_source")
    size = st.session_state.get("scene_size_kept", DEFAULT_SIZE)
    if kind != "upload":  # generated scenes only: an upload has its own size
        size = st.sidebar.select_slider("Scene size (px)", SCENE_SIZES, value=size, key="scene_size",
                                        help="generated scenes; the models were trained at 384")
        st.session_state["scene_size_kept"] = size
    if kind == "sample scene":
        seed = st.sidebar.selectbox("Sample", SAMPLE_SEEDS, format_func=lambda s: f"scene {s}", key="sample_seed")
        src = scene(f"scene:{seed}", size)
    elif kind == "scene from a seed":
        seed = st.sidebar.number_input("Seed", 0, 2**31 - 1, SAMPLE_SEEDS[0], key="seed")
        src = scene(f"scene:{int(seed)}", size)
    else:
        up = st.sidebar.file_uploader(f"PNG, JPEG, BMP, TIFF or WebP (longer side shrunk to {MAX_IMAGE_SIDE} px)",
                                      type=IMAGE_TYPES, key="image_upload", max_upload_size=MAX_IMAGE_BYTES // 2**20)
        if up is None:
            st.session_state.pop("last_upload", None)  # no file given: never the image of an earlier upload
        else:
            data = Content(up.getvalue(), up.name)
            try:
                st.session_state["last_upload"] = ImageSource(decoded_upload(data.sha256[:16], data, up.name),
                                                              safe_name(up.name))
            except VizattnError as err:
                st.sidebar.error(str(err))
        src = st.session_state.get("last_upload")
        if src is None:
            st.sidebar.info(f"No image uploaded yet: the page shows sample scene {SAMPLE_SEEDS[0]} until one is read.")
            src = scene(f"scene:{SAMPLE_SEEDS[0]}", size)
    return src


def display_options():
    st.sidebar.header("Display")
    return dict(
        cmap=st.sidebar.selectbox("Colormap", CMAPS, index=CMAPS.index(DISPLAY_DEFAULTS["cmap"]), key="cmap"),
        under=st.sidebar.radio("Under the heatmap", BACKDROPS, index=BACKDROPS.index(DISPLAY_DEFAULTS["under"]),
                               key="backdrop", horizontal=True,
                               help="the photo dimmed to grey lets the colormap read at full strength"),
        alpha=st.sidebar.slider("Heatmap opacity", 0.0, 1.0, DISPLAY_DEFAULTS["alpha"], 0.05, key="alpha"),
        clip=st.sidebar.slider("Contrast: saturate above this percentile", 90.0, 100.0, DISPLAY_DEFAULTS["clip"], 0.5,
                               key="clip",
                               help="below 100, the strongest weights saturate so the rest of the map shows "
                                    "(as CCNet's authors clipped their figures); colorbars give the weights"),
        norm=st.sidebar.radio("Normalisation", NORMALISATIONS, index=NORMALISATIONS.index(DISPLAY_DEFAULTS["norm"]),
                              key="norm",
                              help="per-map: each panel to its own top; shared: one scale across panels of one kind "
                                   "(distributions apart from gates); log, log shared: the same in decades; relative "
                                   "to uniform: each weight as a multiple of the uniform level 1/N (N grid cells), "
                                   "blue below, white at, red above it, log scale ×1/16 … ×16 (gates keep 0…1)"),
    )
