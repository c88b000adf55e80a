"""The one interface through which the page, the report and the CLI see a loaded model, whatever it came from.

Every loader (a bundled name, a vizattn or mmseg checkpoint, a transformers folder, a `package.module:function`
factory) returns a torch module that `adopt` has given the same four things: `segment(image)` (1×K×H×W logits at
the image's size), `classes`, `palette` and `provenance`. Readers ask these; none of them guesses from attributes.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch

SCENES = "vizattn's generated street scenes"  # what `trained_on` says for our own models
MEAN = (0.5, 0.5, 0.5)  # our models' input normalisation, after uint8 / 255
STD = (0.25, 0.25, 0.25)


@dataclass(frozen=True)
class Provenance:
    """Where a loaded model came from, as a reader needs it (exports name it, the sidebar shows it)."""

    source: str  # bundled | vizattn checkpoint | mmseg checkpoint | transformers folder | factory
    family: str  # vizattn | mmsegmentation | transformers | pytorch
    name: str  # the bundled name, file or folder name, or the factory spec
    sha256: str | None = None  # of the weights file; None for a factory's model
    trained_on: str = "unknown"
    architecture: str = ""  # e.g. "criss_cross head", "mmseg CCHead on ResNetV1c-50-D8", "segformer"
    detected: str = ""  # how the architecture was told: the card, the checkpoint's metadata, its keys, the user
    classes_from: str = ""

    @property
    def ours(self) -> bool:
        """A vizattn segmenter (our backbone and heads): the analyses of the papers run on it."""
        return self.family == "vizattn"

    @property
    def scene_trained(self) -> bool:
        """Trained only on vizattn's generated scenes: a photograph through it describes the model, not the photo."""
        return self.trained_on == SCENES

    def to_dict(self) -> dict:
        return asdict(self)


@runtime_checkable
class SegmentationModel(Protocol):
    """What vizattn shows: a torch module with these four members (see `adopt`)."""

    classes: list[str]
    palette: np.ndarray  # K×3 uint8
    provenance: Provenance

    def segment(self, image: np.ndarray, progress=None) -> torch.Tensor: ...


def adopt(module: torch.nn.Module, provenance: Provenance, classes=None, palette=None) -> torch.nn.Module:
    """`module` with the interface: classes and palette (default: the scenes' own, or numbered classes once the
    output says how many), provenance, and `segment` where the module has none (a factory's model: the image
    as our models take it, logits resized to the image)."""
    from vizattn.data import CLASSES, PALETTE

    module.classes = list(CLASSES if classes is None else classes)
    module.palette = np.asarray(PALETTE if palette is None else palette, np.uint8).reshape(-1, 3)
    module.provenance = provenance
    if not callable(getattr(type(module), "segment", None)):
        import types

        module.segment = types.MethodType(_plain_segment, module)
    return module.eval()


def as_model(module: torch.nn.Module) -> SegmentationModel:
    """A module handed in from Python as it is when it has the interface, else adopted as a plain PyTorch module
    (our input convention, our classes until its output says otherwise)."""
    if isinstance(module, SegmentationModel):
        return module
    return adopt(module, Provenance("a module from Python", "pytorch", type(module).__name__))


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 H×W×3 (or B×H×W×3) -> normalised float B×3×H×W, as our models take images."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0)
    x = x[None] if x.dim() == 3 else x
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    return (x.permute(0, 3, 1, 2) - mean) / std


def _plain_segment(module, image: np.ndarray, progress=None):
    import torch

    first = next(module.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    return module(to_tensor(image).to(device))
