"""`vizattn analyze --models A B`: both models on the same images, paired deltas A − B per statistic × class
(× module), a seeded bootstrap interval, the same numbers from one or two processes, and a plan that names B."""
import json
import shutil
from dataclasses import replace

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.support.factories import tiny_attention
from vizattn.analysis.paired import WHOLE_MODEL, paired_rows
from vizattn.analyze import Job, analyze
from vizattn.cli import main
from vizattn.errors import VizattnError
from vizattn.model import Provenance, adopt
from vizattn.zoo import PRETRAINED

JOB = Job(model="criss_cross", model_b="isa", scenes=4, queries=16, size=128)
IMAGES = JOB.items()


def five_classes():
    """A factory's model of another label set (five classes): not comparable with ours per class."""
    return adopt(tiny_attention(), Provenance("factory", "pytorch", "five"), classes=list("abcde"),
                 palette=np.arange(15).reshape(5, 3))


def paired(out, seed=None) -> list[dict]:
    rows = pq.read_table(out / "paired.parquet").to_pylist()
    assert seed is None or all(r["seed"] == seed for r in rows)
    return rows


def by_key(rows):
    return {(r["statistic"], r["class"], r["module"]): r for r in rows}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("paired")
    assert main(["analyze", "--models", "criss_cross", "isa", "--scenes", "4", "--queries", "16", "--size", "128",
                 "--shard-size", "2", "--out", str(out)]) == 0
    return out


def test_the_deltas_are_the_per_image_differences_averaged(run):
    a = pq.read_table(run / "rows.parquet").to_pylist()
    b = pq.read_table(run / "b" / "rows.parquet").to_pylist()
    assert {r["model"] for r in a} == {"criss_cross"} and {r["model"] for r in b} == {"isa"}
    rows = by_key(paired(run, 0))
    checked = 0
    for (stat, cls, module), row in rows.items():
        assert module == WHOLE_MODEL  # two one-module models: the whole-model mean is their module
        section, k = stat.split(".")
        key = {"where": lambda m: f"where|{m}|{cls}|{k}", "query_independence": lambda m: f"{section}|{m}|{k}"}[section]
        va = {r["image"]: r["value"] for r in a if r["statistic"] == key("criss_cross")}
        vb = {r["image"]: r["value"] for r in b if r["statistic"] == key("isa")}
        shared = [im for im in IMAGES if im in va and im in vb]
        assert row["images"] == len(shared)
        assert row["delta"] == pytest.approx(np.mean([va[i] - vb[i] for i in shared]), rel=1e-12, abs=1e-15)
        assert row["mean_a"] == pytest.approx(np.mean([va[i] for i in shared]), rel=1e-12)
        checked += 1
    assert ("where.own_class", "road", WHOLE_MODEL) in rows and checked > 20
    # and the interval is an independent numpy bootstrap of those per-image deltas
    d = np.array([va[i] - vb[i] for i in shared])
    idx = np.random.default_rng(0).integers(0, len(d), size=(2000, len(d)))
    lo, hi = np.percentile(d[idx].mean(axis=1), [2.5, 97.5])
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((lo, hi), rel=1e-12)
    assert row["ci_low"] <= row["delta"] <= row["ci_high"]


def test_the_outputs_each_model_and_the_report(run):
    for folder in (run, run / "b"):  # each model's folder is a plain analyze folder
        assert {"summary.json", "rows.parquet", "extremes.parquet", "report.md"} <= {p.name for p in folder.iterdir()}
    assert (run / "paired.png").stat().st_size > 10_000 and (run / "paired.svg").exists()
    meta = json.loads((run / "paired.json").read_text())
    assert meta["model_b"] == "isa" and meta["seed"] == 0 and meta["resamples"] == 2000 and len(meta["rows"]) > 20
    report = (run / "report.md").read_text()
    assert "## Paired comparison: criss_cross (A) − isa (B) over the same 4 images" in report
    assert "| where.own_class | road | 4 |" in report and "![](paired.png)" in report
    plan = json.loads((run / "analyze.json").read_text())["plan"]
    assert plan["job"]["model_b"] == "isa" and len(plan["model_b_sha256"]) == 64


def test_the_interval_is_reproducible_from_its_seed(run, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(run, out)  # the finished shards: a rerun only recomputes the comparison
    first = paired(out, 0)
    analyze(JOB, out, shard_size=2, progress=False, seed=0)
    assert paired(out, 0) == first
    analyze(JOB, out, shard_size=2, progress=False, seed=7)
    other = paired(out, 7)
    assert [r["delta"] for r in other] == [r["delta"] for r in first]
    # with 2–4 images the percentiles of 2000 resamples often land on the same values: some, not all, move
    assert any((r["ci_low"], r["ci_high"]) != (f["ci_low"], f["ci_high"]) for r, f in zip(other, first))
    a = pq.read_table(out / "rows.parquet").to_pylist()
    b = pq.read_table(out / "b" / "rows.parquet").to_pylist()
    va = {r["image"]: r["value"] for r in a if r["statistic"] == "query_independence|criss_cross|attention"}
    vb = {r["image"]: r["value"] for r in b if r["statistic"] == "query_independence|isa|attention"}
    d = np.array([va[i] - vb[i] for i in IMAGES])
    for seed, rows in ((0, first), (7, other)):
        idx = np.random.default_rng(seed).integers(0, len(d), size=(2000, len(d)))
        row = by_key(rows)[("query_independence.attention", "", WHOLE_MODEL)]
        assert (row["ci_low"], row["ci_high"]) == pytest.approx(tuple(np.percentile(d[idx].mean(axis=1), [2.5, 97.5])),
                                                                rel=1e-12)


def test_one_and_two_processes_give_the_same_paired_numbers(run, tmp_path):
    analyze(JOB, tmp_path / "two", workers=2, shard_size=2, progress=False)
    one, two = by_key(paired(run)), by_key(paired(tmp_path / "two"))
    assert one.keys() == two.keys()
    for k in one:  # other torch thread counts sum convolutions in another order: equal to float tolerance
        for col in ("mean_a", "mean_b", "delta", "ci_low", "ci_high"):
            assert two[k][col] == pytest.approx(one[k][col], rel=1e-6, abs=1e-9), (k, col)
        assert two[k]["images"] == one[k]["images"]


def test_a_model_against_itself_gives_exactly_zero_with_a_zero_width_interval(tmp_path):
    job = Job(model="ann", model_b="ann", scenes=3, queries=8, size=128)  # modules afnb and apnb (apnb has statistics)
    analyze(job, tmp_path, shard_size=2, progress=False)
    rows = paired(tmp_path)
    assert {r["module"] for r in rows} == {WHOLE_MODEL, "apnb"}  # paired per module by name, and as a whole
    assert all(r["delta"] == 0.0 and r["ci_low"] == 0.0 == r["ci_high"] for r in rows)
    assert all(r["mean_a"] == r["mean_b"] for r in rows)


def test_a_model_s_value_of_an_image_is_the_mean_of_its_modules_and_modules_pair_by_name():
    rows_a = [{"image": "i", "statistic": "where|m:one|road|own_class", "value": 0.2},
              {"image": "i", "statistic": "where|m:two|road|own_class", "value": 0.6},
              {"image": "j", "statistic": "where|m:one|road|own_class", "value": 0.4},  # j: module one only
              {"image": "i", "statistic": "unary_binary|m:one (gate 1/(1+w))|unary", "value": 0.5}]
    rows_b = [{"image": "i", "statistic": "where|n:two|road|own_class", "value": 0.1},
              {"image": "j", "statistic": "where|n:two|road|own_class", "value": 0.3},
              {"image": "i", "statistic": "unary_binary|n (gate 1/(1+w))|unary", "value": 0.25}]
    got = by_key(paired_rows(rows_a, "m", rows_b, "n", ["i", "j"], seed=3, resamples=50))
    assert set(got) == {("where.own_class", "road", WHOLE_MODEL), ("where.own_class", "road", "two"),
                        ("unary_binary.unary (gate 1/(1+w))", "", WHOLE_MODEL)}
    whole = got[("where.own_class", "road", WHOLE_MODEL)]
    assert whole["images"] == 2 and whole["delta"] == pytest.approx(((0.4 - 0.1) + (0.4 - 0.3)) / 2)
    two = got[("where.own_class", "road", "two")]
    assert two["images"] == 1 and two["delta"] == pytest.approx(0.5) and two["ci_low"] == two["ci_high"] == two["delta"]
    assert got[("unary_binary.unary (gate 1/(1+w))", "", WHOLE_MODEL)]["delta"] == 0.25


def test_models_whose_classes_differ_are_refused_in_one_sentence(tmp_path):
    job = replace(JOB, model_b="tests.analysis.test_paired:five_classes")
    with pytest.raises(VizattnError, match="predict different classes") as info:
        analyze(job, tmp_path / "out", progress=False)
    assert "\n" not in str(info.value) and not (tmp_path / "out" / "analyze.json").exists()


def test_a_resume_after_model_b_changed_is_refused(tmp_path):
    b = tmp_path / "b.safetensors"
    shutil.copyfile(PRETRAINED / "isa.safetensors", b)
    job = Job(model="criss_cross", model_b=str(b), scenes=2, queries=4, size=128)
    analyze(job, tmp_path / "out", shard_size=1, progress=False)
    shutil.copyfile(PRETRAINED / "nonlocal.safetensors", b)  # another model at the same path
    with pytest.raises(VizattnError, match="another model B's weights") as info:
        analyze(job, tmp_path / "out", shard_size=1, progress=False)
    assert "\n" not in str(info.value)
