"""Label files for a data set of images: found by name beside their images, checked before any model runs, read
through the one label door (vizattn.io.read_label: PNG only) and turned into the model's class indices."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from vizattn.errors import VizattnError
from vizattn.io import image_geometry, read_label

IGNORE = 255  # the label value Cityscapes and ADE20K use for "no class"


def label_path(folder: Path, image_name: str) -> Path | None:
    stem = Path(image_name).stem
    for candidate in (f"{stem}.png", f"{stem}_labelTrainIds.png", f"{stem}_gtFine_labelTrainIds.png"):
        if (folder / candidate).is_file():
            return folder / candidate
    return None


def check_labels(job) -> None:
    """Before any model runs: every image has a label PNG of its size in --labels, or one sentence says which not."""
    if not job.labels:
        return
    folder = Path(job.labels)
    if not folder.is_dir():
        raise VizattnError(f"--labels '{folder}' is not a folder; give a folder of label PNGs named like the images.")
    if not job.images:
        raise VizattnError("--labels goes with --images (generated scenes carry their own labels).")
    missing, mismatched = [], []
    for name in job.items():
        path = label_path(folder, name)
        if path is None:
            missing.append(name)
            continue
        ih, iw, _ = image_geometry(Path(job.images) / name)
        lh, lw = read_label(path).shape[:2]  # the one label door: PNG only, by content
        if (ih, iw) != (lh, lw):
            mismatched.append(f"{path.name} {lh}×{lw} vs {name} {ih}×{iw}")
    if missing or mismatched:
        parts = []
        if missing:
            parts.append(f"no label PNG for {len(missing)} image(s) ({', '.join(missing[:3])}"
                         f"{', …' if len(missing) > 3 else ''})")
        if mismatched:
            parts.append(f"{len(mismatched)} label(s) of another size ({'; '.join(mismatched[:2])})")
        raise VizattnError(f"The label folder '{folder}' does not fit the images: {' and '.join(parts)}. Labels are "
                           "PNGs of class indices (or colours of the model's palette) named like their images.")


def read_labels(path: Path, shape: tuple[int, int], classes: list[str], palette: np.ndarray,
                reduce_zero_label: bool = False, orientation: int = 1) -> np.ndarray:
    """H×W class indices (IGNORE where none) from a PNG of indices or of palette colours, turned by its image's
    EXIF `orientation` and resized (nearest) to the image as vizattn reads it. `reduce_zero_label`: ADE20K's raw
    PNGs (0 = other, k + 1 = class k)."""
    from PIL import Image

    raw = read_label(path, orientation=orientation)
    if raw.ndim == 3:
        code = (raw[..., 0].astype(np.int64) << 16) | (raw[..., 1].astype(np.int64) << 8) | raw[..., 2]
        pal = np.asarray(palette, np.int64)
        keys = (pal[:, 0] << 16) | (pal[:, 1] << 8) | pal[:, 2]
        lookup = {int(k): i for i, k in enumerate(keys)}
        colours = np.unique(code)
        unknown = [c for c in colours.tolist() if c not in lookup and c != 0]
        if unknown:
            c = unknown[0]
            raise VizattnError(f"'{path.name}' has colours that are not in the model's palette (e.g. "
                               f"RGB {(c >> 16) & 255, (c >> 8) & 255, c & 255}); give class-index PNGs instead.")
        arr = np.full(code.shape, IGNORE, np.int64)
        for c in colours.tolist():
            if c in lookup:
                arr[code == c] = lookup[c]
    else:
        arr = raw
        if reduce_zero_label:
            arr = np.where(arr == 0, IGNORE, arr - 1)
            arr[arr == IGNORE - 1] = IGNORE
    big = arr[(arr != IGNORE) & (arr >= len(classes))]
    if big.size:
        raise VizattnError(f"'{path.name}' holds class {int(big.max())}, but the model has {len(classes)} classes; "
                           "give labels in the model's classes (255 = ignore).")
    if arr.shape != tuple(shape):
        arr = np.asarray(Image.fromarray(arr.astype(np.int32)).resize(shape[::-1], Image.NEAREST), np.int64)
    return arr
