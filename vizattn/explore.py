"""One forward pass with capture per (model, image), then cheap per-click query maps: the layer the app and
the `query`/`compare` commands share."""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

from typing import TYPE_CHECKING

import numpy as np

from vizattn.errors import VizattnError
from vizattn.model import SegmentationModel, as_model

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from vizattn.records import AttentionRecord


@dataclass
class Forward:
    """What one model computed for one image: the prediction and every attention record."""

    image: np.ndarray  # H×W×3 uint8
    prediction: np.ndarray  # H×W class indices (uint8 up to 256 classes, int32 beyond)
    records: dict[str, AttentionRecord]
    confidence: np.ndarray = field(repr=False, default=None)  # H×W max softmax probability
    classes: list[str] = field(default=None)  # the model's class names (ours unless its card names others)
    palette: np.ndarray = field(repr=False, default=None)  # K×3 uint8

    def __post_init__(self):
        if self.classes is None or self.palette is None:
            from vizattn.data import CLASSES, PALETTE

            self.classes, self.palette = list(CLASSES), np.asarray(PALETTE, np.uint8)

    @property
    def shape(self) -> tuple[int, int]:
        return self.image.shape[:2]


class MadeOnRead:
    """A dataclass field given either as its value or as a function of nothing that makes it: the function runs
    when the field is first read, and its value is kept. A descriptor-typed field without a default (its
    `__get__` on the class raises AttributeError, as the dataclasses documentation asks)."""

    def __set_name__(self, owner, name):
        self.name, self.slot = name, MadeOnRead._slot(name)

    def __get__(self, obj, owner=None):
        if obj is None:
            raise AttributeError(self.name)
        value = obj.__dict__[self.slot]
        if callable(value):
            value = obj.__dict__[self.slot] = value()
        return value

    def __set__(self, obj, value):
        obj.__dict__[self.slot] = value

    @staticmethod
    def made(obj, name: str) -> bool:
        """Whether `obj`'s field `name` holds its value (rather than the function that makes it)."""
        return not callable(obj.__dict__.get(MadeOnRead._slot(name)))

    @staticmethod
    def _slot(name: str) -> str:
        return f"_{name}_value"  # where an instance keeps the field's value or its maker


@dataclass
class Panel:
    """One heatmap: a record's view for one query pixel, on the feature grid and at image size."""

    module: str
    kind: str
    view: str
    # `panels` gives both maps as what makes them when first read: the browser's grids compute their own rows and
    # read neither (at 1024² a comparison's 12 maps and spreads cost ~45 ms of a click's server time, more under load)
    grid_map: np.ndarray = MadeOnRead()  # h×w, as the module computed it
    image_map: np.ndarray = MadeOnRead()  # H×W, each grid cell's weight spread over the pixels it covers
    cell: tuple[int, int]  # the query's grid cell (gy, gx)
    cell_box: tuple[int, int, int, int]  # its pixels: y0, y1, x0, x1 (exclusive ends)
    pixel: tuple[int, int]
    query_independent: bool
    distribution: bool
    note: str = ""
    outside_share: float = 0.0  # weight that went to positions outside the image (ISA's zero padding)
    record: AttentionRecord | None = field(default=None, repr=False, compare=False)  # for the browser's rows
    tokens: int | None = None  # a part of a distribution over this many keys (AttentionRecord.tokens)

    @property
    def uniform(self) -> float | None:
        """The uniform level its colorbar marks: 1/N for a distribution over its N cells, 1/tokens for the patch part
        of one over more keys (a class token's row), None for a gate (vizattn.viz.overlay.uniform_level)."""
        if self.tokens:
            return 1.0 / self.tokens
        return 1.0 / math.prod(self.grid_shape) if self.distribution else None

    @property
    def grid_shape(self) -> tuple[int, int]:
        """(h, w) of grid_map, without making it where it is not made yet (the record knows its maps' shape)."""
        if self.record is None or MadeOnRead.made(self, "grid_map"):
            return tuple(self.grid_map.shape)
        return self.record.map_shape(self.view)

    @property
    def main(self) -> bool:
        """Whether this is its module's main view (effective / all / mean: what every view list starts with)."""
        return self.record is not None and self.view == self.record.default_view

    @property
    def title(self) -> str:
        return f"{self.module} · {self.view}"


def model_classes(model: SegmentationModel) -> tuple[list[str], np.ndarray]:
    """Class names and palette of a loaded model (vizattn.model's interface)."""
    return list(model.classes), np.asarray(model.palette, np.uint8)


def run_model(model: torch.nn.Module, image: np.ndarray, progress=None) -> Forward:
    """The single forward pass with capture; every click afterwards only reads the records.
    `progress(done, total)` is called as the forward advances (slide crops of large foreign models)."""
    import torch  # here, not above: the page's first screen (vizattn.opening) reads this module before PyTorch

    with torch.no_grad():
        return _run_model(model, image, progress)


def _run_model(model, image: np.ndarray, progress) -> Forward:
    import torch

    from vizattn.capture import capture

    model = as_model(model).eval()
    try:
        with capture(model) as cap:
            logits = model.segment(image, progress)
    except VizattnError:
        raise
    except (RuntimeError, ValueError, TypeError, IndexError) as err:  # a model that cannot take this input
        raise VizattnError(f"The model failed on this {image.shape[0]}×{image.shape[1]} image ({type(err).__name__}: "
                           f"{str(err)[:160]}); it may need another input size or kind of model.") from None
    logits = getattr(logits, "logits", logits)  # transformers outputs
    if isinstance(logits, torch.Tensor) and logits.is_floating_point() and not bool(torch.isfinite(logits).all()):
        raise VizattnError("The model's output on this image is not finite (NaN or Inf), so it predicts nothing; "
                           "its weights or its input scale are broken.")
    classes, palette = model_classes(model)
    if not (isinstance(logits, torch.Tensor) and logits.dim() == 4):  # a backbone or encoder: attention, no labels
        h, w = image.shape[:2]
        return Forward(image, np.zeros((h, w), np.uint8), dict(cap.records), np.zeros((h, w), np.float32),
                       ["(this model predicts no classes)"], np.array([[128, 128, 128]], np.uint8))
    if logits.shape[2:] != image.shape[:2]:
        logits = torch.nn.functional.interpolate(logits, size=image.shape[:2], mode="bilinear", align_corners=False)
    if logits.shape[1] != len(classes):
        from vizattn.data.palettes import spread_palette

        classes = [f"class {i}" for i in range(logits.shape[1])]
        palette = np.asarray(spread_palette(len(classes)), np.uint8)
    probs = torch.softmax(logits[0], 0)
    conf, pred = probs.max(0)
    labels = pred.to("cpu", torch.uint8 if len(classes) <= 256 else torch.int32).numpy()
    return Forward(image, labels, dict(cap.records), conf.cpu().numpy(), classes, palette)


def check_pixel(y: int, x: int, shape: tuple[int, int]) -> tuple[int, int]:
    h, w = shape
    if not (0 <= y < h and 0 <= x < w):
        raise VizattnError(f"Pixel ({y}, {x}) is outside the {h}×{w} image; choose y in 0..{h - 1} and x in 0..{w - 1}.")
    return int(y), int(x)


def cell_of(y: int, x: int, shape: tuple[int, int], grid: tuple[int, int]) -> tuple[int, int]:
    """The feature-grid cell a pixel falls in (the grid covers the image at stride ⌈H/h⌉)."""
    (h, w), (gh, gw) = shape, grid
    return min(gh - 1, y * gh // h), min(gw - 1, x * gw // w)


def cell_box(gy: int, gx: int, shape: tuple[int, int], grid: tuple[int, int]) -> tuple[int, int, int, int]:
    (h, w), (gh, gw) = shape, grid
    return (-(-gy * h // gh), -(-(gy + 1) * h // gh), -(-gx * w // gw), -(-(gx + 1) * w // gw))


def cell_indices(shape: tuple[int, int], grid: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The grid row of every image row and the grid column of every image column (as `cell_of`)."""
    (h, w), (gh, gw) = shape, grid
    return np.minimum(gh - 1, np.arange(h) * gh // h), np.minimum(gw - 1, np.arange(w) * gw // w)


def cell_centre(gy: int, gx: int, shape: tuple[int, int], grid: tuple[int, int]) -> tuple[int, int]:
    y0, y1, x0, x1 = cell_box(gy, gx, shape, grid)
    return (y0 + y1) // 2, (x0 + x1) // 2


def to_image(grid_map: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Spread each grid cell's value over the image pixels of that cell (nearest, no smoothing): grid_map[rows][:,
    cols] with `cell_indices`, taken one axis at a time (1.5–3× faster than indexing every pixel at 1024², for
    float maps and RGB alike). Trailing axes (a cell's RGB) are carried along."""
    rows, cols = cell_indices(shape, grid_map.shape[:2])
    return np.take(np.take(grid_map, rows, axis=0), cols, axis=1)


def unmapped(forward: Forward) -> list[str]:
    """Why some captured attention has no map (a foreign softmax whose length fits no grid of the image)."""
    return [r.reason for r in forward.records.values() if getattr(r, "reason", "")]


def _spread(grid_map, shape):
    return lambda: to_image(grid_map(), shape)


def panels(forward: Forward, y: int, x: int, views: dict[str, list[str]] | None = None) -> list[Panel]:
    """Every (module, view) heatmap for query pixel (y, x), each module's main view first; `views` picks views
    per module (default: all)."""
    y, x = check_pixel(y, x, forward.shape)
    out = []
    for name, rec in forward.records.items():
        gy, gx = cell_of(y, x, forward.shape, rec.grid)
        # the main view (effective / all / mean) first, then the steps it is made of
        ordered = sorted(rec.views(), key=lambda v: v != rec.default_view)
        for view in (views or {}).get(name) or ordered:
            grid_map = functools.cache(functools.partial(rec.query_map, gy, gx, view))
            outside = rec.outside_share(gy, gx, view)
            note = rec.note(view)
            if outside > 5e-4:
                note = " ".join(filter(None, [note, f"{outside:.1%} of this pixel's weight went to {rec.outside_label}."]))
            out.append(Panel(
                name, rec.kind, view, grid_map, _spread(grid_map, forward.shape), (gy, gx),
                cell_box(gy, gx, forward.shape, rec.grid), (y, x), rec.query_independent(view),
                view in rec.distribution_views, note, outside, rec, rec.tokens(view),
            ))
    return out
