"""The page's helpers that need no streamlit: what a click value means, the layout's CSS, the confidence image,
the analysis tables' rows and the sidebar's line about a loaded model. Unit-tested in tests/app/test_pure.py."""
from __future__ import annotations

import math

import numpy as np

from vizattn.errors import VizattnError
from vizattn.statnames import ANALYSIS_COLUMNS, WHERE_COLUMNS  # noqa: F401 (WHERE_COLUMNS: the page's tables)


def confidence_image(confidence: np.ndarray) -> np.ndarray:
    """The max class probability per pixel as an RGB image (magma, 0 black … 1 bright), on an absolute scale."""
    import matplotlib

    return (matplotlib.colormaps["magma"](np.clip(confidence, 0.0, 1.0))[..., :3] * 255).astype(np.uint8)


def click_pixel(click, displayed: bool, shape) -> tuple[int, int]:
    """(y, x) from a value a component sent back, validated like any input: a dict of finite numbers inside the
    image. `displayed`: the clickable image's coordinates, scaled from its displayed size; else image pixels."""
    from vizattn.explore import check_pixel

    h, w = shape
    try:
        y, x = float(click["y"]), float(click["x"])
        dh, dw = (float(click.get("height") or h), float(click.get("width") or w)) if displayed else (h, w)
        if not all(math.isfinite(v) for v in (y, x, dh, dw)) or dh <= 0 or dw <= 0:
            raise ValueError
        py, px = int(y * h / dh), int(x * w / dw)
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError):
        raise VizattnError("The click came back without a usable position; click on the image again.") from None
    return check_pixel(py, px, (h, w))


def domain_warning(scene_models: list[str] | None = None) -> str:
    """The one sentence the page and the CLI say for a photograph (an image without a generated scene's labels)
    through models trained only on generated scenes (`provenance.scene_trained`); the CLI names them."""
    many = len(scene_models or []) > 1
    who = f"{', '.join(scene_models)} {'were' if many else 'was'}" if scene_models else "This model was"
    return (f"{who} trained only on vizattn's generated street scenes (9 classes) and {'have' if many else 'has'} "
            "never seen a photograph: on "
            "this image predictions and attention describe the model, not the photo. Load a model trained on real "
            "images (an mmseg checkpoint, a transformers folder) to study those.")


def side_by_side_css(aspect: float, share: float = 0.32, top_px: int = 200, image_key: str = "image_click") -> str:
    """CSS for the row of the clickable image (left) and the open tab (right): the image's column takes at most
    `share` of the row and at most the width of an image of this aspect (width / height) that fits the window's
    height below `top_px`; the tab takes the rest. Narrow windows (Streamlit stacks columns under 640 px) are left
    alone."""
    row = f"[data-testid='stHorizontalBlock']:has(> [data-testid='stColumn'] .st-key-{image_key})"  # the image's row
    width = f"min(calc({100 * float(share):.1f}% - 1rem), calc((100vh - {int(top_px)}px) * {float(aspect):.4f}))"
    return (f"@media (min-width: 640px) {{ {row} > [data-testid='stColumn']:first-child "
            f"{{ flex: 0 0 {width} !important; min-width: 0; }} "
            f"{row} > [data-testid='stColumn']:last-child {{ flex: 1 1 0 !important; min-width: 0; }} }}")


def stepped_pixel(pixel: tuple[int, int], dy: int, dx: int, shape) -> tuple[int, int]:
    """The pixel moved by (dy, dx), kept inside the image."""
    (y, x), (h, w) = pixel, shape
    return min(h - 1, max(0, y + dy)), min(w - 1, max(0, x + dx))


def has_truth(labels, classes, scene_classes) -> bool:
    """Whether an image's labels can be read in the model's classes: generated scenes carry the scenes' own."""
    return labels is not None and list(classes) == list(scene_classes)


def _module(label: str, names: dict[str, str]) -> str:
    """The module a summary's label stands for ("model", "model:context" -> its module's name), else the label."""
    return names.get(label, label)


def analysis_rows(numbers: dict, names: dict[str, str] | None = None, coverage_module: str | None = None) -> list[dict]:
    """One table row per module from `vizattn.analysis.summary.sections`: GCNet's query independence, the
    unary/binary shares, and the loops' coverage (of `coverage_module`, the module that has loops). `names` maps
    the summary's labels (`module_label`) to the modules' own names, which the rows say."""
    names = names or {}
    rows = {}

    def row(label: str) -> dict:
        module = _module(label, names)
        return rows.setdefault(module, {"module": module})

    for label, v in numbers["query_independence"].items():
        row(label)[ANALYSIS_COLUMNS["query_independence"]] = v.get("attention")
    for label, v in numbers["unary_binary"].items():
        row(label.split(" (")[0])[ANALYSIS_COLUMNS["gate" if "gate" in label else "self"]] = v.get("unary")
    for k, v in numbers.get("coverage", {}).items():
        row(coverage_module or "model")[ANALYSIS_COLUMNS.get(k, f"coverage {k}")] = v
    return list(rows.values())


def where_rows(where: dict, names: dict[str, str] | None = None) -> list[dict]:
    """One row per (module, query class) of `sections(...)["where"]`, with a reader's headers; every row has the
    same columns in the same order (empty where a class has none, e.g. no objects in the sky)."""
    names = names or {}
    tables = [(label, cls, values) for label, table in where.items() for cls, values in table.items()]
    present = {k for _, _, values in tables for k in values}
    keys = [k for k in WHERE_COLUMNS if k in present] + sorted(present - set(WHERE_COLUMNS))
    return [{"module": _module(label, names), "query class": cls, **{WHERE_COLUMNS.get(k, k): values.get(k) for k in keys}}
            for label, cls, values in tables]


def provenance_line(provenance, n_classes: int) -> str:
    """One plain line about a loaded model (not yet markdown-escaped: the caller escapes it): its architecture,
    how that was told, where its classes came from and the first 12 hex digits of its weights' sha256."""
    parts = [provenance.architecture or provenance.name]
    if provenance.detected:
        parts.append(f"told by {provenance.detected}")
    parts.append(f"{n_classes} classes" + (f" from {provenance.classes_from}" if provenance.classes_from else ""))
    if provenance.sha256:
        parts.append(f"sha256 {provenance.sha256[:12]}")
    return " · ".join(parts)


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def is_loopback_request(host, origin) -> bool:
    """Whether a request's Host (required) and Origin (when the browser sends one) both name this machine."""
    from urllib.parse import urlsplit

    def name(netloc: str) -> str:
        try:
            parts = urlsplit(f"//{netloc}")
            parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
            return (parts.hostname or "").lower()
        except ValueError:  # a malformed port or bracket
            return ""

    if not host or name(str(host)) not in LOOPBACK:
        return False
    if origin in (None, ""):
        return True
    try:
        parts = urlsplit(str(origin))
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
        return parts.scheme in ("http", "https") and (parts.hostname or "").lower() in LOOPBACK
    except ValueError:
        return False
