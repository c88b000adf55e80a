"""The Data set tab: a `vizattn analyze` output folder on this machine, opened by path, or an analyze started here
on a folder of images (in the background, with progress, cancel and resume) and opened when it finishes: each
statistic's spread by class and by module/view, and its extreme queries; selecting an extreme opens that image at
that pixel."""
from __future__ import annotations

import io
from pathlib import Path

import streamlit as st

from vizattn.app.sections.dataset_run import PATH_KEY, keep, progress_view, open_finished_run, start_form
from vizattn.app.sidebar import loopback_only
from vizattn.bundled import available
from vizattn.errors import REFUSALS, VizattnError
from vizattn.statnames import WHERE_COLUMNS, statistic_name
from vizattn.text import markdown_text

TABLE_KEY = "dataset_extremes"
LIMITS = {"summary.json": 64 << 20, "rows.parquet": 1 << 30, "extremes.parquet": 256 << 20}
COLUMNS = {"rows.parquet": ("image", "model", "statistic", "value", "count"),
           "extremes.parquet": ("statistic", "class", "module", "view", "image", "y", "x", "value", "rank", "end")}
TABLE_ROWS = 7  # the extremes table's visible rows (it scrolls): the charts and the table fit one screen


def read_file(folder: Path, name: str) -> bytes:
    """One of the run's files through the safe reader: a link, a FIFO or device, an unreadable or an oversized file
    is refused in the reader's own sentence (what was wrong), with what to do here."""
    from vizattn.outputs import read_bounded

    path = folder / name
    if path.is_symlink():
        raise VizattnError(f"'{path}' is a symbolic link; the page reads only the files `vizattn analyze` wrote.")
    if not path.exists():
        raise VizattnError(f"'{folder}' has no {name}: open the --out folder of a finished `vizattn analyze` run.")
    return read_bounded(path, f"'{path}'", LIMITS.get(name, 64 << 20),
                        "open the --out folder of a finished `vizattn analyze` run")


def read_table(folder: Path, name: str):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        frame = pq.read_table(io.BytesIO(read_file(folder, name))).to_pandas()
    except (pa.ArrowException, OSError, ValueError):
        raise VizattnError(f"'{folder / name}' is not a Parquet table vizattn analyze wrote; open another folder.") from None
    missing = [c for c in COLUMNS[name] if c not in frame.columns]
    if missing:
        raise VizattnError(f"'{folder / name}' lacks the column(s) {', '.join(missing)}; it was not written by this "
                           "version of vizattn analyze.")
    return frame


def _open_run(folder: Path) -> dict:
    import json

    from vizattn.runs import load_plan

    if folder.is_symlink() or not folder.is_dir():
        raise VizattnError(f"'{folder}' is not a folder (links are refused); give the --out folder of `vizattn analyze`.")
    try:
        summary = json.loads(read_file(folder, "summary.json"))
    except (ValueError, RecursionError):
        raise VizattnError(f"'{folder / 'summary.json'}' is not JSON; open another folder.") from None
    if not isinstance(summary, dict) or not isinstance(summary.get("result"), dict):
        raise VizattnError(f"'{folder / 'summary.json'}' is not the summary vizattn analyze writes.")
    return {"result": summary["result"], "job": load_plan(folder).job,
            "rows": read_table(folder, "rows.parquet"), "extremes": read_table(folder, "extremes.parquet")}


@st.cache_data(max_entries=4, show_spinner="Reading the analysis…")
def open_run(folder: str, stamp: tuple) -> dict:
    """The run's result, plan, rows and extremes; keyed by the files' modification times (and so is a refusal)."""
    return REFUSALS.run(("analysis folder", folder, stamp), _open_run, Path(folder))


def stamp_of(folder: Path) -> tuple:
    return tuple((folder / n).lstat().st_mtime_ns if (folder / n).exists() or (folder / n).is_symlink() else 0
                 for n in ("analyze.json", *LIMITS))


def dataset_view():
    if not loopback_only():
        st.info("An analysis folder is read, and an analyze run, on the machine running this app, so this tab works "
                "only while the server is bound to 127.0.0.1 and used from that machine: run `vizattn analyze --out "
                "DIR` and `vizattn app` there.")
        return
    open_finished_run()
    keep(PATH_KEY, "")
    text = st.text_input("The --out folder of a `vizattn analyze` run", key=PATH_KEY,
                         help="Read on the machine running this app; its files are only read.")
    st.session_state[f"{PATH_KEY}_kept"] = text
    start_form()
    progress_view()
    note = st.session_state.get("drill_note")
    if note:
        st.success(note)
    if not text.strip():
        st.caption("Give a folder to see its statistics by class and module, and to open its extreme queries.")
        return
    show_run(Path(text.strip()).expanduser())


def show_run(folder: Path) -> None:
    try:
        run = open_run(str(folder), stamp_of(folder))
    except OSError as err:
        raise VizattnError(f"'{folder}' cannot be read ({err.strerror}).") from None
    result = run["result"]
    st.caption(markdown_text(f"{result.get('model', '?')} on {result.get('images', '?')} images "
                             f"({result.get('source', '?')}) · {result.get('rows', len(run['rows']))} rows · "
                             f"{len(run['extremes'])} extremes"))
    extremes, rows = run["extremes"], run["rows"]
    stats = sorted(set(extremes["statistic"]) | set(where_rows(rows)["stat"]))
    if not stats:
        st.info("This run has no per-class statistics (its model has no attention module with a distribution).")
        other_statistics(rows)
        return
    stat = st.selectbox("Statistic", stats, format_func=lambda s: WHERE_COLUMNS.get(s, s), key="dataset_stat")
    distributions(stat, rows, extremes)
    extremes_table(stat, extremes, run["job"], str(folder))
    other_statistics(rows)


def where_rows(rows):
    """rows.parquet's per-image `where|module|class|statistic` rows, split into columns."""
    where = rows[rows["statistic"].str.startswith("where|")].copy()
    parts = where["statistic"].str.split("|", n=3, expand=True)
    if where.empty or parts.shape[1] < 4:
        return where.assign(module=[], cls=[], stat=[])
    return where.assign(module=parts[1], cls=parts[2], stat=parts[3])


def distributions(stat: str, rows, extremes) -> None:
    import plotly.express as px

    name = WHERE_COLUMNS.get(stat, stat)
    per_image = where_rows(rows)
    per_image = per_image[per_image["stat"] == stat]
    tails = extremes[extremes["statistic"] == stat].assign(where=lambda f: f["module"] + " · " + f["view"])
    classes = sorted(set(per_image["cls"]) | set(tails["class"]))  # one order in both charts and the table
    if not per_image.empty:
        fig = px.box(per_image, x="cls", y="value", color="module", points="all", hover_data=["image", "count"],
                     labels={"cls": "query class", "value": name}, title=f"{name}: per image, by class",
                     category_orders={"cls": classes})
        st.plotly_chart(fig.update_layout(height=260, margin=dict(t=40, b=10)), key="dataset_by_class")
    if not tails.empty:
        fig = px.strip(tails, x="class", y="value", color="where", hover_data=["image", "y", "x", "rank", "end"],
                       labels={"class": "query class", "value": name, "where": "module · view"},
                       title=f"{name}: the extreme queries, by class and module · view",
                       category_orders={"class": classes})
        st.plotly_chart(fig.update_layout(height=260, margin=dict(t=40, b=10)), key="dataset_by_module")


def other_statistics(rows) -> None:
    """Every statistic that is not per class (the papers' GCNet, unary/binary, coverage and PSA numbers), per
    image: one horizontal box per statistic, coloured by module."""
    import plotly.express as px

    others = rows[~rows["statistic"].str.startswith("where|")]
    if others.empty:
        return
    named = [statistic_name(k) for k in others["statistic"]]
    others = others.assign(module=[m or model for (m, _), model in zip(named, others["model"])],
                           name=[n for _, n in named])
    fig = px.box(others, x="value", y="name", color="module", points="all", orientation="h", hover_data=["image"],
                 labels={"name": "", "value": "per-image value"}, title="The other statistics, per image")
    height = 120 + 34 * others["name"].nunique() * max(1, others["module"].nunique())
    st.plotly_chart(fig.update_layout(height=height, margin=dict(t=40, b=10), boxmode="group"), key="dataset_others")


def extremes_table(stat: str, extremes, job: dict, folder: str) -> None:
    shown = (extremes[extremes["statistic"] == stat]
             .sort_values(["class", "module", "view", "end", "rank"]).reset_index(drop=True))
    st.caption("Select a row to open that image at that query pixel in the main view.")
    key = f"{TABLE_KEY}_{stat}"
    columns = ["class", "module", "view", "end", "rank", "value", "image", "y", "x"]  # the statistic is chosen above
    config = {c: st.column_config.NumberColumn(c, width="small") for c in ("rank", "y", "x")}
    config["value"] = st.column_config.NumberColumn(WHERE_COLUMNS.get(stat, stat), format="%.4g")
    event = st.dataframe(shown[columns], key=key, on_select="rerun", selection_mode="single-row", hide_index=True,
                         width="stretch", height=TABLE_ROWS * 35 + 38, column_config=config)
    chosen = (st.session_state.get(key) or event or {}).get("selection", {}).get("rows", [])
    handled = (folder, stat, tuple(chosen))
    if handled == st.session_state.get(f"handled_{TABLE_KEY}") or not chosen or chosen[0] >= len(shown):
        st.session_state[f"handled_{TABLE_KEY}"] = handled
        return
    st.session_state[f"handled_{TABLE_KEY}"] = handled
    drill(shown.iloc[chosen[0]], job)


def drill(row, job: dict) -> None:
    """Hand the image, the pixel and the run's model to the sidebar and the query (read at their top), and rerun
    the whole page with them."""
    from vizattn.sources import image_source

    item, (y, x) = str(row["image"]), (int(row["y"]), int(row["x"]))
    if item.startswith("scene:"):
        src = image_source(item, int(job.get("size") or 384))
    else:
        if not job.get("images") or Path(item).name != item or item in (".", ".."):
            raise VizattnError(f"'{item}' is not an image of this run's --images folder; nothing was opened.")
        src = image_source(str(Path(job["images"]).expanduser() / item))
    h, w = src.image.shape[:2]
    if not (0 <= y < h and 0 <= x < w):
        raise VizattnError(f"The pixel ({y}, {x}) is outside '{item}' ({h}×{w}); the image changed since the run.")
    model = job.get("model")
    st.session_state["drill_source"] = src
    st.session_state["drill_pixel"] = (y, x)
    st.session_state["drill_model"] = model if model in available() else None
    kept = "" if model in available() else f" (the run's model '{model}' is not a bundled one: the page keeps its own)"
    name = WHERE_COLUMNS.get(row["statistic"], row["statistic"])
    t = markdown_text  # the names come from files: escaped, never markup
    st.session_state["drill_note"] = (
        f"**{t(name)} {row['value']:.3g}** at ({y}, {x}) of {t(item)} — rank {row['rank']} {t(str(row['end']))} "
        f"for class {t(str(row['class']))}, module {t(str(row['module']))} · {t(str(row['view']))}{t(kept)}")
    st.rerun()
