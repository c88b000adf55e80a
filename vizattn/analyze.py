"""`vizattn analyze`: the papers' statistics over a whole image set, in one process, in K local processes, or on a
Ray cluster (Ray Data: `map_batches` over shards with one model-holding actor per worker).

The images are split into shards. A worker analyses a shard image by image (`analyse_forward`, the report's own
code) and returns only a small summary and one row per (image, statistic); the driver writes each shard as it
arrives (its rows to Parquet, its summary to JSON, each renamed into place only when complete). A rerun with the
same arguments skips finished shards, so a killed worker or run loses only the shards in flight, and the merged
numbers equal those of an uninterrupted run: each image is analysed with the same seed wherever it runs, and
summaries merge associatively. Memory stays flat: no worker or driver holds more than one shard's images."""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from vizattn.errors import VizattnError
from vizattn.io import image_geometry
from vizattn.labels import IGNORE, check_labels, label_path, read_labels  # noqa: F401 (IGNORE, read_labels: re-exported)
from vizattn.outputs import check_names, output_dir, read_small, replace_into, write_into
from vizattn.analysis.summary import TAIL_K
from vizattn.runs import Plan, bind, file_digest, load_plan, shard_file, verify



@dataclass(frozen=True)
class Job:
    """Everything a worker needs, as plain data (it travels to other processes and machines)."""
    model: str
    images: str | None = None
    scenes: int | None = None
    labels: str | None = None
    queries: int = 64
    size: int = 384  # generated scenes' side
    seed: int = 1_000_500_000  # first generated scene: held out, as the report's
    reduce_zero_label: bool = False  # ADE20K's raw annotations: 0 is "other" (ignored), class k is stored as k + 1

    def items(self) -> list[str]:
        if self.images:
            from vizattn.io import image_files

            files = [p.name for p in image_files(self.images)]
            return files[: self.scenes] if self.scenes else files
        return [f"scene:{self.seed + i}" for i in range(self.scenes or 0)]


# --- one shard ------------------------------------------------------------------------------------------------

class ShardWorker:
    """Holds the model (loaded once per worker) and analyses shards of images."""

    def __init__(self, job: Job, model_sha256: str | None = None):
        import torch

        from vizattn.explore import model_classes
        from vizattn.zoo import load

        self.job = job
        self.model = load(job.model).eval()
        if self.model.provenance.sha256 != model_sha256:  # the run is tied to the weights, not to their path
            raise VizattnError(f"The model at '{job.model}' changed since this run was planned (sha256 "
                               f"{str(self.model.provenance.sha256)[:12]}…, planned {str(model_sha256)[:12]}…); "
                               "rerun with another --out.")
        if torch.cuda.is_available():  # a GPU actor (--gpus 1) or a GPU machine: the forward runs there
            self.model.to("cuda")
        self.classes, self.palette = model_classes(self.model)
        self.name = Path(job.model).stem if os.sep in job.model or "." in job.model else job.model

    def image(self, item: str):
        """(image, labels in the model's classes or None, instances or None) of one item."""
        from vizattn.data import CLASSES

        if item.startswith("scene:"):
            from vizattn.data import generate_scene

            scene = generate_scene(int(item[6:]), (self.job.size, self.job.size))
            truth = list(self.classes) == list(CLASSES)  # scene labels are in our classes
            return scene.image, (scene.labels if truth else None), (scene.instances if truth else None)
        from vizattn.io import read_image

        image = read_image(Path(self.job.images) / item)
        labels = None
        if self.job.labels:
            orientation = image_geometry(Path(self.job.images) / item)[2]  # the label turns as its image does
            labels = read_labels(label_path(Path(self.job.labels), item), image.shape[:2], self.classes, self.palette,
                                 self.job.reduce_zero_label, orientation)
        return image, labels, None

    def __call__(self, shard: int, items: list[str], first_index: int) -> tuple[dict, list[dict]]:
        import torch

        from vizattn.analysis.maps import module_io
        from vizattn.analysis.summary import Summary, analyse_forward
        from vizattn.explore import run_model

        total, rows = Summary(), []
        with torch.no_grad():
            for offset, item in enumerate(items):
                image, labels, instances = self.image(item)
                with module_io(self.model) as io_:
                    fw = run_model(self.model, image)
                # the seed is the image's place in the whole set: the same numbers whichever worker runs it
                s = analyse_forward(self.name, fw, io_, labels, instances, self.classes, self.job.queries,
                                    seed=first_index + offset, image=item)
                rows += s.per_image_rows(item, self.name)
                total = total.merge(s)
        return total.to_dict(), rows


# --- shards on disk -------------------------------------------------------------------------------------------

def make_plan(job: Job, shard_size: int) -> Plan:
    """The run's plan: arguments, the model's weights and every image (and label) by content."""
    from vizattn.zoo import weights_sha256

    names = job.items()
    items = [[n, None if n.startswith("scene:") else file_digest(Path(job.images) / n)] for n in names]
    labels = []
    if job.labels:
        labels = [[p.name, file_digest(p)] for p in (label_path(Path(job.labels), n) for n in names) if p is not None]
    return Plan(asdict(job), shard_size, weights_sha256(job.model), items, labels)


def write_shard(out: Path, plan: Plan, shard: int, items: list[str], summary: dict, rows: list[dict]) -> None:
    """Rows first, then the summary: a shard is finished exactly when its summary file exists and verifies."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=row_schema()), buf)
    folder = out / "shards"
    replace_into(folder, f"{shard:05d}.parquet", buf.getvalue())
    replace_into(folder, f"{shard:05d}.json",
                 shard_file(plan, shard, items, summary, buf.getvalue(), len(rows), plan.model_sha256))


def extremes_schema():
    """extremes.parquet: per statistic × class × module/view, the TAIL_K highest and lowest queries."""
    import pyarrow as pa

    return pa.schema([("statistic", pa.string()), ("class", pa.string()), ("module", pa.string()),
                      ("view", pa.string()), ("image", pa.string()), ("y", pa.int64()), ("x", pa.int64()),
                      ("value", pa.float64()), ("rank", pa.int64()), ("end", pa.string())])


def row_schema():
    import pyarrow as pa

    return pa.schema([("image", pa.string()), ("model", pa.string()), ("statistic", pa.string()),
                      ("value", pa.float64()), ("count", pa.int64())])


# --- engines --------------------------------------------------------------------------------------------------

_WORKER: ShardWorker | None = None


def _init_process(job: dict, threads: int, model_sha256: str | None) -> None:
    global _WORKER
    import torch

    torch.set_num_threads(threads)
    _WORKER = ShardWorker(Job(**job), model_sha256)


def _run_in_process(task):
    return task[0], *_WORKER(*task)


class Cancelled(VizattnError):
    """Raised by an `on_shard` callback to stop a run: no further shard starts, the finished shards stay on disk,
    and the same call (same arguments, same --out) resumes from them."""


def run_local(job: Job, plan: Plan, tasks, out: Path, workers: int, progress) -> None:
    items_of = {shard: items for shard, items, _ in tasks}
    if workers <= 1:
        worker = ShardWorker(job, plan.model_sha256)
        for shard, items, first in tasks:
            write_shard(out, plan, shard, items, *worker(shard, items, first))
            progress(1)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    threads = max(1, (os.cpu_count() or 1) // workers)
    ctx = multiprocessing.get_context("spawn")  # torch and fork do not mix
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_process,
                             initargs=(asdict(job), threads, plan.model_sha256)) as pool:
        futures = [pool.submit(_run_in_process, t) for t in tasks]
        try:
            for f in as_completed(futures):
                shard, summary, rows = f.result()
                write_shard(out, plan, shard, items_of[shard], summary, rows)
                progress(1)
        except Cancelled:
            pool.shutdown(wait=True, cancel_futures=True)  # shards in flight finish (unwritten); none starts
            raise
        except BrokenProcessPool:
            raise VizattnError("A worker process died (killed, or out of memory); the finished shards are kept: "
                               "run the same command again to resume.") from None


class _RayShards:
    """Ray Data's callable class: one per actor, holding the model; one shard per batch."""

    def __init__(self, job: dict, model_sha256: str | None = None, threads: int = 1):
        import torch

        torch.set_num_threads(threads)
        self.worker = ShardWorker(Job(**job), model_sha256)

    def __call__(self, batch: dict) -> dict:
        out = {"shard": [], "summary": [], "rows": []}
        for shard, items, first in zip(batch["shard"], batch["items"], batch["first"]):
            summary, rows = self.worker(int(shard), json.loads(items), int(first))
            out["shard"].append(int(shard))
            out["summary"].append(json.dumps(summary))
            out["rows"].append(json.dumps(rows))
        return out


def run_ray(job: Job, plan: Plan, tasks, out: Path, workers: int, address: str | None, gpus: int, progress) -> None:
    try:
        import ray
    except ImportError:
        raise VizattnError("--engine ray needs Ray (pip install 'ray[data]').") from None
    started = not ray.is_initialized()
    if started:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=max(workers, 1), include_dashboard=False, log_to_driver=False)
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # ours counts shards
        ds = ray.data.from_items([{"shard": s, "items": json.dumps(items), "first": first} for s, items, first in tasks],
                                 override_num_blocks=max(1, len(tasks)))
        per_gpu = {"num_gpus": 1} if gpus else {"num_cpus": 1}
        results = ds.map_batches(_RayShards, fn_constructor_kwargs={"job": asdict(job), "model_sha256": plan.model_sha256},
                                 batch_size=1,
                                 concurrency=workers, **per_gpu)
        items_of = {shard: items for shard, items, _ in tasks}
        for row in results.iter_rows():
            shard = int(row["shard"])
            write_shard(out, plan, shard, items_of[shard], json.loads(row["summary"]), json.loads(row["rows"]))
            progress(1)
    finally:
        if started:
            ray.shutdown()


# --- the whole run --------------------------------------------------------------------------------------------

REPORT_FILES = ("rows.parquet", "extremes.parquet", "summary.json", "report.md",
                *(f"{name}.{fmt}" for name in ("query_independence", "unary_binary", "psa", "where_own_class",
                                               "where_distance_px") for fmt in ("png", "svg")))


def merged(source: Path | dict[int, dict]) -> dict:
    """The merged summary of verified shards (a run's folder: those that verify against its plan), in shard order."""
    from vizattn.analysis.summary import Summary

    shards = source if isinstance(source, dict) else verify(Path(source), load_plan(Path(source))).good
    total = Summary()
    for shard in sorted(shards):
        total = total.merge(Summary.from_dict(shards[shard]["summary"]))
    return total.to_dict()


def analyze(job: Job, out: str | Path, engine: str = "local", workers: int = 1, address: str | None = None,
            gpus: int = 0, shard_size: int = 8, progress: bool = True, on_shard=None) -> dict:
    """Run (or resume) `job` into `out`. `on_shard(done, total)` is called once before the first shard (done = the
    shards already finished on disk) and after each shard is written; raising `Cancelled` from it stops the run
    with the finished shards kept (the page's progress bar and cancel button)."""
    from tqdm import tqdm

    if engine not in ("local", "ray"):
        raise VizattnError(f"--engine is local or ray, not '{engine}'.")
    out = output_dir(out)
    check_names(out, REPORT_FILES)  # a planted link is refused before anything is written
    check_labels(job)
    if not job.items():
        raise VizattnError("Nothing to analyse: give --scenes N (N ≥ 1) or an --images folder with images.")
    plan = make_plan(job, shard_size)
    bind(out, plan)
    tasks = plan.shards()
    state = verify(out, plan)
    pending = [t for t in tasks if t[0] not in state.good]
    t0 = time.time()
    done = [len(tasks) - len(pending)]
    if on_shard is not None:
        on_shard(done[0], len(tasks))
    with tqdm(total=len(tasks), initial=done[0], desc="shards", unit="shard", disable=not progress) as bar:
        def advance(n: int) -> None:
            bar.update(n)
            done[0] += n
            if on_shard is not None:
                on_shard(done[0], len(tasks))

        if pending:
            if engine == "local":
                run_local(job, plan, pending, out, workers, advance)
            else:
                run_ray(job, plan, pending, out, workers, address, gpus, advance)
    result = finish(out, job, plan)
    result["wall_time_s"] = round(time.time() - t0, 1)
    result["resumed_shards"] = len(tasks) - len(pending)
    result["recomputed"] = state.damaged  # this plan's shard files that failed verification, done again
    result["not_merged"] = state.strays  # files in shards/ the plan does not name
    return result


def finish(out: Path, job: Job, plan: Plan) -> dict:
    """Merged numbers to summary.json, every per-image row to rows.parquet, the report's figures and report.md,
    from shards that verify against the plan, and only when every shard of the plan does."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from vizattn import jsonsafe
    from vizattn.analysis import query_independence as qi
    from vizattn.analysis import unary
    from vizattn.analysis.summary import Summary, sections, tail_rows
    from vizattn.report import _save, save_where_figures
    from vizattn.viz import analysis_figures as figs

    state = verify(out, plan)
    missing = [s for s, _, _ in plan.shards() if s not in state.good]
    if missing:
        raise VizattnError(f"{len(missing)} shard(s) of this run did not verify (e.g. shards/{missing[0]:05d}.json); "
                           "run the same command again to recompute them.")
    summary = merged(state.good)
    numbers = sections(Summary.from_dict(summary))
    images = len(plan.items)
    result = {"model": job.model, "model_sha256": plan.model_sha256, "plan": plan.digest, "images": images,
              "source": job.images or f"{job.scenes} generated scenes", "labels": job.labels, **numbers}
    tables = [pq.read_table(io.BytesIO(read_small(out / "shards", f"{s:05d}.parquet", 1 << 30)))
              for s in sorted(state.good)]
    table = pa.concat_tables(tables) if tables else row_schema().empty_table()
    expected = sum(int(state.good[s]["rows"]) for s in state.good)
    if table.num_rows != expected:
        raise VizattnError(f"rows.parquet would hold {table.num_rows} of {expected} rows; run the same command "
                           "again to recompute the run's shards.")
    result["rows"] = table.num_rows
    buf = io.BytesIO()
    pq.write_table(table, buf)
    write_into(out, "rows.parquet", buf.getvalue())
    extremes = tail_rows(Summary.from_dict(summary))
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(extremes, schema=extremes_schema()), buf)
    write_into(out, "extremes.parquet", buf.getvalue())
    result["extremes"] = len(extremes)
    write_into(out, "summary.json", (jsonsafe.dumps({"result": result, "summary": summary}, indent=2) + "\n").encode())
    written: list[str] = []
    if numbers["query_independence"]:
        _save(figs.query_independence_figure(numbers["query_independence"], qi.PAPER), out, "query_independence", written)
    if numbers["unary_binary"]:
        _save(figs.shares_figure(numbers["unary_binary"]), out, "unary_binary", written)
    if numbers.get("psa"):
        _save(figs.psa_figure(numbers["psa"]), out, "psa", written)
    save_where_figures(numbers["where"], out, written)
    result["figures"] = written
    write_into(out, "report.md", render(result, unary.PAPER).encode())
    return result


def render(r: dict, unary_paper) -> str:
    f = lambda v: "n/a" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.3f}"  # noqa: E731
    lines = [f"# vizattn analyze: {r['model']} over {r['images']} images", "",
             f"Images: {r['source']}" + (f"; labels: {r['labels']}" if r["labels"] else "; classes from the "
                                          "model's own prediction (no labels given)") + ".", ""]
    if r["query_independence"]:
        lines += ["## Query-independence (GCNet): mean cosine distance between sampled positions", "",
                  "| module | input | attention | output |", "|---|---|---|---|"]
        lines += [f"| {m} | {f(v.get('input'))} | {f(v.get('attention'))} | {f(v.get('output'))} |"
                  for m, v in r["query_independence"].items()]
        lines += ["", "![](query_independence.png)", ""]
    if r["unary_binary"]:
        lines += ["## Unary vs binary (LESA)", "", "| module | unary | binary |", "|---|---|---|"]
        lines += [f"| {m} | {f(v.get('unary'))} | {f(v.get('binary'))} |" for m, v in r["unary_binary"].items()]
        lines += [""]
    if r.get("coverage"):
        lines += ["## Coverage (CCNet)", "", ", ".join(f"{k} {f(v)}" for k, v in r["coverage"].items()), ""]
    if r["where"]:
        lines += ["## Where attention lands, by the query's class", "",
                  "| module | class | mass on own class | mass on own instance | mean distance px | queries |",
                  "|---|---|---|---|---|---|"]
        for m, table in r["where"].items():
            lines += [f"| {m} | {c} | {f(v.get('own_class'))} | {f(v.get('own_instance'))} | "
                      f"{f(v.get('distance_px'))} | {v.get('queries', 0)} |" for c, v in table.items()]
        lines += ["", "![](where_own_class.png)", "",
                  f"The {TAIL_K} queries with the highest and the lowest value of each statistic (own-class and "
                  "own-instance mass, distance, entropy), per module and query class, with their image and pixel: "
                  f"`extremes.parquet` ({r.get('extremes', 0)} rows).", ""]
    if r.get("psa"):
        lines += ["## PSA weights", "", "| model | branch | mean | std | saturated |", "|---|---|---|---|---|"]
        lines += [f"| {m} | {b} | {f(v[b]['mean'])} | {f(v[b]['std'])} | {f(v[b]['saturated_share'])} |"
                  for m, v in r["psa"].items() for b in ("channel", "spatial")]
        lines += ["", "![](psa.png)", ""]
    return "\n".join(lines) + "\n"
