"""`vizattn bench …`: benchmarks that print tables. They live in the checkout's benchmarks/ (development tools the
wheel does not carry); from an installed wheel the command says so in one sentence."""
from __future__ import annotations

import sys
from pathlib import Path

from vizattn.cli.common import COUNT, SIDE, bounded
from vizattn.errors import VizattnError
from vizattn.tables import markdown_table


def _benchmark(name: str):
    """A module of the checkout's benchmarks/ (development tools: test oracles, browser drivers, mmseg and
    transformers references), which the installed wheel does not carry."""
    import importlib

    root = Path(__file__).resolve().parents[2]
    if (root / "benchmarks" / "__init__.py").is_file() and str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        return importlib.import_module(f"benchmarks.{name}")
    except ModuleNotFoundError as err:
        if err.name and err.name.startswith("benchmarks"):
            raise VizattnError("`vizattn bench` runs from a checkout of vizattn (its benchmarks/ folder is not part "
                               "of the installed package): clone it and `pip install -r requirements.txt` there.") from None
        raise VizattnError(f"`vizattn bench` needs the package '{err.name}' (a test requirement); install "
                           "requirements.txt from a checkout of vizattn.") from None


def _bench_modules(args) -> None:
    modules = _benchmark("modules")
    setups = [s for s in modules.SETUPS if not args.paper or s.paper in args.paper]
    # the dense non-local block is the reference of every ratio, so it is always measured
    entries = [e for e in modules.ENTRIES if not args.modules or e[1] in {"nonlocal", *args.modules}]
    rows = modules.run(setups, entries, args.warmup, args.repeats, args.device, Path(args.out))
    print(markdown_table(modules.HEADER, rows))
    print(f"\nwritten: {Path(args.out) / 'modules.csv'}, {Path(args.out) / 'modules.md'}")


def _bench_capture(args) -> None:
    capture = _benchmark("capture")
    rows = capture.run(args.channels, (args.height, args.width), args.queries, args.device)
    print(markdown_table(capture.HEADER, rows))


def _bench_fidelity(args) -> None:
    fidelity = _benchmark("fidelity")
    unknown = set(args.modules or ()) - set(fidelity.CASES)
    if unknown:
        raise VizattnError(f"No fidelity case {', '.join(sorted(unknown))}; choose from {', '.join(fidelity.CASES)}.")
    print(markdown_table(fidelity.HEADER, fidelity.run(args.modules)))


def _bench_mmseg(args) -> None:
    mmseg = _benchmark("mmseg")
    unknown = set(args.heads or ()) - set(mmseg.OPTIONS)
    if unknown:
        raise VizattnError(f"No mmseg head {', '.join(sorted(unknown))}; choose from {', '.join(mmseg.OPTIONS)}.")
    sizes = [_size(s) for s in args.sizes]
    print(markdown_table(mmseg.HEADER, mmseg.run(args.heads, sizes, args.repeats, args.device)))


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
        if h > 0 and w > 0:
            return h, w
    except ValueError:
        pass
    raise VizattnError(f"Sizes are HxW with two positive integers (e.g. 512x1024), not '{text}'.")


def _bench_foreign(args) -> None:
    foreign = _benchmark("foreign")
    print(markdown_table(foreign.HEADER, foreign.run(args.size, args.repeats)))


def _bench_analyze(args) -> None:
    analyze = _benchmark("analyze")
    speed, memory = analyze.run(args.model, args.images, args.memory_images, args.size)
    print(markdown_table(analyze.SPEED_HEADER, speed) + "\n")
    print(markdown_table(analyze.MEMORY_HEADER, memory) + "\n")
    print(markdown_table(analyze.EXTREMES_HEADER, analyze.extremes_cost(args.model, args.images, args.size)))


def _bench_app(args) -> None:
    app = _benchmark("app")
    print(markdown_table(app.COLD_HEADER, app.cold_start(args.cold_runs)))
    print()
    print(markdown_table(app.HEADER, app.run(args.moves, args.clicks, args.upload)))


def _bench_layers(args) -> None:
    layers = _benchmark("layers")
    print(markdown_table(layers.HEADER, layers.run(args.repeats)))


def _bench_widget(args) -> None:
    widget = _benchmark("widget")
    print(markdown_table(widget.HEADER, widget.run(args.moves, Path(args.screenshot) if args.screenshot else None)))


def add_bench(sub) -> None:
    bench = sub.add_parser("bench", help="benchmarks that print tables").add_subparsers(dest="bench", required=True)
    bm = bench.add_parser("modules", help="time, peak memory and FLOPs of every module vs the non-local block")
    bm.add_argument("--paper", nargs="*", choices=["ANN", "ISA"], help="only these papers' set-ups")
    bm.add_argument("--modules", nargs="*", help="only these modules (the dense NL reference is always kept)")
    bm.add_argument("--warmup", type=bounded(0, 100), default=1)
    bm.add_argument("--repeats", type=bounded(1, 100), default=2)
    bm.add_argument("--device", default="cpu")
    bm.add_argument("--out", default="bench-out")
    bm.set_defaults(func=_bench_modules)
    bc = bench.add_parser("capture", help="extra peak memory of capture + query maps on the NL block")
    bc.add_argument("--channels", type=int, default=512)
    bc.add_argument("--height", type=int, default=128)
    bc.add_argument("--width", type=int, default=256)
    bc.add_argument("--queries", type=int, default=10)
    bc.add_argument("--device", default="cpu")
    bc.set_defaults(func=_bench_capture)
    bf = bench.add_parser("fidelity", help="our modules against mmcv/mmseg and the official equations "
                                           "(parameters copied, outputs and attention rows compared)")
    bf.add_argument("--modules", nargs="*", help="only these cases")
    bf.set_defaults(func=_bench_fidelity)
    bmm = bench.add_parser("mmseg", help="forward time and peak memory of the mmseg R-50-D8 models vizattn opens")
    bmm.add_argument("--heads", nargs="*", help="only these (nl isa cc gc ann da psa)")
    bmm.add_argument("--sizes", nargs="+", default=["512x1024", "1024x2048"])
    bmm.add_argument("--repeats", type=bounded(1, 100), default=1)
    bmm.add_argument("--device", default="cpu")
    bmm.set_defaults(func=_bench_mmseg)
    bfo = bench.add_parser("foreign", help="extra memory and time of capturing a SegFormer-B0 (transformers)")
    bfo.add_argument("--size", type=SIDE, default=512)
    bfo.add_argument("--repeats", type=bounded(1, 100), default=2)
    bfo.set_defaults(func=_bench_foreign)
    ban = bench.add_parser("analyze", help="images/s of vizattn analyze (1, 2 local processes; Ray, 2 actors), "
                                           "peak memory vs number of images, and the extremes' share of a run")
    ban.add_argument("--model", default="criss_cross")
    ban.add_argument("--images", type=COUNT, default=100)
    ban.add_argument("--memory-images", type=COUNT, nargs="+", default=[100, 400])
    ban.add_argument("--size", type=SIDE, default=384)
    ban.set_defaults(func=_bench_analyze)
    ba = bench.add_parser("app", help="cold start, pointer move → repainted panels and click → redrawn panels on the "
                                      "comparison grid, in a real browser (needs chromium)")
    ba.add_argument("--moves", type=bounded(5, 10_000), default=40)
    ba.add_argument("--clicks", type=bounded(1, 1000), default=8)
    ba.add_argument("--cold-runs", type=bounded(1, 20), default=2)
    ba.add_argument("--upload", type=bounded(256, 1024), default=1024, help="side of the uploaded scene (px)")
    ba.set_defaults(func=_bench_app)
    bl = bench.add_parser("layers", help="rollout and relevance time and memory beside the plain forward "
                                         "(SegFormer-B0 512², ViT-B/16 224², random weights)")
    bl.add_argument("--repeats", type=bounded(1, 100), default=2)
    bl.set_defaults(func=_bench_layers)
    bw = bench.add_parser("widget", help="pointer move → repainted panels in the notebook widget (vizattn.show) at 384², "
                                         "in JupyterLab through chromium")
    bw.add_argument("--moves", type=bounded(5, 10_000), default=60)
    bw.add_argument("--screenshot", help="also save a screenshot of the first widget here (PNG)")
    bw.set_defaults(func=_bench_widget)
