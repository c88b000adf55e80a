"""An analyze run that cannot lie: a plan names the model's weights, the arguments and every image by content;
each shard records the plan's digest, its items, its rows' hash and its own content hash; a resume merges only
shards that verify against the plan.

Choices (README, analyze): a shard of this plan that fails verification (edited, half-written, its rows missing
or changed, another plan's) is recomputed, and the run says which; a file in shards/ the plan does not name is
never merged and is named; a folder bound to another plan (other arguments, images, or a model replaced at the
same path) is refused with one sentence."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from vizattn.errors import VizattnError
from vizattn.io import file_sha256 as file_digest  # noqa: F401 (analyze hashes images by it)
from vizattn.io import read_json_object, sha256_of
from vizattn.outputs import read_small, replace_into, subfolder

MANIFEST = "analyze.json"


def canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


@dataclass
class Plan:
    """What a run computes: the arguments, the model's weights and the images, all by content."""

    job: dict
    shard_size: int
    model_sha256: str | None
    items: list[list]  # [name, sha256 of its bytes (None for a generated scene: its seed is its content)]
    labels: list[list] = field(default_factory=list)  # [label file name, sha256] when --labels is given
    model_b_sha256: str | None = None  # model B's weights in a paired run (`--models A B`)

    @property
    def digest(self) -> str:
        return sha256_of(canonical(self.to_dict()))

    def to_dict(self) -> dict:
        """Model B's weights only in a paired run: a one-model plan keeps the digest earlier versions gave it."""
        b = {"model_b_sha256": self.model_b_sha256} if self.model_b_sha256 is not None else {}
        return {"job": self.job, "shard_size": self.shard_size, "model_sha256": self.model_sha256,
                "items": self.items, "labels": self.labels, **b}

    def shards(self) -> list[tuple[int, list[str], int]]:
        names = [name for name, _ in self.items]
        size = self.shard_size
        return [(i // size, names[i : i + size], i) for i in range(0, len(names), size)]


def bind(out: Path, plan: Plan) -> None:
    """Tie `out` to this plan: a first run writes it; a rerun of the same plan resumes; anything else is refused
    with a sentence saying what differs."""
    subfolder(out, "shards")
    if (out / MANIFEST).exists() or (out / MANIFEST).is_symlink():
        have = _manifest(out)
        if have.get("digest") == plan.digest and have.get("plan") == plan.to_dict():
            return
        old = have.get("plan") if isinstance(have.get("plan"), dict) else {}
        if old.get("job") != plan.job or old.get("shard_size") != plan.shard_size:
            what = "other arguments"
        elif old.get("model_sha256") != plan.model_sha256:
            what = (f"another model's weights (sha256 {str(old.get('model_sha256'))[:12]}…, now "
                    f"{str(plan.model_sha256)[:12]}…: the file at that path was replaced)")
        elif old.get("model_b_sha256") != plan.model_b_sha256:
            what = (f"another model B's weights (sha256 {str(old.get('model_b_sha256'))[:12]}…, now "
                    f"{str(plan.model_b_sha256)[:12]}…: the file at that path was replaced)")
        elif old.get("items") != plan.items or old.get("labels") != plan.labels:
            what = "other images or labels (by content)"
        else:
            what = "a plan this version cannot read"
        raise VizattnError(f"'{out}' holds an analysis run of {what}; rerun that, or choose another --out.")
    replace_into(out, MANIFEST, json.dumps({"digest": plan.digest, "plan": plan.to_dict()}, indent=1).encode())


def load_plan(out: Path) -> Plan:
    """The plan a run's folder is bound to."""
    have = _manifest(out)
    try:
        return Plan(**have["plan"])
    except (KeyError, TypeError):
        raise VizattnError(f"'{out / MANIFEST}' is not a plan this version wrote; choose another --out.") from None


def shard_file(plan: Plan, shard: int, items: list[str], summary: dict, rows: bytes, n_rows: int,
               model_sha256: str | None) -> bytes:
    """A shard's JSON: the plan's digest, what it covers, its rows' hash, and its own content hash."""
    from vizattn import jsonsafe

    body = json.loads(jsonsafe.dumps({"plan": plan.digest, "shard": shard, "items": items, "rows": n_rows,
                                      "rows_sha256": sha256_of(rows), "model_sha256": model_sha256,
                                      "summary": summary}))
    return json.dumps({**body, "sha256": sha256_of(canonical(body))}).encode()


@dataclass
class Verified:
    good: dict[int, dict]  # shard -> its parsed JSON
    damaged: list[str]  # file names of this plan's shards that failed verification (recomputed)
    strays: list[str]  # files in shards/ the plan does not name (never merged)


def verify(out: Path, plan: Plan) -> Verified:
    """Every shard file checked against the plan: parsed, hashed, its rows present and unchanged."""
    folder = out / "shards"
    wanted = {f"{s:05d}": (s, items) for s, items, _ in plan.shards()}
    good, damaged, strays = {}, [], []
    for path in sorted(folder.iterdir()):
        stem, suffix = path.name.split(".", 1)[0], path.suffix
        if path.name.startswith("."):
            continue  # a temporary file of an interrupted write
        if stem not in wanted or suffix not in (".json", ".parquet"):
            strays.append(path.name)
            continue
        if suffix == ".parquet":
            continue  # checked with its JSON
        shard, items = wanted[stem]
        try:
            data = json.loads(read_small(folder, path.name, 64 << 20))
            body = {k: v for k, v in data.items() if k != "sha256"}
            rows = read_small(folder, f"{stem}.parquet", 1 << 30)
            ok = (data.get("sha256") == sha256_of(canonical(body)) and body.get("plan") == plan.digest
                  and body.get("shard") == shard and body.get("items") == items
                  and body.get("rows_sha256") == sha256_of(rows) and isinstance(body.get("summary"), dict))
        except (VizattnError, ValueError, AttributeError, TypeError):
            ok = False
        if ok:
            good[shard] = body
        else:
            damaged.append(path.name)
    for stem, (shard, _) in wanted.items():  # rows left without their JSON: an interrupted shard, redone
        if shard not in good and (folder / f"{stem}.parquet").exists() and f"{stem}.json" not in damaged:
            damaged.append(f"{stem}.parquet")
    return Verified(good, damaged, strays)


def _manifest(out: Path) -> dict:
    return read_json_object(out / MANIFEST, f"'{out / MANIFEST}'", 64 << 20, "the JSON object vizattn writes",
                            "remove it or choose another --out")
