"""Loading and saving trained segmenters: bundled names from `pretrained/` model cards, or any file path."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from collections.abc import Callable

import torch
from safetensors.torch import save_file

from vizattn.errors import VizattnError
from vizattn.io import MAX_CHECKPOINT_BYTES, check_fits, read_checkpoint, read_json_object
from vizattn.models.segmenter import HEADS, ModelConfig, Segmenter, build_model, config_from_dict
from vizattn.bundled import PRETRAINED, available, model_card
from vizattn.foreign.hf_transformers import is_hf_directory
from vizattn.model import SCENES, Provenance, SegmentationModel, adopt
from vizattn.schema import check_cost
from vizattn.sources import file_sha256


def save(model: Segmenter, path: Path, card: dict | None = None) -> None:
    """Weights to `path` (.safetensors, with the architecture in its metadata) and the card beside it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={"vizattn_config": json.dumps(model.config.to_dict())})
    if card is not None:
        path.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")


@dataclass(frozen=True)
class Source:
    """One kind of place a model comes from: whether a spec is of this kind, and how to load it."""

    kind: str
    matches: Callable[[object], bool]
    load: Callable[..., torch.nn.Module]  # (spec, head, file_name) -> a model with vizattn.model's interface


def _is_text(spec) -> bool:
    return isinstance(spec, (str, Path))


def load(spec: str | Path | bytes, head: str | None = None, file_name: str | None = None) -> torch.nn.Module:
    """A ready model in eval mode, with vizattn.model's interface, from a bundled name, a checkpoint (path or
    uploaded bytes: ours or mmseg's, told by its keys), a transformers folder or `package.module:function`:
    the first row of SOURCES that matches loads it."""
    source = source_of(spec)
    return source.load(spec, head, file_name)


def source_of(spec) -> Source:
    """The row of SOURCES a spec belongs to, or one sentence saying what the spec is not."""
    for source in SOURCES:
        if source.matches(spec):
            return source
    if _is_text(spec) and Path(spec).is_dir():
        raise VizattnError(f"'{spec}' is a folder but not a transformers model folder (config.json and "
                           "model.safetensors); give a checkpoint file or such a folder.")
    raise VizattnError(f"'{spec}' is neither a bundled model ({', '.join(available()) or 'none found'}), a file, "
                       "a transformers model folder nor package.module:function.")


def weights_sha256(spec) -> str | None:
    """The sha256 of the weights a spec names, without loading them (None for a factory: its code is the model).
    What an analyze run is tied to: the content, not the path."""
    kind = source_of(spec).kind
    if kind == "bundled":
        return file_sha256(PRETRAINED / f"{spec}.safetensors")
    if kind == "factory":
        return None
    path = Path(spec) / "model.safetensors" if kind == "transformers folder" else Path(spec)
    linked = kind == "transformers folder" and path.is_symlink()  # a folder's files are never read through links
    if linked or not path.is_file() or path.stat().st_size > MAX_CHECKPOINT_BYTES:
        return None  # nothing vizattn will read: loading it says why, in its own sentence
    return file_sha256(path)


def _load_bundled(name, head=None, file_name=None) -> torch.nn.Module:
    card = model_card(name)
    model = _load_checkpoint(PRETRAINED / f"{name}.safetensors", None, None, card=card, bundled=True)
    model.provenance = replace(model.provenance, name=name)
    return model


def _load_transformers(path, head=None, file_name=None) -> torch.nn.Module:
    from vizattn.foreign.hf_transformers import load_directory

    return load_directory(path)  # it hashes model.safetensors once the folder has passed its checks


def _load_checkpoint(source, head=None, file_name=None, card=None, bundled=False) -> torch.nn.Module:
    if card is None and _is_text(source) and Path(source).with_suffix(".json").is_file():
        card = _sibling_card(Path(source).with_suffix(".json"))
    card = card or {}
    state, meta = read_checkpoint(source, file_name)
    name = file_name or (Path(source).name if not isinstance(source, bytes) else "uploaded checkpoint")
    sha256 = file_sha256(source)  # once per load: exports name the exact weights they were drawn from
    from vizattn.foreign.mmseg import from_checkpoint, is_mmseg_state

    if is_mmseg_state(state) or (state and all(k.startswith("module.") for k in state)
                                 and is_mmseg_state({k[7:]: v for k, v in state.items()})):
        return from_checkpoint(state, meta.get("meta") if isinstance(meta.get("meta"), dict) else {}, name, sha256)
    if state and all(k.startswith("module.") for k in state):  # saved from DataParallel / DistributedDataParallel
        state = {k[len("module."):]: v for k, v in state.items()}
    config, detected = _config(meta, card, head, name, state)
    with torch.device("meta"):  # shapes only: a hostile config allocates nothing before it is checked
        shell = build_model(config)
    check_fits(shell, state, name)
    if not bundled:  # our own zoo's configurations are known; costing them would import torch._dynamo (~3 s)
        check_cost(shell.eval(), name)
    model = build_model(config)
    model.load_state_dict(state, strict=True)
    model.card = card
    trained = SCENES if card.get("training") or bundled or meta.get("vizattn_config") else "unknown"
    return adopt(model, Provenance("bundled" if bundled else "vizattn checkpoint", "vizattn", name, sha256, trained,
                                   f"{config.head} head", "the model card" if bundled else detected, "vizattn's scenes"))


def _sibling_card(path: Path) -> dict:
    """A model card beside a checkpoint: a small JSON object, or one sentence."""
    return read_json_object(path, f"The model card '{path.name}' beside the checkpoint", expected="a JSON object")


FACTORY = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


def load_factory(spec: str, head=None, file_name=None) -> torch.nn.Module:
    """`package.module:function` -> the model that function returns. This imports and runs the user's own code:
    the CLI and a locally bound app offer it, uploads never do."""
    import importlib

    module_name, func_name = spec.split(":")
    try:
        factory = getattr(importlib.import_module(module_name), func_name)
    except (ImportError, AttributeError) as err:
        raise VizattnError(f"'{spec}' names no importable function ({type(err).__name__}: {err}); give "
                           "package.module:function on this Python path.") from None
    try:
        model = factory()
    except Exception as err:  # the user's own code: its failure is reported, not a traceback
        raise VizattnError(f"'{spec}' raised {type(err).__name__} while building the model: {err}") from None
    if not isinstance(model, torch.nn.Module):
        raise VizattnError(f"'{spec}' returned a {type(model).__name__}, not a torch.nn.Module.")
    if isinstance(model, SegmentationModel):  # the factory built one with the interface itself
        return model.eval()
    return adopt(model, Provenance("factory", "pytorch", spec, architecture=type(model).__name__,
                                   detected="your own code"))


def _config(meta: dict, card: dict, head: str | None, name: str, state: dict | None = None) -> tuple[ModelConfig, str]:
    """The architecture and how it was told: the head asked for, the checkpoint's metadata, its card, its keys."""
    raw = meta.get("vizattn_config")
    if head is not None:
        return ModelConfig(head=head), "the head you chose"
    if raw:
        try:
            parsed = json.loads(raw) if isinstance(raw, str) and len(raw) <= 100_000 else None
        except (ValueError, RecursionError):
            parsed = None
        if parsed is None:
            raise VizattnError(f"'{name}' carries a vizattn configuration this version cannot read; pick its head by hand.")
        return config_from_dict(parsed, name), "the checkpoint's own configuration"
    if card.get("config"):
        return config_from_dict(card["config"], name), "the model card beside it"
    found = head_from_keys(state or {})
    if found:
        return ModelConfig(head=found), "its parameter names and shapes"
    raise VizattnError(
        f"'{name}' does not say which architecture it is and its keys fit none of ours; choose its head "
        f"({', '.join(HEADS)}) when loading it (--head in the CLI, the head chooser in the app)."
    )


def head_from_keys(state: dict) -> str | None:
    """The one head of ours whose parameter names and shapes a plain state dict matches exactly, if any."""
    wanted = {k: tuple(v.shape) for k, v in state.items()}
    for head in HEADS:
        own = {k: tuple(v.shape) for k, v in build_model(ModelConfig(head)).state_dict().items()}
        if own == wanted:
            return head
    return None


def results_table(directory: Path = PRETRAINED) -> tuple[list[str], list[list]]:
    """Header and rows of held-out quality for every bundled model, from the model cards."""
    header = ["model", "context module", "mIoU", "ambiguous mIoU", "road", "sidewalk", "vegetation", "terrain",
              "Δ ambiguous vs fcn", "head train s", "MB"]
    cards = {n: model_card(n, directory) for n in available(directory)}
    base = cards.get("fcn", {}).get("evaluation", {}).get("miou_ambiguous")
    rows = []
    for name, card in sorted(cards.items(), key=lambda kv: (kv[0] != "fcn", kv[0])):
        ev = card["evaluation"]
        delta = "" if base is None or name == "fcn" else f"{100 * (ev['miou_ambiguous'] - base):+.1f}"
        opts = card.get("module_options") or {}
        module = card.get("module")
        if module == "ann":
            module = "afnb + apnb"
        elif module == "psa":
            module = f"psa ({opts.get('mode', '?')}, {opts.get('variant', 'paper')})"
        rows.append([name, module or "none", f"{ev['miou']:.3f}", f"{ev['miou_ambiguous']:.3f}",
                     *(f"{ev['iou'][c]:.3f}" for c in ("road", "sidewalk", "vegetation", "terrain")), delta,
                     f"{card['training'].get('head_wall_time_s', 0):.0f}",
                     f"{(directory / f'{name}.safetensors').stat().st_size / 2**20:.1f}"])
    return header, rows


SOURCES: tuple[Source, ...] = (  # in order: the first that matches loads
    Source("bundled", lambda s: isinstance(s, str) and s in available(), _load_bundled),
    Source("transformers folder", lambda s: _is_text(s) and is_hf_directory(s), _load_transformers),
    Source("factory", lambda s: isinstance(s, str) and bool(FACTORY.fullmatch(s)) and not Path(s).exists(),
           load_factory),
    Source("checkpoint", lambda s: isinstance(s, (bytes, bytearray)) or (_is_text(s) and Path(s).is_file()),
           _load_checkpoint),
)
