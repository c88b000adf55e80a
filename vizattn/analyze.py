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

from vizattn.errors import VizattnError
from vizattn.io import image_geometry
from vizattn.labels import IGNORE, check_labels, label_path, read_labels  # noqa: F401 (IGNORE, read_labels: re-exported)
from vizattn.outputs import check_names, output_dir, read_small, replace_into, subfolder, write_into
from vizattn.analysis.paired import RESAMPLES
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
    model_b: str | None = None  # `--models A B`: a second model on the same images, compared pairwise with `model`

    def to_dict(self) -> dict:
        """The job as plain data; a one-model job without `model_b`, so the plans of earlier runs stay valid."""
        d = asdict(self)
        if d["model_b"] is None:
            del d["model_b"]
        return d

    def items(self) -> list[str]:
        if self.images:
            from vizattn.io import image_files

            files = [p.name for p in image_files(self.images)]
            return files[: self.scenes] if self.scenes else files
        return [f"scene:{self.seed + i}" for i in range(self.scenes or 0)]


# --- one shard ------------------------------------------------------------------------------------------------

class ShardWorker:
    """Holds the model (loaded once per worker) and analyses shards of images."""

    def __init__(self, job: Job, model_sha256: str | None = None, source: str | None = None):
        import torch

        from vizattn.explore import model_classes
        from vizattn.zoo import load

        self.job = job
        source = source or job.model  # model B of a paired run is `job.model_b`
        self.model = load(source).eval()
        if self.model.provenance.sha256 != model_sha256:  # the run is tied to the weights, not to their path
            raise VizattnError(f"The model at '{source}' changed since this run was planned (sha256 "
                               f"{str(self.model.provenance.sha256)[:12]}…, planned {str(model_sha256)[:12]}…); "
                               "rerun with another --out.")
        if torch.cuda.is_available():  # a GPU actor (--gpus 1) or a GPU machine: the forward runs there
            self.model.to("cuda")
        self.classes, self.palette = model_classes(self.model)
        self.name = model_name(source)

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

    def analyse(self, item: str, index: int, loaded=None):
        """One item's Summary; `loaded` is its (image, labels, instances) when another worker read it already."""
        import torch

        from vizattn.analysis.maps import module_io
        from vizattn.analysis.summary import analyse_forward
        from vizattn.explore import run_model

        image, labels, instances = loaded or self.image(item)
        with torch.no_grad(), module_io(self.model) as io_:
            fw = run_model(self.model, image)
        # the seed is the image's place in the whole set, not the model: the same query cells whichever worker runs
        # it, and for both models of a paired run where their attention grids agree
        return analyse_forward(self.name, fw, io_, labels, instances, self.classes, self.job.queries, seed=index,
                               image=item)

    def __call__(self, shard: int, items: list[str], first_index: int) -> tuple[dict, list[dict]]:
        from vizattn.analysis.summary import Summary

        total, rows = Summary(), []
        for offset, item in enumerate(items):
            s = self.analyse(item, first_index + offset)
            rows += s.per_image_rows(item, self.name)
            total = total.merge(s)
        return total.to_dict(), rows


class PairWorker:
    """Both models of `--models A B` in one worker: each image is read once and analysed by A and by B with the
    same seed; a shard's summary is {"a": …, "b": …} and each row says its side."""

    def __init__(self, job: Job, model_sha256: str | None, model_b_sha256: str | None):
        self.a = ShardWorker(job, model_sha256)
        self.b = ShardWorker(job, model_b_sha256, job.model_b)

    def __call__(self, shard: int, items: list[str], first_index: int) -> tuple[dict, list[dict]]:
        from vizattn.analysis.summary import Summary

        totals, rows = {"a": Summary(), "b": Summary()}, []
        for offset, item in enumerate(items):
            loaded = self.a.image(item)  # classes are equal (checked when planned): the labels serve both
            for side, worker in (("a", self.a), ("b", self.b)):
                s = worker.analyse(item, first_index + offset, loaded)
                rows += [{**r, "side": side} for r in s.per_image_rows(item, worker.name)]
                totals[side] = totals[side].merge(s)
        return {side: t.to_dict() for side, t in totals.items()}, rows


def model_name(source: str) -> str:
    """A model's name in rows and labels: a bundled name as given, a path's stem."""
    return Path(source).stem if os.sep in source or "." in source else source


def make_worker(job: Job, model_sha256: str | None, model_b_sha256: str | None = None):
    """The worker of one process or actor: one model, or both of a paired run."""
    if job.model_b is None:
        return ShardWorker(job, model_sha256)
    return PairWorker(job, model_sha256, model_b_sha256)


# --- shards on disk -------------------------------------------------------------------------------------------

def make_plan(job: Job, shard_size: int) -> Plan:
    """The run's plan: arguments, the model's weights and every image (and label) by content."""
    from vizattn.zoo import weights_sha256

    names = job.items()
    items = [[n, None if n.startswith("scene:") else file_digest(Path(job.images) / n)] for n in names]
    labels = []
    if job.labels:
        labels = [[p.name, file_digest(p)] for p in (label_path(Path(job.labels), n) for n in names) if p is not None]
    b = weights_sha256(job.model_b) if job.model_b is not None else None
    return Plan(job.to_dict(), shard_size, weights_sha256(job.model), items, labels, b)


def write_shard(out: Path, plan: Plan, shard: int, items: list[str], summary: dict, rows: list[dict]) -> None:
    """Rows first, then the summary: a shard is finished exactly when its summary file exists and verifies."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=row_schema(is_paired(plan))), buf)
    folder = out / "shards"
    replace_into(folder, f"{shard:05d}.parquet", buf.getvalue())
    replace_into(folder, f"{shard:05d}.json",
                 shard_file(plan, shard, items, summary, buf.getvalue(), len(rows), plan.model_sha256))


def is_paired(plan: Plan) -> bool:
    return plan.job.get("model_b") is not None


def row_schema(paired: bool = False):
    """rows.parquet; a paired run's shards add `side` (a or b), dropped when each model's rows.parquet is written."""
    import pyarrow as pa

    side = [("side", pa.string())] if paired else []
    return pa.schema([("image", pa.string()), ("model", pa.string()), ("statistic", pa.string()),
                      ("value", pa.float64()), ("count", pa.int64()), *side])


# --- engines --------------------------------------------------------------------------------------------------

_WORKER: ShardWorker | None = None


def _init_process(job: dict, threads: int, model_sha256: str | None, model_b_sha256: str | None = None) -> None:
    global _WORKER
    import torch

    torch.set_num_threads(threads)
    _WORKER = make_worker(Job(**job), model_sha256, model_b_sha256)


def _run_in_process(task):
    return task[0], *_WORKER(*task)


class Cancelled(VizattnError):
    """Raised by an `on_shard` callback to stop a run: no further shard starts, the finished shards stay on disk,
    and the same call (same arguments, same --out) resumes from them."""


def run_local(job: Job, plan: Plan, tasks, out: Path, workers: int, progress) -> None:
    items_of = {shard: items for shard, items, _ in tasks}
    if workers <= 1:
        worker = make_worker(job, plan.model_sha256, plan.model_b_sha256)
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
                             initargs=(job.to_dict(), threads, plan.model_sha256, plan.model_b_sha256)) as pool:
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

    def __init__(self, job: dict, model_sha256: str | None = None, threads: int = 1, model_b_sha256: str | None = None):
        import torch

        torch.set_num_threads(threads)
        self.worker = make_worker(Job(**job), model_sha256, model_b_sha256)

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
        results = ds.map_batches(_RayShards, fn_constructor_kwargs={"job": job.to_dict(), "model_sha256": plan.model_sha256,
                                                                    "model_b_sha256": plan.model_b_sha256},
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

PAIRED_FILES = ("paired.parquet", "paired.json", "paired.png", "paired.svg")
REPORT_FILES = ("rows.parquet", "extremes.parquet", "summary.json", "report.md",
                *(f"{name}.{fmt}" for name in ("query_independence", "unary_binary", "psa", "where_own_class",
                                               "where_distance_px") for fmt in ("png", "svg")))


def merged(source: Path | dict[int, dict], side: str = "a") -> dict:
    """The merged summary of verified shards (a run's folder: those that verify against its plan), in shard order;
    of a paired run, that of model `side` (a or b)."""
    from vizattn.analysis.summary import Summary

    shards = source if isinstance(source, dict) else verify(Path(source), load_plan(Path(source))).good
    total = Summary()
    for shard in sorted(shards):
        summary = shards[shard]["summary"]
        total = total.merge(Summary.from_dict(summary if "moments" in summary else summary[side]))
    return total.to_dict()


def check_pair(job: Job) -> None:
    """Two models are compared per class only when they predict the same classes: refused before anything runs."""
    from vizattn.explore import model_classes
    from vizattn.zoo import load

    if job.model_b is None:
        return
    a, b = (model_classes(load(m))[0] for m in (job.model, job.model_b))
    if a != b:
        raise VizattnError(f"'{job.model}' and '{job.model_b}' predict different classes ({len(a)} vs {len(b)}), so "
                           "their per-class statistics cannot be paired; compare two models of one label set.")


def analyze(job: Job, out: str | Path, engine: str = "local", workers: int = 1, address: str | None = None,
            gpus: int = 0, shard_size: int = 8, progress: bool = True, on_shard=None, seed: int = 0,
            resamples: int = RESAMPLES) -> dict:
    """Run (or resume) `job` into `out`. `on_shard(done, total)` is called once before the first shard (done = the
    shards already finished on disk) and after each shard is written; raising `Cancelled` from it stops the run
    with the finished shards kept (the page's progress bar and cancel button). With `job.model_b`, both models run
    on every image and `seed`, `resamples` drive the paired deltas' bootstrap (not part of the plan: a rerun with
    another seed only recomputes the comparison)."""
    from tqdm import tqdm

    if engine not in ("local", "ray"):
        raise VizattnError(f"--engine is local or ray, not '{engine}'.")
    out = output_dir(out)
    check_names(out, REPORT_FILES)  # a planted link is refused before anything is written
    if job.model_b is not None:
        check_names(out, PAIRED_FILES)
    check_labels(job)
    check_pair(job)
    if not job.items():
        raise VizattnError("Nothing to analyse: give --scenes N (N ≥ 1) or an --images folder with images.")
    plan = make_plan(job, shard_size)
    bind(out, plan)
    if job.model_b is not None:
        check_names(subfolder(out, "b"), REPORT_FILES)  # model B's files, refused now if planted, not at the end
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
    result = finish(out, job, plan, seed, resamples)
    result["wall_time_s"] = round(time.time() - t0, 1)
    result["resumed_shards"] = len(tasks) - len(pending)
    result["recomputed"] = state.damaged  # this plan's shard files that failed verification, done again
    result["not_merged"] = state.strays  # files in shards/ the plan does not name
    return result


def finish(out: Path, job: Job, plan: Plan, seed: int = 0, resamples: int = RESAMPLES) -> dict:
    """Merged numbers to summary.json, every per-image row to rows.parquet, the report's figures and report.md,
    from shards that verify against the plan, and only when every shard of the plan does. A paired run writes model
    A's files into `out` (an analyze folder like any other), model B's into `out/b`, and the comparison beside A's."""
    import io

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from vizattn.analysis import unary
    from vizattn.report import analyze_markdown, analyze_model_files, paired_files, paired_markdown

    state = verify(out, plan)
    missing = [s for s, _, _ in plan.shards() if s not in state.good]
    if missing:
        raise VizattnError(f"{len(missing)} shard(s) of this run did not verify (e.g. shards/{missing[0]:05d}.json); "
                           "run the same command again to recompute them.")
    tables = [pq.read_table(io.BytesIO(read_small(out / "shards", f"{s:05d}.parquet", 1 << 30)))
              for s in sorted(state.good)]
    table = pa.concat_tables(tables) if tables else row_schema(is_paired(plan)).empty_table()
    expected = sum(int(state.good[s]["rows"]) for s in state.good)
    if table.num_rows != expected:
        raise VizattnError(f"rows.parquet would hold {table.num_rows} of {expected} rows; run the same command "
                           "again to recompute the run's shards.")

    def head(model: str, sha: str | None) -> dict:
        return {"model": model, "model_sha256": sha, "plan": plan.digest, "images": len(plan.items),
                "source": job.images or f"{job.scenes} generated scenes", "labels": job.labels}

    if not is_paired(plan):
        result = analyze_model_files(out, head(job.model, plan.model_sha256), merged(state.good), table)
        write_into(out, "report.md", analyze_markdown(result, unary.PAPER).encode())
        return result
    sides = {}
    for side, folder, model, sha in (("a", out, job.model, plan.model_sha256),
                                     ("b", subfolder(out, "b"), job.model_b, plan.model_b_sha256)):
        own = table.filter(pc.equal(table["side"], side)).drop_columns(["side"])
        sides[side] = (analyze_model_files(folder, head(model, sha), merged(state.good, side), own), own.to_pylist())
    result, rows_a = sides["a"]
    result_b, rows_b = sides["b"]
    write_into(out / "b", "report.md", analyze_markdown(result_b, unary.PAPER).encode())
    models = {"model_a": job.model, "model_b": job.model_b, "model_a_sha256": plan.model_sha256,
              "model_b_sha256": plan.model_b_sha256, "name_a": model_name(job.model), "name_b": model_name(job.model_b)}
    pairs = paired_files(out, models, rows_a, rows_b, [name for name, _ in plan.items], seed, resamples)
    result.update(model_b=job.model_b, model_b_sha256=plan.model_b_sha256, b=result_b, paired=len(pairs))
    result["figures"] += ["paired.png", "paired.svg"] if pairs else []
    write_into(out, "report.md", (analyze_markdown(result, unary.PAPER) + "\n"
                                  + paired_markdown(result, pairs, seed, resamples)).encode())
    return result
