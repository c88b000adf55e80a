"""Loading and saving trained segmenters: bundled names from `pretrained/` model cards, or any file path."""
from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from safetensors.torch import save_file

from vizattn.errors import VizattnError
from vizattn.io import check_fits, read_checkpoint
from vizattn.models.segmenter import HEADS, ModelConfig, Segmenter, build_model, config_from_dict
from vizattn.bundled import PRETRAINED, available, model_card  # noqa: F401 (the zoo's listing)
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


def load(name_or_path: str | Path | bytes, head: str | None = None, file_name: str | None = None) -> Segmenter:
    """A ready model in eval mode from a bundled name, a file path or uploaded bytes.

    The architecture comes from the checkpoint's metadata, else its model card, else `head`.
    """
    card = {}
    source = name_or_path
    bundled = False
    if isinstance(name_or_path, (str, Path)) and not isinstance(name_or_path, bytes):
        from vizattn.foreign.hf_transformers import is_hf_directory, load_directory

        if is_hf_directory(name_or_path):
            model = load_directory(name_or_path)
            model.sha256 = file_sha256(Path(name_or_path) / "model.safetensors")
            return model
        if Path(name_or_path).is_dir():
            raise VizattnError(f"'{name_or_path}' is a folder but not a transformers model folder (config.json and "
                               "model.safetensors); give a checkpoint file or such a folder.")
        if isinstance(name_or_path, str) and FACTORY.fullmatch(name_or_path) and not Path(name_or_path).exists():
            return load_factory(name_or_path)
    if isinstance(name_or_path, str) and name_or_path in available():
        source = PRETRAINED / f"{name_or_path}.safetensors"
        card = model_card(name_or_path)
        bundled = True
    elif isinstance(name_or_path, (str, Path)) and Path(name_or_path).with_suffix(".json").is_file():
        card = json.loads(Path(name_or_path).with_suffix(".json").read_text())
    elif isinstance(name_or_path, str) and not Path(name_or_path).exists():
        raise VizattnError(
            f"'{name_or_path}' is neither a bundled model ({', '.join(available()) or 'none found'}) nor a file."
        )
    state, meta = read_checkpoint(source, file_name)
    name = file_name or (Path(source).name if not isinstance(source, bytes) else "uploaded checkpoint")
    sha256 = file_sha256(source)  # exports name the exact weights they were drawn from
    from vizattn.foreign.mmseg import from_checkpoint, is_mmseg_state

    if is_mmseg_state(state) or (state and all(k.startswith("module.") for k in state)
                                 and is_mmseg_state({k[7:]: v for k, v in state.items()})):
        model = from_checkpoint(state, meta.get("meta") if isinstance(meta.get("meta"), dict) else {}, name)
        model.sha256 = sha256
        return model
    config = _config(meta, card, head, name, state)
    with torch.device("meta"):  # shapes only: a hostile config allocates nothing before it is checked
        shell = build_model(config)
    check_fits(shell, state, name)
    if not bundled:  # our own zoo's configurations are known; costing them would import torch._dynamo (~3 s)
        check_cost(shell.eval(), name)
    model = build_model(config)
    model.load_state_dict(state, strict=True)
    model.card = card
    model.sha256 = sha256
    return model.eval()


FACTORY = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


def load_factory(spec: str) -> torch.nn.Module:
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
    return model.eval()


def _config(meta: dict, card: dict, head: str | None, name: str, state: dict | None = None) -> ModelConfig:
    raw = meta.get("vizattn_config")
    if head is not None:
        return ModelConfig(head=head)
    if raw:
        try:
            parsed = json.loads(raw) if isinstance(raw, str) and len(raw) <= 100_000 else None
        except (ValueError, RecursionError):
            parsed = None
        if parsed is None:
            raise VizattnError(f"'{name}' carries a vizattn configuration this version cannot read; pick its head by hand.")
        return config_from_dict(parsed, name)
    if card.get("config"):
        return config_from_dict(card["config"], name)
    found = head_from_keys(state or {})
    if found:
        return ModelConfig(head=found)
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
