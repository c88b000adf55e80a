"""Everything the page keeps between reruns and sessions: loaded models, decoded uploads, forwards, encoded
photos and the grid's factors (st.cache_resource / st.cache_data). A refusal is never cached as a result: it is
kept in the one refusal memory the library uses too (`vizattn.errors.REFUSALS`), under the same key as the cache,
and raised again at once by the next rerun or session."""
from __future__ import annotations

import threading

import numpy as np
import streamlit as st

from vizattn.errors import REFUSALS
from vizattn.guard import FORWARD_BUDGET_S, WorkGuard
from vizattn.io import read_image
from vizattn.sources import ImageSource, image_source
from vizattn.viz.panel_grid import live_factors, photo_uri


_TORCH_IMPORT = threading.Lock()


def import_torch() -> None:
    """Import PyTorch one thread at a time, before any code that needs it: two sessions' script threads importing it
    at once can see it half made (its modules import each other, which Python's import locks let through), and the
    page's first screen leaves PyTorch's import to the first run that needs it. Every loader below and the
    forward start here; once it is imported, this is a lock and a dict lookup."""
    with _TORCH_IMPORT:
        import torch  # noqa: F401


@st.cache_resource(max_entries=16, show_spinner="Loading model…")
def bundled_model(name: str):
    import_torch()
    from vizattn.zoo import load

    return load(name)


@st.cache_resource(max_entries=8, show_spinner="Reading checkpoint…")
def uploaded_model(digest: str, _data: bytes, file_name: str, head: str | None = None):
    import_torch()
    from vizattn.zoo import load

    return REFUSALS.run(("upload", digest, head), load, _data, file_name=file_name, head=head)


@st.cache_resource(max_entries=8, show_spinner="Reading checkpoint…")
def path_model(path: str, mtime: float, head: str | None = None):
    import_torch()
    from vizattn.zoo import load

    return REFUSALS.run(("path", path, mtime, head), load, path, head=head)


@st.cache_data(max_entries=8, show_spinner="Reading the image…")
def decoded_upload(digest: str, _data: bytes, file_name: str):
    """An uploaded image decoded once per content, not on every rerun (a refusal is kept by read_image itself)."""
    return read_image(_data, file_name)  # read_image keeps its refusals by content itself


@st.cache_resource(max_entries=32, show_spinner="Running the model once for this image…")
def forward_for(model_key: str, image_key: str, _model, _image: np.ndarray):
    """One forward pass with capture per (model, image), keyed by ids and a content hash, never the array.
    Large foreign checkpoints report their progress (slide crops) to a bar, gone once the forward is done."""
    from vizattn.explore import run_model

    import_torch()
    REFUSALS.check(("forward", model_key, image_key))  # refused before: at once, without waiting for a turn
    bar = st.empty()
    try:
        # forwards take turns, each within a time budget (vizattn.guard); a session that has to wait says so
        with work_guard(forward_budget_s()).slot(lambda: bar.info("Waiting for another session's model to finish…")) as deadline:
            def progress(done: int, total: int) -> None:
                deadline.check()
                bar.progress(done / max(1, total), text=f"Running the model on this image: step {done} of {total}")

            # a rerun does not spend the budget again on a forward that was refused
            fw = REFUSALS.run(("forward", model_key, image_key), run_model, _model, _image, progress)
    finally:
        bar.empty()
    _live().add((model_key, image_key))
    return fw


@st.cache_resource
def work_guard(budget_s: float = FORWARD_BUDGET_S) -> WorkGuard:
    """One guard for every session of this server process."""
    return WorkGuard(budget_s)


def forward_budget_s() -> float:
    """The time budget of one forward or attribution: VIZATTN_FORWARD_BUDGET_S (1 s … 1 h) where the operator
    set it, else vizattn.guard's default."""
    import os

    try:
        return min(3600.0, max(1.0, float(os.environ["VIZATTN_FORWARD_BUDGET_S"])))
    except (KeyError, ValueError):
        return FORWARD_BUDGET_S


@st.cache_resource
def _live() -> set:
    """(model key, image key) of every forward run live in this server process (kept or evicted since)."""
    return set()


@st.cache_resource(show_spinner=False)
def kept_opening():
    """The opening kept in the package (vizattn.opening), read once per server process; None where there is none
    for the bundled weights at hand."""
    from vizattn.opening import read_opening

    return read_opening()


def opening_fits(model_key: str, src: ImageSource, pixel: tuple[int, int]) -> bool:
    """Whether the kept opening can draw this run: the bundled model and scene it was written from, at its pixel,
    while the live forward has not run in this server."""
    if (model_key, src.key) in _live():
        return False
    opening = kept_opening()
    return (opening is not None and model_key == opening.model and src.key == opening.image_key
            and tuple(pixel) == tuple(opening.pixel))


def opening_forward(model_key: str, src: ImageSource, pixel: tuple[int, int]):
    """The kept opening's forward where it fits this run (opening_fits); else None. The page then draws its first
    screen without PyTorch, and runs the live forward once the browser holds that screen."""
    return kept_opening().forward(src.image) if opening_fits(model_key, src, pixel) else None


@st.cache_data(max_entries=16, show_spinner=False)
def scene(spec: str, size: int) -> ImageSource:
    return image_source(spec, size)


@st.cache_data(max_entries=8, show_spinner=False)
def cached_photo(image_key: str, under: str, _image: np.ndarray) -> str:
    """The photo under every panel, encoded once per image and backdrop (keyed by content hash, never the array)."""
    return photo_uri(_image, under=under)


@st.cache_resource(max_entries=8, show_spinner=False)
def cached_backdrop(image_key: str, under: str, _image: np.ndarray) -> np.ndarray:
    """What the clickable image's heatmap is blended over, made once per image and backdrop (read, never written)."""
    from vizattn.viz.overlay import backdrop

    out = backdrop(_image, under)
    out.flags.writeable = False
    return out


@st.cache_data(max_entries=8, show_spinner=False)
def prediction_pngs(forward_key: str, _image: np.ndarray, _fw, _labels) -> dict[str, bytes]:
    """The prediction, ground truth and confidence images as PNG bytes, encoded once per (model, image): they do
    not change with the query, and a click should not encode three 1024² images again."""
    import io

    from PIL import Image

    from vizattn.app.pure import confidence_image
    from vizattn.viz.overlay import label_overlay

    images = {"prediction": label_overlay(_image, _fw.prediction, _fw.palette),
              "confidence": confidence_image(_fw.confidence)}
    if _labels is not None:
        images["truth"] = label_overlay(_image, _labels, _fw.palette, 0.7)
    out = {}
    for name, array in images.items():
        buf = io.BytesIO()
        Image.fromarray(array).save(buf, "PNG", compress_level=1)
        out[name] = buf.getvalue()
    return out


@st.cache_resource(max_entries=8, show_spinner=False)
def hover_factors(grid_key: str, _chosen):
    """The records' factors the grid computes rows from (hover-follow), packed once per (models, image, views):
    a click only moves the pinned query. None over the size budget (the server then draws each query)."""
    return live_factors(_chosen)


@st.cache_data(max_entries=32, show_spinner="Analysing this image…")
def image_analyses(forward_key: str, _fw, _labels, _instances) -> dict:
    """The report's per-image statistics for one (model, image), by the same code as `vizattn report` and
    `vizattn analyze` (vizattn.analysis.summary); they do not depend on the clicked pixel, so a click reuses them."""
    from vizattn.analysis.summary import analyse_forward, sections

    return sections(analyse_forward("model", _fw, None, _labels, _instances, _fw.classes, 48, seed=0))
