"""`vizattn analyze`: the report's per-image statistics over an image set, sharded, merged, resumable, and the
same numbers from one process, K processes, or Ray."""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from vizattn.analysis.summary import Summary, merge_all, sections
from vizattn.analyze import Job, analyze, merged
from vizattn.errors import VizattnError

JOB = Job(model="criss_cross", scenes=6, queries=16, size=128)


def close(a: dict, b: dict, rel=1e-7):
    """Two summaries hold the same statistics with the same counts, sums equal to float tolerance."""
    assert a["moments"].keys() == b["moments"].keys()
    for k in a["moments"]:
        (s1, n1, q1), (s2, n2, q2) = a["moments"][k], b["moments"][k]
        assert n1 == n2, k
        if rel == 0:
            assert (s1, q1) == (s2, q2), k
        else:  # different torch thread counts sum convolutions in another order: equal to float tolerance
            assert s1 == pytest.approx(s2, rel=rel, abs=1e-12) and q1 == pytest.approx(q2, rel=rel, abs=1e-12), k
    assert a["hists"] == b["hists"] and a["extremes"] == b["extremes"]


def flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(flat(v, f"{prefix}{k}/") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    result = analyze(JOB, out, shard_size=2, progress=False)
    return out, result


def test_a_run_writes_shards_rows_summary_figures_and_report(reference):

    out, result = reference
    assert sorted(p.name for p in (out / "shards").glob("*.json")) == ["00000.json", "00001.json", "00002.json"]
    rows = pq.read_table(out / "rows.parquet").to_pylist()
    assert {r["image"] for r in rows} == {f"scene:{JOB.seed + i}" for i in range(6)}
    assert any(r["statistic"] == "coverage|effective" and r["value"] == pytest.approx(1.0) for r in rows)
    saved = json.loads((out / "summary.json").read_text())
    assert saved["result"]["coverage"]["effective"] == pytest.approx(1.0)  # two loops reach every position
    assert 0 < saved["result"]["coverage"]["loop1"] < 0.5
    assert "where_own_class.png" in result["figures"] and (out / "report.md").read_text().startswith("# vizattn analyze")
    # a rerun with the same arguments resumes: every shard is already done
    again = analyze(JOB, out, shard_size=2, progress=False)
    assert again["resumed_shards"] == 3
    with pytest.raises(VizattnError, match="other arguments"):
        analyze(Job(model="criss_cross", scenes=7, queries=16, size=128), out, shard_size=2, progress=False)


def test_the_report_and_analyze_compute_the_same_numbers(reference, tmp_path):
    """One code path: `vizattn report` on the same scenes and model gives analyze's numbers."""
    from vizattn.report import build_report

    rep = build_report(tmp_path / "rep", scenes=2, models=["criss_cross"], queries=16, progress=False, size=128)
    ana = analyze(Job(model="criss_cross", scenes=2, queries=16, size=128), tmp_path / "ana", progress=False)
    for a, b in ((rep["criss_cross"]["coverage"], ana["coverage"]), (rep["query_independence"], ana["query_independence"]),
                 (rep["where"], ana["where"])):
        assert flat(a) == pytest.approx(flat(b), rel=1e-12)


def test_merge_is_associative_and_order_free(reference):
    out, _ = reference
    parts = [Summary.from_dict(json.loads(p.read_text())["summary"]) for p in sorted((out / "shards").glob("*.json"))]
    a, b, c = parts
    close(a.merge(b).merge(c).to_dict(), a.merge(b.merge(c)).to_dict())
    for seed in range(3):
        shuffled = parts[:]
        random.Random(seed).shuffle(shuffled)
        close(merge_all(shuffled).to_dict(), merged(out))
    numbers = sections(merge_all(parts))
    assert set(numbers["where"]["criss_cross"]) <= {"sky", "building", "road", "sidewalk", "vegetation", "terrain",
                                                    "car", "person", "pole"}


def test_local_processes_and_ray_give_the_same_numbers(reference, tmp_path):
    ray = pytest.importorskip("ray")
    ref_out, _ = reference
    analyze(JOB, tmp_path / "two", workers=2, shard_size=2, progress=False)
    close(merged(tmp_path / "two"), merged(ref_out))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)  # a 2-CPU local cluster, ours to stop
    try:
        analyze(JOB, tmp_path / "ray", engine="ray", workers=2, shard_size=2, progress=False)
    finally:
        ray.shutdown()
    close(merged(tmp_path / "ray"), merged(ref_out))
    want = pq.read_table(ref_out / "extremes.parquet").to_pylist()  # the extremes too, from every engine
    for run in ("two", "ray"):
        got = pq.read_table(tmp_path / run / "extremes.parquet").to_pylist()
        assert [{k: v for k, v in r.items() if k != "value"} for r in got] == \
            [{k: v for k, v in r.items() if k != "value"} for r in want]
        assert [r["value"] for r in got] == pytest.approx([r["value"] for r in want], rel=1e-7, abs=1e-12)


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def test_a_killed_worker_loses_only_its_shard_and_a_rerun_gives_identical_numbers(tmp_path):
    ref_out = tmp_path / "uninterrupted"
    # the same engine and worker count (1 torch thread each), so the numbers must be identical, not just close
    analyze(Job(model="criss_cross", scenes=8, queries=64, size=384), ref_out, workers=2, shard_size=1, progress=False)
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "vizattn.cli", "analyze", "--model", "criss_cross", "--scenes", "8", "--queries",
           "64", "--size", "384", "--shard-size", "1", "--workers", "2", "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    victim = None
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        workers = [k for k in _children(proc.pid)
                   if "resource_tracker" not in Path(f"/proc/{k}/cmdline").read_bytes().decode(errors="ignore")]
        if len(workers) == 2 and list((out / "shards").glob("*.json")) if (out / "shards").is_dir() else False:
            victim = workers[0]
            os.kill(victim, signal.SIGKILL)  # a worker this test's command started, by its PID
            break
        time.sleep(0.05)
    _, err = proc.communicate(timeout=240)
    if victim is None:
        pytest.skip("the run finished before a worker could be killed")
    assert proc.returncode == 2 and "run the same command again to resume" in err
    kept = len(list((out / "shards").glob("*.json")))
    assert 1 <= kept < 8
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert rerun.returncode == 0 and f"({kept} shards already done)" in rerun.stdout
    close(merged(out), merged(ref_out), rel=0)


def test_a_label_folder_that_does_not_fit_gets_one_sentence(tmp_path):
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    for i in range(3):
        Image.fromarray(np.full((40, 60, 3), 90 * i, np.uint8)).save(images / f"im{i}.png")
    Image.fromarray(np.zeros((40, 60), np.uint8)).save(labels / "im0.png")
    Image.fromarray(np.zeros((20, 30), np.uint8)).save(labels / "im1.png")
    job = Job(model="criss_cross", images=str(images), labels=str(labels), queries=8)
    with pytest.raises(VizattnError) as info:
        analyze(job, tmp_path / "out", progress=False)
    text = str(info.value)
    assert "does not fit the images" in text and "im2.png" in text and "im1.png 20×30" in text and "\n" not in text
    with pytest.raises(VizattnError, match="not a folder"):
        analyze(Job(model="criss_cross", images=str(images), labels=str(tmp_path / "nope")), tmp_path / "o2", progress=False)


def test_labels_as_indices_or_palette_colours_feed_the_class_statistics(tmp_path):
    from vizattn.data import PALETTE
    from vizattn.data.scenes import generate_scene

    images, by_index, by_colour, raw = tmp_path / "images", tmp_path / "idx", tmp_path / "rgb", tmp_path / "ade"
    for d in (images, by_index, by_colour, raw):
        d.mkdir()
    scene = generate_scene(5, (128, 128))
    Image.fromarray(scene.image).save(images / "a.png")
    Image.fromarray(scene.labels.astype(np.uint8)).save(by_index / "a.png")
    Image.fromarray(np.asarray(PALETTE, np.uint8)[scene.labels]).save(by_colour / "a.png")
    Image.fromarray((scene.labels + 1).astype(np.uint8)).save(raw / "a.png")  # ADE20K's raw form: class k as k + 1
    runs = [analyze(Job(model="criss_cross", images=str(images), labels=str(d), queries=16,
                        reduce_zero_label=d is raw), tmp_path / d.name, progress=False) for d in (by_index, by_colour, raw)]
    assert runs[0]["where"] == runs[1]["where"] == runs[2]["where"] and runs[0]["labels"]
    bad = tmp_path / "bad"
    bad.mkdir()
    Image.fromarray(np.full((128, 128), 40, np.uint8)).save(bad / "a.png")
    with pytest.raises(VizattnError, match="holds class 40"):
        analyze(Job(model="criss_cross", images=str(images), labels=str(bad), queries=16), tmp_path / "b", progress=False)


def test_a_cancelled_run_keeps_its_shards_and_resumes_to_the_same_numbers(reference, tmp_path):
    """`on_shard` reports (done, total) and may raise Cancelled: the page's progress bar and cancel button."""
    from vizattn.analyze import Cancelled

    seen = []

    def cancel_after_two(done, total):
        seen.append((done, total))
        if done == 2:
            raise Cancelled("cancelled")

    out = tmp_path / "run"
    with pytest.raises(Cancelled):
        analyze(JOB, out, shard_size=2, progress=False, on_shard=cancel_after_two)
    assert seen == [(0, 3), (1, 3), (2, 3)]
    assert len(list((out / "shards").glob("*.json"))) == 2 and not (out / "rows.parquet").exists()
    seen.clear()
    r = analyze(JOB, out, shard_size=2, progress=False, on_shard=lambda d, t: seen.append((d, t)))
    assert seen == [(2, 3), (3, 3)] and r["resumed_shards"] == 2
    close(merged(out), merged(reference[0]), rel=0)
