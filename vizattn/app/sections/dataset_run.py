"""The Data set tab's analyze started from the page: a folder of images, the sidebar's model and an output folder,
run in the background by the server's one analyze slot (`vizattn.app.background.Runner`), with a progress bar polled
by a fragment, a Cancel button, and resume (the same settings into the same folder continue from finished shards)."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from vizattn.app.background import Runner, Status
from vizattn.app.sidebar import model_for_analyze
from vizattn.errors import VizattnError
from vizattn.text import markdown_text

PATH_KEY = "dataset_path"  # the Data set tab's folder field (vizattn.app.sections.dataset), opened when a run ends
ENGINES = {"local, 1 process": ("local", 1), "local, 2 processes": ("local", 2), "Ray, 2 workers": ("ray", 2)}
RUN_KEY, OPENED_KEY, SEEN_KEY = "dataset_run", "dataset_run_opened", "dataset_run_seen"
POLL_S = 0.5


def keep(key: str, default) -> None:
    """Restore a field the last open of this tab left (a closed tab's widgets are forgotten; their copies are not)."""
    if key not in st.session_state:
        st.session_state[key] = st.session_state.get(f"{key}_kept", default)


@st.cache_resource(show_spinner=False)
def server_runner() -> Runner:
    """The server's one analyze slot, shared by every session."""
    return Runner()


def open_finished_run() -> None:
    """The run this session started has finished: open its folder as if typed in (once; before the field exists)."""
    s = server_runner().status()
    if s and s.state == "finished" and s.id == st.session_state.get(RUN_KEY) != st.session_state.get(OPENED_KEY):
        st.session_state[OPENED_KEY] = s.id
        st.session_state[PATH_KEY] = s.out


def start_form() -> None:
    """A folder of images, the sidebar's model, an output folder, queries, shard size and engine; Start runs it in
    the background. Starting the same job into the same folder resumes it."""
    running = (s := server_runner().status()) is not None and s.state == "running"
    model, why = model_for_analyze()
    with st.expander("Start an analyze here", expanded=bool(st.session_state.get(RUN_KEY))):
        if model is None:
            st.warning(why)
        else:
            st.caption(f"Model: **{markdown_text(model)}** (the sidebar's). The same settings into the same output "
                       "folder resume a cancelled or failed run from its finished shards.")
        for key, default in (("dataset_images", ""), ("dataset_out", ""), ("dataset_queries", 64),
                             ("dataset_shard", 8), ("dataset_engine", next(iter(ENGINES)))):
            keep(key, default)
        with st.form("dataset_start", border=False):
            images = st.text_input("A folder of images on this machine", key="dataset_images",
                                   help="PNG, JPEG, BMP, TIFF or WebP; classes come from the model's own prediction "
                                        "(for label folders, run `vizattn analyze --labels` in a terminal)")
            out = st.text_input("Output folder (made if missing)", key="dataset_out")
            left, middle, right = st.columns(3)
            queries = left.number_input("Queries per image", 1, 4096, key="dataset_queries",
                                        help="query pixels sampled per image and module (--queries)")
            shard = middle.number_input("Images per shard", 1, 1000, key="dataset_shard",
                                        help="the unit of progress, cancel and resume (--shard-size): keep it to "
                                             "resume a run")
            engine = right.radio("Engine", list(ENGINES), key="dataset_engine")
            submitted = st.form_submit_button("Start", disabled=model is None or running, type="primary",
                                              key="dataset_start_button")
        for key in ("dataset_images", "dataset_out", "dataset_queries", "dataset_shard", "dataset_engine"):
            st.session_state[f"{key}_kept"] = st.session_state[key]
        if submitted and model is not None:
            try:
                start(model, images, out, int(queries), int(shard), engine)
            except VizattnError as err:
                st.error(str(err))


def start(model: str, images: str, out: str, queries: int, shard: int, engine: str) -> None:
    from vizattn.analyze import Job

    if not images.strip():
        raise VizattnError("Give the folder of images to analyse.")
    folder = Path(images.strip()).expanduser()
    if folder.is_symlink() or not folder.is_dir():
        raise VizattnError(f"'{folder}' is not a folder (links are refused); give a folder of images on this machine.")
    if not out.strip():
        raise VizattnError("Give an output folder: the run's files go there, and the same folder resumes the run.")
    name, workers = ENGINES.get(engine, ENGINES[next(iter(ENGINES))])
    target = Path(out.strip()).expanduser()
    if target.resolve() == folder.resolve():
        raise VizattnError("Give an output folder other than the images' own: the run's figures would join the images "
                           "and change the run's image list.")
    job = Job(model=model, images=_spelled(folder, target), queries=queries)
    st.session_state[RUN_KEY] = server_runner().start(job, str(target), name, workers, shard)
    st.rerun()  # the form (Start disabled while it runs) and the progress, drawn for the running state


def _spelled(folder: Path, out: Path) -> str:
    """The images folder as the job names it: as the run already in `out` spelled it when that is the same folder
    (a run started in a terminal with a relative --images resumes from here), else its absolute path."""
    from vizattn.runs import MANIFEST, load_plan

    here = str(folder.resolve())
    if not (out / MANIFEST).is_file() or (out / MANIFEST).is_symlink():
        return here
    try:
        earlier = load_plan(out).job.get("images")
        return earlier if earlier and Path(earlier).expanduser().resolve() == Path(here) else here
    except (VizattnError, OSError, ValueError, TypeError, AttributeError):
        return here  # the run's own refusal, if any, comes from analyze with its sentence


def progress_view() -> None:
    """The server's run, polled while it runs (a fragment: the rest of the page does not rerun)."""
    s = server_runner().status()
    running = s is not None and s.state == "running"
    st.fragment(_progress, run_every=POLL_S if running else None)()


def _progress() -> None:
    s: Status | None = server_runner().status()
    if s is None:
        return
    seen, now = st.session_state.get(SEEN_KEY), (s.id, s.state)
    st.session_state[SEEN_KEY] = now
    if seen is not None and seen[0] == s.id and seen[1] == "running" != s.state:
        st.rerun(scope="app")  # ended while polled: the whole tab follows (the form, the finished folder)
    job, t = s.job, markdown_text  # paths are text, never markup
    what = t(f"{job.model} on '{job.images}' into '{s.out}'")
    if s.state == "running":
        if s.total is None:
            st.progress(0.0, text=f"Planning: hashing the images and loading the model · {what}")
        else:
            st.progress(s.done / max(s.total, 1), text=f"{s.done} of {s.total} shards · {what}")
        if s.resumed:
            st.caption(f"Resuming: {s.resumed} of {s.total} shards already done.")
        st.button("Cancelling after the shard in flight…" if s.cancelling else "Cancel", key="dataset_cancel",
                  disabled=s.cancelling, on_click=server_runner().cancel, args=(s.id,))
    elif s.state == "finished":
        resumed = f" ({s.resumed} resumed from an earlier run)" if s.resumed else ""
        st.success(f"Finished: {s.total} shards{resumed} · {what}.")
        if s.id != st.session_state.get(RUN_KEY):  # another session's run: opened only on request
            st.button("Open it", key="dataset_open_other", on_click=_open_path, args=(s.out,))
    elif s.state == "cancelled":
        st.warning(f"Cancelled after {s.done} of {s.total} shards · {what}. The finished shards are kept: Start "
                   "again with the same settings to resume.")
    else:
        st.error(t(s.message))


def _open_path(path: str) -> None:
    st.session_state[PATH_KEY] = path
