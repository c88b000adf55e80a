"""vizattn — click a pixel, see where each attention module looked. A thin page over the vizattn library."""
from __future__ import annotations

import numpy as np
import streamlit as st
import streamlit.components.v1 as components
from PIL import Image
from streamlit_image_coordinates import streamlit_image_coordinates

# light imports only: the sidebar draws before PyTorch and the model code are imported (by the first forward)
from vizattn.bundled import available, model_card
from vizattn.data import CLASSES as SCENE_CLASSES
from vizattn.errors import VizattnError
from vizattn.guard import WorkGuard
from vizattn.io import MAX_IMAGE_SIDE, read_image
from vizattn.sources import ImageSource, digest, image_source, safe_name
from vizattn.text import markdown_text
from vizattn.viz.figures import histogram_bars, plotly_bar_charts
from vizattn.viz.hover import BUDGET
from vizattn.viz.panel_grid import FRONTEND, grid_args, live_factors, photo_uri
from vizattn.viz.overlay import BACKDROPS, NORMALISATIONS, heat_overlay, label_overlay

SAMPLE_SEEDS = (1_000_000_007, 1_000_000_021, 1_000_000_042)  # held-out scenes: never seen in training
DEFAULT_MODEL = "criss_cross"
CMAPS = ("inferno", "viridis", "magma", "plasma", "turbo", "gray")
CLICK_KEY = "image_click"
GRID_KEYS = ("attn_grid", "compare_grid")  # the panel grids: a click on a panel moves the query too
panel_grid = components.declare_component("vizattn_panel_grid", path=str(FRONTEND))


@st.cache_resource(max_entries=16, show_spinner="Loading model…")
def bundled_model(name: str):
    from vizattn.zoo import load

    return load(name)


def refusal_kept(fn, *args, **kwargs):
    """fn's result, or its refusal returned instead of raised: inside a cached function, a rerun or a second
    session with the same input gets the sentence again at once instead of reading a 500 MB file again."""
    try:
        return fn(*args, **kwargs)
    except VizattnError as err:
        return err


def loaded(result):
    """A cached result, or the cached refusal raised again as the one sentence it was."""
    if isinstance(result, VizattnError):
        raise result
    return result


@st.cache_resource(max_entries=8, show_spinner="Reading checkpoint…")
def uploaded_model(digest: str, _data: bytes, file_name: str, head: str | None = None):
    from vizattn.zoo import load

    return refusal_kept(load, _data, file_name=file_name, head=head)


@st.cache_resource(max_entries=8, show_spinner="Reading checkpoint…")
def path_model(path: str, mtime: float, head: str | None = None):
    from vizattn.zoo import load

    return refusal_kept(load, path, head=head)


@st.cache_data(max_entries=8, show_spinner="Reading the image…")
def decoded_upload(digest: str, _data: bytes, file_name: str):
    """An uploaded image decoded once per content (or its refusal), not on every rerun."""
    return refusal_kept(read_image, _data, file_name)


@st.cache_resource(max_entries=32, show_spinner="Running the model once for this image…")
def forward_for(model_key: str, image_key: str, _model, _image: np.ndarray):
    """One forward pass with capture per (model, image), keyed by ids and a content hash, never the array.
    Large foreign checkpoints report their progress (slide crops) to a bar, gone once the forward is done."""
    from vizattn.explore import run_model

    bar = st.empty()
    try:
        # forwards take turns, each within a time budget (vizattn.guard); a session that has to wait says so
        with work_guard().slot(lambda: bar.info("Waiting for another session's model to finish…")) as deadline:
            def progress(done: int, total: int) -> None:
                deadline.check()
                bar.progress(done / max(1, total), text=f"Running the model on this image: step {done} of {total}")

            return refusal_kept(run_model, _model, _image, progress)  # a rerun does not spend the budget again
    finally:
        bar.empty()


@st.cache_resource
def work_guard() -> WorkGuard:
    """One guard for every session of this server process."""
    return WorkGuard()


def loopback_only() -> bool:
    """True while the server answers this machine only: only then may the page read paths on it."""
    return str(st.get_option("server.address") or "") in ("127.0.0.1", "localhost", "::1")


@st.cache_data(max_entries=16, show_spinner=False)
def scene(spec: str, size: int) -> ImageSource:
    return image_source(spec, size)


@st.cache_data(max_entries=8, show_spinner=False)
def cached_photo(image_key: str, under: str, _image: np.ndarray) -> str:
    """The photo under every panel, encoded once per image and backdrop (keyed by content hash, never the array)."""
    return photo_uri(_image, under=under)


@st.cache_resource(max_entries=8, show_spinner=False)
def hover_factors(grid_key: str, _chosen):
    """The records' factors the grid computes rows from (hover-follow), packed once per (models, image, views):
    a click only moves the pinned query. None over the size budget (the server then draws each query)."""
    return live_factors(_chosen)


def show_grid(src, chosen, titles, opts, columns: int, title: str, key: str, forwards_key: str,
              subtitles=None) -> None:
    live = hover_factors(f"{forwards_key}|{[(p.module, p.view) for p in chosen]}", chosen) or False
    args = grid_args(src.image, chosen, titles, opts["cmap"], opts["norm"], opts["alpha"], columns, title,
                     base=cached_photo(src.key, opts["under"], src.image), clip=opts["clip"], under=opts["under"],
                     subtitles=subtitles, live=live)
    if live and (st.session_state.get(key) or {}).get("have") == args["factors_key"]:
        args["blob"] = None  # the grid said it holds these factors: a click sends the pixel, not megabytes again
    panel_grid(**args, key=key, default=None)
    if not live:
        st.caption("This grid is too large for the browser to follow the pointer "
                   f"(its factors pass the {BUDGET >> 20} MiB budget): click a pixel to move the query.")


def pick_model():
    st.sidebar.header("Model")
    names = available()
    if not names:
        st.error("No bundled models in pretrained/: run `vizattn train --all` first.")
        st.stop()
    sources = ["bundled", "upload a checkpoint"] + (["a checkpoint path on this machine"] if loopback_only() else [])
    source = st.sidebar.radio("Source", sources, horizontal=True, key="model_source")
    if source != "bundled":
        from vizattn.models.segmenter import HEADS

        head = st.sidebar.selectbox("Head (plain state dicts of our architecture only)", ["from the keys", *HEADS],
                                    key="ckpt_head", help="mmseg checkpoints and vizattn checkpoints say it themselves")
        head = None if head == "from the keys" else head
        try:
            if source == "upload a checkpoint":
                up = st.sidebar.file_uploader("Checkpoint: ours (.safetensors, .pt) or an mmseg .pth", key="ckpt_upload")
                if up is not None:
                    data = up.getvalue()
                    key = digest(data)
                    model = loaded(uploaded_model(key, data, up.name, head))
                    st.session_state["last_model"] = (f"upload-{key}-{head}", safe_name(up.name), model)
            else:
                path = st.sidebar.text_input(
                    "A checkpoint file, a transformers model folder, or package.module:function", key="ckpt_path",
                    help="Read on the machine running this app, and offered only while the server is bound to "
                         "127.0.0.1. A factory runs your own code: use it for your own models only.")
                if path.strip():
                    from pathlib import Path

                    from vizattn.zoo import FACTORY

                    text = path.strip()
                    p = Path(text).expanduser()
                    if p.exists():
                        stamp = p.stat().st_mtime
                        model = loaded(path_model(str(p), stamp, head))
                        st.session_state["last_model"] = (f"path-{p}-{stamp}-{head}", safe_name(p.name or text), model)
                    elif FACTORY.fullmatch(text):
                        model = loaded(path_model(text, 0.0, None))
                        st.session_state["last_model"] = (f"factory-{text}", safe_name(text), model)
                    else:
                        raise VizattnError(f"Nothing at '{p}'; give the full path of a checkpoint or model folder, "
                                           "or package.module:function.")
        except VizattnError as err:
            st.sidebar.error(str(err))
        if "last_model" in st.session_state:
            card = getattr(st.session_state["last_model"][2], "card", {}) or {}
            if card.get("source") == "mmsegmentation":
                st.sidebar.caption(markdown_text(f"mmseg {card['mmseg_head']} on {card['backbone']} · "
                                                 f"{len(card['classes'])} classes from {card['classes_from']}"))
            elif card.get("source") == "transformers":
                st.sidebar.caption(markdown_text(f"transformers {card['module']} · {len(card['classes'])} classes "
                                                 f"from {card['classes_from']}"))
            return st.session_state["last_model"]
        st.sidebar.info("Until a checkpoint loads, the bundled default is shown.")
        names_default = DEFAULT_MODEL if DEFAULT_MODEL in names else names[0]
        return names_default, names_default, None
    default = names.index(DEFAULT_MODEL) if DEFAULT_MODEL in names else 0
    name = st.sidebar.selectbox("Bundled model", names, index=default, key="model_name")
    card = model_card(name)  # the card alone: the model loads where its forward runs
    ev = card.get("evaluation", {})
    options = ", ".join(f"{k}={v}" for k, v in card.get("module_options", {}).items())
    module = card.get("module") or "no attention (baseline)"
    st.sidebar.caption(f"{module}{f' ({options})' if options else ''} · held-out mIoU {ev.get('miou', 0):.3f}")
    st.session_state["last_model"] = (name, name, None)
    return st.session_state["last_model"]


def pick_image() -> ImageSource:
    st.sidebar.header("Image")
    kind = st.sidebar.radio("Source", ["sample scene", "scene from a seed", "upload"], key="image_source")
    size = st.sidebar.select_slider("Scene size (px)", [256, 384, 512], value=384, key="scene_size",
                                    help="generated scenes; the models were trained at 384")
    if kind == "sample scene":
        seed = st.sidebar.selectbox("Sample", SAMPLE_SEEDS, format_func=lambda s: f"scene {s}", key="sample_seed")
        src = scene(f"scene:{seed}", size)
    elif kind == "scene from a seed":
        seed = st.sidebar.number_input("Seed", 0, 2**31 - 1, SAMPLE_SEEDS[0], key="seed")
        src = scene(f"scene:{int(seed)}", size)
    else:
        up = st.sidebar.file_uploader(f"PNG or JPEG (longer side shrunk to {MAX_IMAGE_SIDE} px)",
                                      type=["png", "jpg", "jpeg", "bmp", "tif", "tiff", "webp"], key="image_upload")
        if up is not None:
            data = up.getvalue()
            try:
                st.session_state["last_upload"] = ImageSource(loaded(decoded_upload(digest(data), data, up.name)),
                                                              safe_name(up.name))
            except VizattnError as err:
                st.sidebar.error(str(err))
        src = st.session_state.get("last_upload") or scene(f"scene:{SAMPLE_SEEDS[0]}", size)
    return src


def display_options():
    st.sidebar.header("Display")
    return dict(
        cmap=st.sidebar.selectbox("Colormap", CMAPS, key="cmap"),
        under=st.sidebar.radio("Under the heatmap", BACKDROPS, key="backdrop", horizontal=True,
                               help="the photo dimmed to grey lets the colormap read at full strength"),
        alpha=st.sidebar.slider("Heatmap opacity", 0.0, 1.0, 0.9, 0.05, key="alpha"),
        clip=st.sidebar.slider("Contrast: saturate above this percentile", 90.0, 100.0, 100.0, 0.5, key="clip",
                               help="below 100, the strongest weights saturate so the rest of the map shows "
                                    "(as CCNet's authors clipped their figures); colorbars give the weights"),
        norm=st.sidebar.radio("Normalisation", NORMALISATIONS, key="norm",
                              help="per-map: each panel to its own top; shared: one scale across panels of one kind (distributions "
                                   "apart from gates); log, log shared: the same in decades"),
    )


def confidence_image(confidence: np.ndarray) -> np.ndarray:
    """The max class probability per pixel as an RGB image (magma, 0 black … 1 bright), on an absolute scale."""
    import matplotlib

    return (matplotlib.colormaps["magma"](np.clip(confidence, 0.0, 1.0))[..., :3] * 255).astype(np.uint8)


def click_pixel(click, displayed: bool, shape) -> tuple[int, int]:
    """(y, x) from a value a component sent back, validated like any input: a dict of finite numbers inside the
    image. `displayed`: the clickable image's coordinates, scaled from its displayed size; else image pixels."""
    import math

    from vizattn.explore import check_pixel

    h, w = shape
    try:
        y, x = float(click["y"]), float(click["x"])
        dh, dw = (float(click.get("height") or h), float(click.get("width") or w)) if displayed else (h, w)
        if not all(math.isfinite(v) for v in (y, x, dh, dw)) or dh <= 0 or dw <= 0:
            raise ValueError
        py, px = int(y * h / dh), int(x * w / dw)
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError):
        raise VizattnError("The click came back without a usable position; click on the image again.") from None
    return check_pixel(py, px, (h, w))


def current_pixel(shape) -> tuple[int, int]:
    h, w = shape
    if "pixel" not in st.session_state or st.session_state.get("pixel_shape") != (h, w):
        st.session_state["pixel"] = (h // 2, w // 2)
        st.session_state["pixel_shape"] = (h, w)
    for key in (CLICK_KEY, *GRID_KEYS):
        click = st.session_state.get(key)
        if not click or click == st.session_state.get(f"handled_{key}"):
            continue
        st.session_state[f"handled_{key}"] = click
        if isinstance(click, dict) and "have" in click and "y" not in click:
            continue  # the grid saying which factors it holds, not a click
        try:
            st.session_state["pixel"] = click_pixel(click, key == CLICK_KEY, (h, w))
        except VizattnError as err:
            st.warning(str(err))
    return st.session_state["pixel"]


def _typed_pixel(key_y: str, key_x: str) -> None:
    st.session_state["pixel"] = (int(st.session_state[key_y]), int(st.session_state[key_x]))


def _step_pixel(dy: int, dx: int, shape) -> None:
    (y, x), (h, w) = st.session_state["pixel"], shape
    st.session_state["pixel"] = (min(h - 1, max(0, y + dy)), min(w - 1, max(0, x + dx)))


def query_controls(shape):
    """Number inputs and one-cell steps; callbacks move the query before the rerun, so it draws once."""
    h, w = shape
    y, x = st.session_state["pixel"]
    c1, c2, c3, c4, c5, c6 = st.columns([2, 2, 1, 1, 1, 1])
    keys = (f"qy_{y}_{x}", f"qx_{y}_{x}")  # new keys when the query moves elsewhere, so the inputs follow
    c1.number_input("y", 0, h - 1, y, key=keys[0], on_change=_typed_pixel, args=keys)
    c2.number_input("x", 0, w - 1, x, key=keys[1], on_change=_typed_pixel, args=keys)
    step = 8  # one feature-grid cell at output stride 8
    for col, label, (dy, dx) in ((c3, "◀", (0, -step)), (c4, "▲", (-step, 0)), (c5, "▼", (step, 0)), (c6, "▶", (0, step))):
        col.button(label, key=f"move{label}", on_click=_step_pixel, args=(dy, dx, shape))


SECTIONS = ("Attention", "Compare models", "Statistics", "Analysis", "Export")


def main():
    st.set_page_config(page_title="vizattn", layout="wide")
    st.title("vizattn — where did this pixel look?")
    model_key, model_label, model = pick_model()
    src = pick_image()
    opts = display_options()
    explore(model_key, model_label, model, src, opts)


@st.fragment
def explore(model_key, model_label, model, src, opts):
    """Everything a click changes. A click reruns only this fragment (not the sidebar), and only the open
    section is computed and sent: the browser redraws what the person is looking at, nothing else."""
    from vizattn.explore import panels, unmapped

    if model is None:  # a bundled model, loaded on first use
        model = bundled_model(model_key)
    fw = loaded(forward_for(model_key, src.key, model, src.image))
    st.session_state["forward_key"] = f"{model_key}|{src.key}"
    y, x = current_pixel(fw.shape)

    if not fw.records:
        st.info(f"'{model_label}' has no attention module vizattn can read; pick another model, or name its "
                "attention modules with `vizattn.capture(model, modules=[...])` in Python.")
    for reason in unmapped(fw):
        st.caption(reason)
    chosen = panels(fw, y, x) if fw.records else []
    main = chosen[0] if chosen else None  # the first module's main view: panels() puts main views first
    ours = hasattr(getattr(model, "config", None), "head") and fw.classes == list(SCENE_CLASSES)
    if ours and src.labels is None:  # a photograph through a model that has only seen generated scenes
        st.warning("This model was trained only on vizattn's generated street scenes (9 classes) and has never seen "
                   "a photograph: on this image its prediction and its attention describe the model, not the photo. "
                   "Load a model trained on real images (an mmseg checkpoint, a transformers folder) to study those.")

    left, right = st.columns([3, 2])
    with left:
        st.subheader("Click a pixel")
        shown = (heat_overlay(src.image, main.image_map, opts["alpha"], opts["cmap"], opts["norm"],
                              pixel=(y, x), box=main.cell_box, clip=opts["clip"], under=opts["under"])
                 if main else label_overlay(src.image, fw.prediction, fw.palette))
        streamlit_image_coordinates(Image.fromarray(shown), key=CLICK_KEY, width="stretch",  # fits its column
                                    image_format="JPEG", jpeg_quality=90)
        query_controls(fw.shape)
        cls = markdown_text(fw.classes[fw.prediction[y, x]])
        gt = f" · truth **{markdown_text(fw.classes[src.labels[y, x]])}**" if src.labels is not None and fw.classes == list(SCENE_CLASSES) else ""
        st.markdown(f"Query pixel **({y}, {x})** · predicted **{cls}** ({fw.confidence[y, x]:.0%}){gt}")
    with right:
        st.subheader("Prediction")
        st.image(label_overlay(src.image, fw.prediction, fw.palette), width="stretch")
        truth_col, conf_col = st.columns(2)
        if src.labels is not None and fw.classes == list(SCENE_CLASSES):  # generated scenes carry our classes
            truth_col.caption("Ground truth")
            truth_col.image(label_overlay(src.image, src.labels, fw.palette, 0.7), width="stretch")
        conf_col.caption("Confidence (0 … 1)", help="the largest class probability: dark 0, bright 1")
        conf_col.image(confidence_image(fw.confidence), width="stretch")
        present = np.unique(fw.prediction) if len(fw.classes) > 12 else range(len(fw.classes))
        st.markdown(" ".join(  # class names come from files: escaped, never markup
            f"<span style='white-space:nowrap'><span style='background:rgb{tuple(int(v) for v in fw.palette[i])};"
            f"padding:0 6px;border-radius:3px'>&nbsp;</span> {markdown_text(fw.classes[i])}</span>"
            for i in present), unsafe_allow_html=True)
        if len(fw.classes) > 12:
            st.caption(f"Legend: the classes predicted in this image ({len(present)} of {len(fw.classes)}).")

    tabs = st.tabs(SECTIONS, key="section", on_change="rerun")  # lazy: only the open tab runs
    views = (lambda: attention_view(model_label, src, chosen, (y, x), opts),
             lambda: compare_view(src, (y, x), opts),
             lambda: statistics_view(chosen, src, fw),
             lambda: analysis_view(model, fw, src, (y, x), chosen),
             lambda: export_view(model_label, model, fw, src, (y, x)))
    for tab, view in zip(tabs, views):
        if tab.open:
            with tab:
                view()


def attention_view(model_label, src, chosen, pixel, opts):
    if not chosen:
        return
    show_grid(src, chosen, None, opts, 3, f"{model_label} at pixel {pixel}", "attn_grid", st.session_state["forward_key"])
    st.caption("The panels follow the pointer; a click pins the query there (arrow keys then move it a cell). "
               "Colorbars give the weights.")
    for note in dict.fromkeys(p.note for p in chosen if p.note):
        st.caption(note)
    state_marker("panel-state", f"panels for {pixel}")


def state_marker(element_id: str, text: str) -> None:
    """An invisible mark of what the page shows, for the browser tests and `vizattn bench app` to wait on."""
    st.markdown(f"<div id='{element_id}' style='display:none'>{text}</div>", unsafe_allow_html=True)


def attention_models() -> list[str]:
    return [n for n in available() if model_card(n).get("module")]


def picked_models() -> list[str]:
    """The comparison's models, kept while its tab is closed (a widget that is not drawn loses its state)."""
    return st.session_state.get("compare_picked", attention_models())


def compare_forwards(src, picked) -> dict:
    return {n: loaded(forward_for(n, src.key, bundled_model(n), src.image)) for n in picked}


def compare_view(src, pixel, opts):
    picked = st.multiselect("Models", attention_models(), default=picked_models())
    st.session_state["compare_picked"] = picked
    if not picked:
        return
    from vizattn.export import compare_panels

    chosen, titles, predictions = compare_panels(compare_forwards(src, picked), pixel, None)
    show_grid(src, chosen, titles, opts, 4, f"{len(picked)} models at pixel {pixel}", "compare_grid",
              f"{','.join(picked)}|{src.key}", predictions)
    state_marker("compare-state", f"compare for {pixel} over {len(picked)} models")


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
    has_truth = src.labels is not None and fw.classes == list(SCENE_CLASSES)  # scene labels are in our classes
    truth = src.labels if has_truth else fw.prediction
    instances = src.instances if has_truth else None
    shown = [p for p in chosen if p.distribution]
    several = len({p.module for p in shown}) > 1
    labels = [p.title if several else p.view for p in shown]
    stats = [panel_statistics(p, truth, instances) for p in shown]
    chance = [chance_statistics(p, truth, instances) for p in shown]
    charts = []
    if shown:
        st.caption(f"Per view at the clicked pixel, with what a uniform map would score (grey ticks). Class and object "
                   f"from {'the ground truth' if has_truth else 'the prediction'}"
                   + ("" if has_truth else "; objects need the ground truth of a generated scene") + ".")
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


@st.cache_data(max_entries=32, show_spinner="Analysing this image…")
def image_analyses(forward_key: str, _fw, _labels, _instances) -> dict:
    """The report's per-image statistics for one (model, image), by the same code as `vizattn report` and
    `vizattn analyze` (vizattn.analysis.summary); they do not depend on the clicked pixel, so a click reuses them."""
    from vizattn.analysis.summary import analyse_forward, sections

    return sections(analyse_forward("model", _fw, None, _labels, _instances, _fw.classes, 48, seed=0))


def analysis_rows(numbers: dict) -> list[dict]:
    rows = {}
    for label, v in numbers["query_independence"].items():
        rows.setdefault(label, {"module": label})["map distance between queries (GCNet)"] = v.get("attention")
    for label, v in numbers["unary_binary"].items():
        key = "LESA gate unary share" if "gate" in label else "self weight (unary share)"
        rows.setdefault(label.split(" (")[0], {"module": label.split(" (")[0]})[key] = v.get("unary")
    for k, v in numbers.get("coverage", {}).items():
        rows.setdefault("model", {"module": "model"})[f"coverage {k}"] = v
    return list(rows.values())


def analysis_view(model, fw, src, pixel, chosen):
    """The papers' analyses on this image; the full versions over many scenes are in `vizattn report`."""
    import copy

    from vizattn.analysis.attribution import attribution_report
    from vizattn.evaluate import to_tensor
    from vizattn.viz.analysis_figures import attribution_figure, psa_figure

    if not fw.records:
        return
    if (getattr(model, "card", {}) or {}).get("source") in ("mmsegmentation", "transformers") or not hasattr(model, "config") \
            or not hasattr(model.config, "head"):
        st.info("The analyses run on vizattn's own models; for another model use the Attention, Statistics and "
                "Export tabs, `vizattn query` / `vizattn compare`, or `vizattn report --models PATH --images DIR`.")
        return
    truth = src.labels is not None and fw.classes == list(SCENE_CLASSES)
    numbers = image_analyses(st.session_state["forward_key"], fw, src.labels if truth else None,
                             src.instances if truth else None)
    st.dataframe(analysis_rows(numbers), hide_index=True)
    where = [{"module": m, "query class": c, **v} for m, table in numbers["where"].items() for c, v in table.items()]
    if where:
        st.dataframe(where, hide_index=True)
        st.caption(f"Where attention lands, by the query's class ({'ground truth' if truth else 'the prediction'}): "
                   "mass on its own class and instance, mean distance in px; 48 sampled queries.")
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
        with st.spinner("Attributing… (32 integration steps, in chunks of 4)"):
            private = copy.deepcopy(model)  # captum hooks the layer: never on the model other sessions share
            layer = dict(private.named_modules())[target.module]
            rep = attribution_report(private, to_tensor(src.image), pixel, target.grid_map, layer)
        st.pyplot(attribution_figure(src.image, target.grid_map, rep["maps"], pixel, rep["rank_correlation"],
                                     f"attention: {target.view}"))
        st.caption(f"ρ: Spearman rank correlation with the attention map ({target.title}) on the feature grid.")


def export_view(model_label, model, fw, src, pixel):
    if not fw.records:
        return
    from vizattn.export import compare_files, query_files

    st.caption("The current panels and the comparison grid, as figures (matplotlib), HTML, NPZ maps and JSON.")
    picked = picked_models()
    hashes = lambda: {n: getattr(bundled_model(n), "sha256", None) for n in picked}  # noqa: E731
    for title, make in (("Current panels", lambda: query_files(model_label, fw, src, pixel, None,
                                                                getattr(model, "sha256", None))),
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


try:
    main()
except VizattnError as err:  # anything a user caused and the page did not catch closer to the source
    st.error(str(err))
except MemoryError:
    st.error("This model and image need more memory than the server has; try a smaller image or model.")
