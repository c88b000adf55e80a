"""`vizattn analyze` runs cannot lie: a run is bound to a plan (arguments, the weights' sha256, every image by
content); a shard that fails verification is recomputed and named, a stray one is never merged, a model replaced
at the same path or changed arguments are refused, and nothing is written through a planted link."""
import json
import os
import shutil

import pyarrow.parquet as pq
import pytest

from vizattn.analyze import Job, analyze, merged
from vizattn.bundled import PRETRAINED
from vizattn.errors import VizattnError

JOB = Job(model="criss_cross", scenes=4, queries=8, size=96)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "out"
    result = analyze(JOB, out, shard_size=2, progress=False)
    return out, result


def copy(run, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(run[0], dst)
    return dst


def test_a_clean_rerun_resumes_everything_and_rows_are_complete(run, tmp_path):
    out = copy(run, tmp_path)
    again = analyze(JOB, out, shard_size=2, progress=False)
    assert again["resumed_shards"] == 2 and again["recomputed"] == [] and again["not_merged"] == []
    assert again["rows"] == run[1]["rows"] == pq.read_table(out / "rows.parquet").num_rows > 0


def test_an_edited_shard_is_recomputed_never_merged(run, tmp_path):
    out = copy(run, tmp_path)
    path = out / "shards" / "00000.json"
    data = json.loads(path.read_text())
    key = next(iter(data["summary"]["moments"]))
    data["summary"]["moments"][key][0] += 50.0  # what the red team did: a cosine distance of 50 in the report
    path.write_text(json.dumps(data))
    again = analyze(JOB, out, shard_size=2, progress=False)
    assert again["recomputed"] == ["00000.json"] and again["resumed_shards"] == 1
    assert merged(out) == merged(run[0])


def test_a_stray_shard_outside_the_plan_is_named_and_not_merged(run, tmp_path):
    out = copy(run, tmp_path)
    for suffix in (".json", ".parquet"):
        shutil.copy(out / "shards" / f"00000{suffix}", out / "shards" / f"00007{suffix}")
    again = analyze(JOB, out, shard_size=2, progress=False)
    assert again["not_merged"] == ["00007.json", "00007.parquet"] and again["images"] == 4
    assert merged(out) == merged(run[0]) and again["rows"] == run[1]["rows"]


def test_a_deleted_rows_file_is_recomputed_and_rows_stay_complete(run, tmp_path):
    out = copy(run, tmp_path)
    (out / "shards" / "00001.parquet").unlink()
    again = analyze(JOB, out, shard_size=2, progress=False)
    assert again["recomputed"] == ["00001.json"]
    assert pq.read_table(out / "rows.parquet").num_rows == run[1]["rows"]


def test_changed_arguments_are_refused(run, tmp_path):
    out = copy(run, tmp_path)
    with pytest.raises(VizattnError, match="other arguments"):
        analyze(Job(model="criss_cross", scenes=4, queries=16, size=96), out, shard_size=2, progress=False)


def test_a_model_replaced_at_the_same_path_is_refused(tmp_path):
    ckpt = tmp_path / "model.safetensors"
    shutil.copy(PRETRAINED / "criss_cross.safetensors", ckpt)
    job = Job(model=str(ckpt), scenes=2, queries=8, size=96)
    analyze(job, tmp_path / "out", shard_size=1, progress=False)
    shutil.copy(PRETRAINED / "gc.safetensors", ckpt)
    with pytest.raises(VizattnError, match="another model's weights .*replaced") as info:
        analyze(job, tmp_path / "out", shard_size=1, progress=False)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("text", ["garbage{", "null", "[1, 2]", "\"abc\""])
def test_a_broken_manifest_gets_one_sentence(run, tmp_path, text):
    out = copy(run, tmp_path)
    (out / "analyze.json").write_text(text)
    with pytest.raises(VizattnError, match="not the JSON object vizattn writes|another"):
        analyze(JOB, out, shard_size=2, progress=False)


def test_garbage_shard_files_are_recomputed(run, tmp_path):
    out = copy(run, tmp_path)
    (out / "shards" / "00000.json").write_text("null")
    (out / "shards" / "00001.json").write_text("garbage")
    (out / "shards" / "abc.json").write_text("{}")
    again = analyze(JOB, out, shard_size=2, progress=False)
    assert again["recomputed"] == ["00000.json", "00001.json"] and again["not_merged"] == ["abc.json"]
    assert merged(out) == merged(run[0])


def test_links_planted_in_out_are_refused_before_anything_is_written(tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(target, out / "shards")
    with pytest.raises(VizattnError, match="symbolic link"):
        analyze(JOB, out, shard_size=2, progress=False)
    assert list(target.iterdir()) == []
    out2 = tmp_path / "out2"
    out2.mkdir()
    os.symlink(tmp_path / "victim.md", out2 / "report.md")
    with pytest.raises(VizattnError, match="symbolic link"):
        analyze(JOB, out2, shard_size=2, progress=False)
    assert sorted(p.name for p in out2.iterdir()) == ["report.md"] and not (tmp_path / "victim.md").exists()
    out3 = tmp_path / "out3"
    out3.mkdir()
    (tmp_path / "system.json").write_text(json.dumps({"plan": {}}))
    os.symlink(tmp_path / "system.json", out3 / "analyze.json")
    with pytest.raises(VizattnError, match="symbolic link is refused"):
        analyze(JOB, out3, shard_size=2, progress=False)
