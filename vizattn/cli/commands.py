"""The `vizattn` commands other than bench: thin wrappers over library functions."""
from __future__ import annotations

import sys
from pathlib import Path

from vizattn import jsonsafe
from vizattn.cli.common import COUNT, SEED, SIDE, bounded
from vizattn.errors import VizattnError
from vizattn.tables import markdown_table
from vizattn.text import plain
from vizattn.viz.figures import EXPORT_FORMATS


def _data(args) -> None:
    import numpy as np
    from tqdm import tqdm

    from vizattn.data import CLASSES, generate_scene, pooled_beyond_rf_share
    from vizattn.models.receptive_field import receptive_field
    from vizattn.models.segmenter import ModelConfig, build_model

    model = build_model(ModelConfig("fcn"))
    rfs = {"backbone": receptive_field(model.backbone), "fcn model": receptive_field(model)}
    scenes = [generate_scene(args.seed + i, (args.size, args.size)) for i in tqdm(range(args.scenes), desc="scenes")]
    labels = [s.labels for s in scenes]
    counts = np.bincount(np.concatenate([lab.ravel() for lab in labels]), minlength=len(CLASSES))
    print(markdown_table(["class", "pixel share", "scenes with it"], [
        [c, f"{counts[i] / counts.sum():.3f}", f"{np.mean([(lab == i).any() for lab in labels]):.2f}"]
        for i, c in enumerate(CLASSES)]))
    rows = []
    for name, rf in rfs.items():
        share = pooled_beyond_rf_share(labels, rf)
        rows.append([f"{name} ({rf} px)", *(f"{share[k]:.3f}" for k in ("road/sidewalk", "vegetation/terrain", "all"))])
    print()
    print(markdown_table(["receptive field", "road/sidewalk", "vegetation/terrain", "all ambiguous"], rows))


def _report(args) -> None:
    from vizattn.report import build_report

    result = build_report(Path(args.out), args.scenes, args.models, progress=True,
                          images=Path(args.images) if args.images else None)
    figures = len({Path(f).stem for f in result["figures"]})  # each figure is written as PNG and SVG
    print(f"wrote {figures} figures (PNG and SVG), report.json and report.md to {args.out} in {result['wall_time_s']} s")


def _train(args) -> None:

    from vizattn.models.segmenter import HEADS
    from vizattn.train import TrainConfig, train

    if not args.all and not args.head:
        raise VizattnError("Name a head with --head NAME (or several) or train the whole zoo with --all.")
    heads = list(HEADS) if args.all else args.head
    given = ("backbone_steps", "head_steps", "pool", "batch", "eval_scenes")
    cfg = TrainConfig(seed=args.seed, **{k: v for k, v in vars(args).items() if k in given and v is not None})
    cards = train(heads, cfg, Path(args.out))
    for name, card in cards.items():
        ev = card["evaluation"]
        print(f"{name:16s} mIoU {ev['miou']:.3f}  ambiguous mIoU {ev['miou_ambiguous']:.3f}  "
              f"-> {Path(args.out) / name}.safetensors")
    if args.json:
        print(jsonsafe.dumps({k: c["evaluation"] for k, c in cards.items()}, indent=2))


def _evaluate(args) -> None:

    from vizattn.data import CLASSES
    from vizattn.evaluate import evaluate
    from vizattn.zoo import load

    model = load(args.model)
    size = args.size or (getattr(model, "card", {}) or {}).get("input_size", [384])[0]
    result = evaluate(model, args.scenes, args.seed, (size, size), progress=not args.json)
    if args.json:
        print(jsonsafe.dumps(result, indent=2))
        return
    for c in CLASSES:
        v = result["iou"][c]
        print(f"{c:12s} {'  n/a' if v is None else f'{v:.3f}'}")
    print(f"{'mIoU':12s} {result['miou']:.3f}\n"
          f"{'ambiguous':12s} {result['miou_ambiguous']:.3f}  (road, sidewalk, vegetation, terrain)")


def _analyze(args) -> None:
    from vizattn.analyze import Job, analyze

    if args.images is None and args.scenes is None:
        raise VizattnError("Give --images DIR or --scenes N: what to analyse.")
    model, model_b = (args.model, None) if args.models is None else args.models
    job = Job(model=model, images=args.images, scenes=args.scenes, labels=args.labels, queries=args.queries,
              size=args.size, reduce_zero_label=args.reduce_zero_label, model_b=model_b)
    r = analyze(job, args.out, args.engine, args.workers, args.address, args.gpus, args.shard_size, seed=args.seed)
    figures = len({Path(f).stem for f in r["figures"]})  # each figure is written as PNG and SVG
    if r["recomputed"]:
        print(f"recomputed {len(r['recomputed'])} shard file(s) that did not verify against the run's plan: "
              f"{', '.join(r['recomputed'][:5])}")
    if r["not_merged"]:
        print(f"not merged: {len(r['not_merged'])} file(s) in {args.out}/shards that the plan does not name: "
              f"{', '.join(r['not_merged'][:5])}")
    if model_b is None:
        print(f"analysed {r['images']} images of {model} ({r['resumed_shards']} shards already done) in "
              f"{r['wall_time_s']} s: {args.out}/summary.json, rows.parquet ({r['rows']} rows, complete), report.md and "
              f"{figures} figures (PNG and SVG)")
        return
    print(f"analysed {r['images']} images with {model} (A) and {model_b} (B) ({r['resumed_shards']} shards already "
          f"done) in {r['wall_time_s']} s: {r['paired']} paired deltas A − B with bootstrap 95% intervals (seed "
          f"{args.seed}) in {args.out}/paired.parquet, paired.png and report.md; A's files in {args.out}, B's in "
          f"{args.out}/b")


def _models(args) -> None:
    from vizattn.zoo import results_table

    header, rows = results_table()
    print(markdown_table(header, rows) if rows else "No bundled models in vizattn/pretrained/; run `vizattn train --all`.")


def _pixel(text: str) -> tuple[int, int]:
    try:
        y, x = (int(v) for v in text.split(","))
    except ValueError:
        raise VizattnError(f"--pixel takes Y,X (two integers, e.g. 120,64), not '{text}'.") from None
    return y, x


def domain_note(scene_models: list[str], src) -> list[str]:
    """The page's warning for a photograph (no generated scene's labels) through models of generated scenes only."""
    from vizattn.app.pure import domain_warning

    return [f"warning: {domain_warning(scene_models)}"] if scene_models and src.labels is None else []


def _forwards(args, models: list[str], head: str | None = None):
    """(image, pixel, loaded models, their forwards) by name, for query and compare."""
    from vizattn.export import forward_with_bar, image_source
    from vizattn.zoo import load

    pixel, src = _pixel(args.pixel), image_source(args.image)
    nets = {Path(m).stem: load(m, head=head) for m in models}
    return src, pixel, nets, {n: forward_with_bar(net, src.image, n) for n, net in nets.items()}


def _written(files: dict[str, bytes], out: str) -> list[str]:
    from vizattn.outputs import check_names, output_dir, write_into

    folder = output_dir(Path(out))
    check_names(folder, files)  # every name first, so a refusal leaves the folder as it was
    return [str(write_into(folder, f, data)) for f, data in files.items()]


def _query(args) -> None:
    from vizattn.export import prediction_line, query_export

    src, pixel, nets, forwards = _forwards(args, [args.model], args.head)
    (name, net), fw = next(iter(nets.items())), next(iter(forwards.values()))
    made = query_export(name, fw, src, pixel, args.view, net.provenance.sha256, model=net)
    paths = _written(made.files(args.format), args.out)
    _say([prediction_line(name, fw, pixel), *domain_note([name] if net.provenance.scene_trained else [], src),
          *made.notes, *paths])


def _diff(args) -> None:
    from vizattn.diff import export_diff

    paths, lines = export_diff(args.models, args.image, _pixel(args.pixel), args.view, Path(args.out), args.format)
    _say(lines + [str(p) for p in paths])


def _say(lines) -> None:
    """Lines that carry file-borne names (classes, modules, paths), printed without control characters."""
    print("\n".join(plain(line, 4000) for line in lines))


def _compare(args) -> None:
    """Every model's prediction at the pixel; the grid of those with attention, and one line per model without."""
    from vizattn.export import compare_export, prediction_line

    src, pixel, nets, forwards = _forwards(args, args.models)
    shown = {n: fw for n, fw in forwards.items() if fw.records} or forwards  # none: compare_export says so
    made = compare_export(shown, src, pixel, args.view, {n: nets[n].provenance.sha256 for n in shown})
    files = made.files(args.format)
    _say([prediction_line(n, fw, pixel) for n, fw in forwards.items()]
         + [f"{n} has no attention module (a baseline without one): no panel of it in the grid." for n in forwards
            if n not in shown]
         + domain_note([n for n, net in nets.items() if net.provenance.scene_trained], src)
         + [f"{len(shown)} of {len(forwards)} models in the grid: {', '.join(shown)}" if len(shown) < len(forwards)
            else f"{len(shown)} models in the grid"] + made.notes + _written(files, args.out))


APP_SETTINGS = {  # what .streamlit/config.toml says for `streamlit run app.py` in a checkout (see README, Security)
    "server.address": "127.0.0.1", "server.headless": True, "server.maxUploadSize": 520,
    "client.showErrorDetails": "none", "browser.gatherUsageStats": False, "runner.postScriptGC": False,
    "server.fileWatcherType": "none",
}


def _opening(args) -> None:
    from vizattn.opening import write_opening

    path = write_opening()
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB)")


def _app(args) -> None:
    """Start the page from the installed package. Its first screen is the kept opening (vizattn.opening), drawn
    without PyTorch; the page imports PyTorch and runs the default model once that screen is in the browser
    (importing it here, beside the server's start, held the GIL and delayed the page's own websocket)."""
    try:
        from streamlit.web import cli as streamlit_cli
    except ImportError:
        raise VizattnError("`vizattn app` needs Streamlit: pip install 'vizattn[app]' (or requirements.txt).") from None
    page = Path(__file__).resolve().parents[1] / "app" / "page.py"
    settings = {**APP_SETTINGS, "server.port": args.port, "server.address": args.address}
    sys.argv = ["streamlit", "run", str(page), *(f"--{k}={v}" for k, v in settings.items())]
    streamlit_cli.main(prog_name="streamlit")


def add_commands(sub) -> None:
    da = sub.add_parser("data", help="class statistics and the share of pixels whose cue lies beyond the receptive field")
    da.add_argument("--scenes", type=COUNT, default=100)
    da.add_argument("--size", type=SIDE, default=384)
    da.add_argument("--seed", type=SEED, default=1_000_000_000)
    da.set_defaults(func=_data)

    tr = sub.add_parser("train", help="train heads on generated scenes and write pretrained/NAME.safetensors + card")
    tr.add_argument("--head", nargs="*", help="head name(s)")
    tr.add_argument("--all", action="store_true", help="the whole zoo: backbone, FCN baseline and every head")
    tr.add_argument("--seed", type=SEED, default=0)
    tr.add_argument("--backbone-steps", type=int)
    tr.add_argument("--head-steps", type=int)
    tr.add_argument("--pool", type=int, help="number of training scenes")
    tr.add_argument("--batch", type=int)
    tr.add_argument("--eval-scenes", type=int)
    tr.add_argument("--out", default=str(Path(__file__).resolve().parent / "pretrained"))
    tr.add_argument("--json", action="store_true")
    tr.set_defaults(func=_train)

    q = sub.add_parser("query", help="one model's attention for one pixel: PNG, SVG, PDF, HTML, NPZ, JSON")
    q.add_argument("--model", required=True, help="bundled name or checkpoint path (ours, or an mmseg .pth)")
    q.add_argument("--head", help="the head of a plain state dict of our architecture, when its keys do not say")
    cp = sub.add_parser("compare", help="several models' attention for the same image and pixel, in one grid")
    cp.add_argument("--models", nargs="+", required=True)
    df = sub.add_parser("diff", help="two models' attention at one pixel and their difference A − B")
    df.add_argument("--models", nargs=2, required=True, metavar=("A", "B"))
    for p, view_help, func, formats in (
            (q, "one view (e.g. effective), or rollout / relevance: the layers composed for the pixel (transformers); "
                "default: every view of every module", _query, EXPORT_FORMATS),
            (cp, "one view where a module has it; default: each module's main view", _compare, EXPORT_FORMATS),
            (df, "one view where both modules have it; default: each module's main view", _diff,
             ("png", "svg", "pdf", "npz", "json"))):
        p.add_argument("--image", required=True, help="image file, or scene:SEED for a generated scene")
        p.add_argument("--pixel", required=True, help="Y,X in image pixels")
        p.add_argument("--view", help=view_help)
        p.add_argument("--out", default="vizattn-out")
        p.add_argument("--format", nargs="+", choices=formats, default=list(formats),
                       help="which files to write (default: all)")
        p.set_defaults(func=func)

    rp = sub.add_parser("report", help="rerun the papers' analyses on the bundled models (or yours, on your images): "
                                       "figures, JSON, report.md")
    rp.add_argument("--out", required=True)
    rp.add_argument("--scenes", type=COUNT, default=20, help="how many generated scenes (or images from --images)")
    rp.add_argument("--models", nargs="*", help="bundled names or checkpoint paths (default: every bundled attention model)")
    rp.add_argument("--images", help="a folder of images to analyse instead of generated scenes")
    rp.set_defaults(func=_report)

    an = sub.add_parser("analyze", help="the papers' statistics over a whole image set, locally or on a Ray cluster; "
                                        "resumable")
    which = an.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", help="bundled name or checkpoint path (ours, mmseg, a transformers folder)")
    which.add_argument("--models", nargs=2, metavar=("A", "B"),
                       help="two models (any sources --model takes) on the same images: paired deltas A − B")
    an.add_argument("--images", help="a folder of images")
    an.add_argument("--scenes", type=COUNT, help="how many generated scenes (or the first N images of --images)")
    an.add_argument("--labels", help="a folder of label PNGs named like the images (class indices, 255 = ignore, "
                                     "or the model's palette colours)")
    an.add_argument("--out", required=True)
    an.add_argument("--engine", choices=["local", "ray"], default="local")
    an.add_argument("--address", help="an existing Ray cluster (default: start a local one)")
    an.add_argument("--workers", type=bounded(1, 1024), default=1, help="processes (local) or actors (ray)")
    an.add_argument("--gpus", type=bounded(0, 1), default=0, help="1: one GPU per Ray actor")
    an.add_argument("--shard-size", type=bounded(1, 1000), default=8, help="images per shard (the unit of resume)")
    an.add_argument("--queries", type=bounded(2, 4096), default=64, help="sampled query positions per image")
    an.add_argument("--size", type=SIDE, default=384, help="side of the generated scenes in px")
    an.add_argument("--reduce-zero-label", action="store_true",
                    help="labels as ADE20K's raw PNGs: 0 = other (ignored), class k stored as k + 1")
    an.add_argument("--seed", type=bounded(0, 2**32 - 1), default=0,
                    help="seed of the paired deltas' bootstrap (--models A B)")
    an.set_defaults(func=_analyze)

    sub.add_parser("models", help="the bundled models and their held-out quality").set_defaults(func=_models)

    op = sub.add_parser("opening", help="write the page's kept opening (its first screen, drawn before PyTorch is "
                                        "imported) from the bundled default model: after retraining it")
    op.set_defaults(func=_opening)

    ap = sub.add_parser("app", help="start the page (Streamlit) from the installed package, on this machine only")
    ap.add_argument("--port", type=bounded(1024, 65535), default=8501)
    ap.add_argument("--address", choices=["127.0.0.1", "localhost", "::1"], default="127.0.0.1",
                    help="loopback only; see README, Serving to others, before exposing the page")
    ap.set_defaults(func=_app)

    ev = sub.add_parser("evaluate", help="per-class IoU and mIoU on freshly generated scenes")
    ev.add_argument("--model", required=True, help="bundled name or checkpoint path")
    ev.add_argument("--scenes", type=COUNT, default=100)
    ev.add_argument("--seed", type=SEED, default=1_000_000_000, help="first scene seed (training never uses >= 1e9)")
    ev.add_argument("--size", type=SIDE, help="scene side in px (default: the model's training size)")
    ev.add_argument("--json", action="store_true")
    ev.set_defaults(func=_evaluate)
