"""analyze's extremes: per statistic × class × module/view, the k highest and lowest queries with their image and
pixel; they equal the extremes recomputed from every per-query row, and merging shards in any order gives them."""
import random

import pyarrow.parquet as pq
import pytest

from vizattn.analysis.summary import TAIL_K, Summary, merge_all, tail_rows
from vizattn.analysis.where import where_attention_goes
from vizattn.analyze import Job, analyze
from vizattn.data import CLASSES, generate_scene
from vizattn.explore import cell_centre, run_model
from vizattn.zoo import load

JOB = Job(model="criss_cross", scenes=4, queries=16, size=96)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("extremes")
    analyze(JOB, out, shard_size=2, progress=False)
    return out


def recomputed() -> list[dict]:
    """Every per-query row of the run, computed here from the forwards (the analysis seed is the image index)."""
    model, rows = load("criss_cross"), []
    for index, item in enumerate(JOB.items()):
        scene = generate_scene(int(item[6:]), (JOB.size, JOB.size))
        fw = run_model(model, scene.image)
        rec = fw.records["head.context"]
        for r in where_attention_goes(rec, scene.labels, scene.instances, JOB.queries, seed=index,
                                      image_shape=fw.shape):
            y, x = cell_centre(r["y"], r["x"], fw.shape, rec.grid)
            for stat in ("own_class", "own_instance", "distance_px", "entropy"):
                if stat in r:
                    rows.append({"statistic": stat, "class": CLASSES[r["class"]], "image": item, "y": y, "x": x,
                                 "value": r[stat]})
    return rows


def test_extremes_equal_those_recomputed_from_every_query(run):
    table = pq.read_table(run / "extremes.parquet").to_pylist()
    assert table and {"statistic", "class", "module", "view", "image", "y", "x", "value", "rank"} <= set(table[0])
    groups: dict = {}
    for r in recomputed():
        groups.setdefault((r["statistic"], r["class"]), []).append((r["value"], r["image"], r["y"], r["x"]))
    assert {(r["statistic"], r["class"]) for r in table} == set(groups)
    for (stat, cls), values in groups.items():
        for end, key in (("highest", lambda e: (-e[0], e[1], e[2], e[3])), ("lowest", lambda e: e)):
            want = sorted(set(values), key=key)[:TAIL_K]
            got = sorted((r for r in table if (r["statistic"], r["class"], r["end"]) == (stat, cls, end)),
                         key=lambda r: r["rank"])
            assert [r["module"] for r in got] == ["criss_cross"] * len(want)
            assert [r["view"] for r in got] == ["effective"] * len(want)
            assert [(r["image"], r["y"], r["x"]) for r in got] == [w[1:] for w in want]
            assert [r["value"] for r in got] == pytest.approx([w[0] for w in want], rel=1e-9, abs=1e-12)


def test_merging_shards_in_any_order_gives_the_same_extremes(run):
    import json

    parts = [Summary.from_dict(json.loads(p.read_text())["summary"]) for p in sorted((run / "shards").glob("*.json"))]
    want = tail_rows(merge_all(parts))
    for seed in range(4):
        shuffled = parts[:]
        random.Random(seed).shuffle(shuffled)
        assert tail_rows(merge_all(shuffled)) == want
    assert want == pq.read_table(run / "extremes.parquet").to_pylist()


def test_the_extremes_cost_bench_runs_with_and_without_them_and_restores_the_code():
    from benchmarks.analyze import EXTREMES_HEADER, extremes_cost
    from vizattn.analysis import summary

    before = (summary.Summary.add_tail, summary._trim, summary.tail_rows)
    rows = extremes_cost(images=1, size=64, queries=4, repeats=1)
    assert len(rows) == 3 and all(len(r) == len(EXTREMES_HEADER) for r in rows)
    assert rows[2][-1].endswith("%") and float(rows[2][1]) >= 0 and float(rows[0][1]) > 0
    assert (summary.Summary.add_tail, summary._trim, summary.tail_rows) == before
