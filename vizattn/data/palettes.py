"""Class names and colours of the usual segmentation data sets (Cityscapes, PASCAL VOC, ADE20K), and how a
checkpoint's own names and palette are read or, failing that, assumed from its number of classes."""
from __future__ import annotations

import colorsys

from vizattn.text import plain

CITYSCAPES = ("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
              "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle")
CITYSCAPES_PALETTE = ((128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153), (153, 153, 153),
                      (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60),
                      (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32))
VOC = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
       "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor")


def voc_palette(n: int) -> list[tuple[int, int, int]]:
    """The PASCAL VOC colour map (bit-interleaved label index)."""
    out = []
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        out.append((r, g, b))
    return out


def spread_palette(n: int) -> list[tuple[int, int, int]]:
    """n distinct colours for classes without a palette: golden-angle hues at two lightnesses."""
    return [tuple(int(255 * v) for v in colorsys.hls_to_rgb((i * 0.618034) % 1.0, 0.45 + 0.2 * (i % 2), 0.75))
            for i in range(n)]


def classes_and_palette(meta: dict, num_classes: int) -> tuple[list[str], list[tuple], str]:
    """(class names, palette, where they came from): the checkpoint's own (1.x dataset_meta, 0.x CLASSES/PALETTE),
    else the usual data set with that many classes, else numbered classes."""
    dm = meta.get("dataset_meta") if isinstance(meta.get("dataset_meta"), dict) else {}
    names = dm.get("classes") or meta.get("CLASSES")
    palette = dm.get("palette") or meta.get("PALETTE")
    if isinstance(names, (list, tuple)) and len(names) == num_classes and all(isinstance(c, str) for c in names):
        ok = (isinstance(palette, (list, tuple)) and len(palette) == num_classes
              and all(isinstance(p, (list, tuple)) and len(p) == 3 for p in palette)
              and all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 255
                      for p in palette for v in p))  # NaN fails the range too
        pal = [tuple(int(v) for v in p) for p in palette] if ok else spread_palette(num_classes)
        return [plain(c, 60) for c in names], pal, "the checkpoint"
    if num_classes == 19:
        return list(CITYSCAPES), list(CITYSCAPES_PALETTE), "Cityscapes (assumed from 19 classes; the checkpoint names none)"
    if num_classes == 21:
        return list(VOC), voc_palette(21), "PASCAL VOC (assumed from 21 classes; the checkpoint names none)"
    if num_classes == 150:
        return ([f"ADE20K class {i}" for i in range(150)], spread_palette(150),
                "ADE20K (assumed from 150 classes; the checkpoint names none, so classes are numbered)")
    return [f"class {i}" for i in range(num_classes)], spread_palette(num_classes), "numbered (the checkpoint names none)"
