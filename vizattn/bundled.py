"""The bundled models in `vizattn/pretrained/` (package data): their names and model cards, read without importing
PyTorch (the app's sidebar lists them while PyTorch is still importing)."""
from __future__ import annotations

import json
from pathlib import Path

from vizattn.errors import VizattnError

PRETRAINED = Path(__file__).resolve().parent / "pretrained"  # package data: installed with the wheel


def available(directory: Path = PRETRAINED) -> list[str]:
    """Names of the models in `directory` (their weights; the model card beside them is optional)."""
    return sorted(p.stem for p in Path(directory).glob("*.safetensors"))


def model_card(name: str, directory: Path = PRETRAINED) -> dict:
    if name not in available(directory):
        raise VizattnError(f"No bundled model '{name}'; choose one of {', '.join(available(directory)) or '(none)'}.")
    path = directory / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else {}
