"""The one door through which checkpoints and images enter: safe loaders that refuse with one sentence.

Checkpoints are never unpickled with code execution: safetensors first, torch files only through
`torch.load(weights_only=True)`.
"""
from __future__ import annotations

import functools
import hashlib
import io
import json
import pickle
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vizattn.errors import REFUSALS, VizattnError
from vizattn.outputs import read_bounded

if TYPE_CHECKING:  # pragma: no cover
    import torch

MAX_CHECKPOINT_BYTES = 512 * 2**20
MAX_INFLATED_BYTES = 1024 * 2**20  # what a torch archive's entries may add up to once read
MAX_IMAGE_BYTES = 64 * 2**20
MAX_IMAGE_PIXELS = 4096 * 4096  # against decompression bombs
MAX_IMAGE_SIDE = 1024  # images are resized so that their longer side is at most this
MAX_JPEG_SCANS = 64  # progressive JPEGs use about 10; thousands of empty scans cost minutes of CPU
IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "TIFF", "WEBP")  # opened by content: nothing else reaches a decoder
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")


class Content(bytes):
    """Bytes a user gave (an upload) with their name and their sha256, computed once: the app's caches, the
    refusal memory and the model's provenance all key by the same hash."""

    def __new__(cls, data: bytes, name: str | None = None):
        obj = super().__new__(cls, data)
        obj.name = name
        return obj

    @functools.cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self).hexdigest()


def sha256_of(data: bytes) -> str:
    """The sha256 of bytes, once for Content."""
    return data.sha256 if isinstance(data, Content) else hashlib.sha256(data).hexdigest()


def file_sha256(source: str | Path | bytes) -> str:
    """The full sha256 of a file's bytes (read in 1 MiB blocks) or of bytes: what exports and runs name a model
    or an image by."""
    if isinstance(source, (bytes, bytearray)):
        return sha256_of(bytes(source) if isinstance(source, bytearray) else source)
    h = hashlib.sha256()
    with open(source, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_json_object(path: Path, what: str, limit: int = 1 << 20, expected: str = "a JSON object",
                     fix: str = "fix or remove it") -> dict:
    """A small JSON object from `path`: never through a link, only a regular file, no more than `limit` bytes,
    an object at the top; anything else is one sentence naming `what` the file is."""
    data = read_bounded(path, what, limit, fix)
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser goes
        raise VizattnError(f"{what} is not {expected} (not readable JSON, or nested beyond what vizattn reads); "
                           f"{fix}.") from None
    if not isinstance(value, dict):
        raise VizattnError(f"{what} holds a JSON {type(value).__name__}, not {expected}; {fix}.")
    return value


def remember_refusals(read):
    """Refusals of bytes are remembered by content hash (in the one memory, `vizattn.errors.REFUSALS`): the same bad
    bytes (a rerun, a second session) are refused again at once, without being parsed or decoded a second time."""
    @functools.wraps(read)
    def wrapper(source, name=None, *args, **kwargs):
        if not isinstance(source, (bytes, bytearray)):
            return read(source, name, *args, **kwargs)
        key = (read.__name__, sha256_of(source), args, tuple(sorted(kwargs.items())))
        return REFUSALS.run(key, read, source, name, *args, name=name, **kwargs)
    return wrapper


@remember_refusals
def read_checkpoint(source: str | Path | bytes, name: str | None = None) -> tuple[dict[str, torch.Tensor], dict]:
    """(state dict of tensors, metadata) from a .safetensors or torch file (path or bytes)."""
    data, name = _read_bytes(source, name, MAX_CHECKPOINT_BYTES, "checkpoint")
    suffix = Path(name).suffix.lower()
    if suffix == ".safetensors" or (suffix not in TORCH_SUFFIXES and not zipfile.is_zipfile(io.BytesIO(data))):
        state, meta = _read_safetensors(data, name)
    else:
        state, meta = _read_torch(data, name)
    import torch

    odd = [k for k, t in state.items() if t.layout != torch.strided or t.is_meta or t.is_quantized]
    if odd:
        raise VizattnError(f"'{name}' holds tensors that are not plain dense weights (sparse, quantised or without "
                           f"data) in {', '.join(odd[:3])}; save model.state_dict() of an ordinary model.")
    bad = [k for k, t in state.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise VizattnError(f"'{name}' holds non-finite weights (NaN or Inf) in {', '.join(bad[:3])}"
                           f"{f' and {len(bad) - 3} more' if len(bad) > 3 else ''}; a model with them predicts "
                           "nothing meaningful, so it was not loaded.")
    return state, meta


def _read_bytes(source, name, limit, what) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray)):
        data = source if isinstance(source, bytes) else bytes(source)  # never a copy of an upload
        name = name or getattr(source, "name", None) or f"uploaded {what}"
    else:
        path = Path(source)
        name = name or path.name
        if not path.is_file():
            raise VizattnError(f"No {what} file at '{path}'; check the path.")
        if path.stat().st_size > limit:
            raise VizattnError(f"'{name}' is larger than {limit // 2**20} MB; use a smaller {what}.")
        data = path.read_bytes()
    if len(data) > limit:
        raise VizattnError(f"'{name}' is larger than {limit // 2**20} MB; use a smaller {what}.")
    if not data:
        raise VizattnError(f"'{name}' is empty; choose a real {what} file.")
    return data, name


def _read_safetensors(data: bytes, name: str):
    from safetensors import SafetensorError
    from safetensors.torch import load as load_safetensors

    try:
        state = load_safetensors(data)
        header_len = int.from_bytes(data[:8], "little")
        meta = json.loads(data[8 : 8 + header_len]).get("__metadata__", {}) or {}
    except (SafetensorError, ValueError, json.JSONDecodeError, UnicodeDecodeError, OverflowError, MemoryError) as err:
        raise VizattnError(
            f"'{name}' is not a readable safetensors checkpoint (it may be truncated or another format); "
            f"export the weights again as .safetensors or a torch state dict. ({type(err).__name__})"
        ) from None
    return state, meta


def _harmless_globals() -> list:
    """The only globals a checkpoint may name beyond tensors and containers: numpy scalars, dtypes and plain
    arrays, which mmseg writes into `meta` (old checkpoints keep PALETTE as an array). They rebuild numbers and
    nothing else; an array's elements pass through the same restricted unpickler."""
    import importlib

    allowed = [np.dtype, np.ndarray] + [getattr(np.dtypes, n) for n in dir(np.dtypes) if n.endswith("DType")]
    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            found = importlib.import_module(module)
        except ImportError:
            continue
        for name in ("scalar", "_reconstruct"):
            if hasattr(found, name):
                fn = getattr(found, name)
                allowed += [fn, (fn, f"{module}.{name}")]
    return allowed


MAX_META_DEPTH, MAX_META_ITEMS = 12, 20_000


def plain_meta(obj, name: str):
    """Checkpoint metadata as plain JSON-able values (numpy scalars become numbers), bounded in depth and size."""
    budget = [MAX_META_ITEMS]

    def walk(v, depth):
        budget[0] -= 1
        if budget[0] < 0 or depth > MAX_META_DEPTH:
            raise VizattnError(f"'{name}' carries metadata nested or sized beyond what vizattn reads; it was refused.")
        if isinstance(v, np.ndarray):
            if v.dtype.kind not in "biuf" or v.size > budget[0]:
                return None  # only numbers are kept, and no more than the budget
            budget[0] -= v.size
            return [walk(x, depth + 1) for x in v.tolist()] if v.ndim else walk(v.item(), depth)
        if isinstance(v, np.generic):
            v = v.item()
        if v is None or isinstance(v, (bool, int, str)):
            return v
        if isinstance(v, float):
            return v if np.isfinite(v) else None
        if isinstance(v, dict):
            return {str(k): walk(x, depth + 1) for k, x in v.items() if type(x).__name__ != "Tensor"}
        if isinstance(v, (list, tuple)):
            return [walk(x, depth + 1) for x in v]
        return None  # dtypes and anything else a reader has no use for

    return walk(obj, 0)


def _check_archive(data: bytes, name: str) -> None:
    """A torch zip's directory, read before torch.load: torch writes its entries uncompressed, so a compressed
    entry (which could inflate far beyond the file) or entries adding up past the limit are refused."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        return  # not a readable zip: torch.load says so below
    if len(entries) > 100_000 or any(e.compress_type != zipfile.ZIP_STORED for e in entries):
        raise VizattnError(f"'{name}' is an archive with compressed or countless entries, which torch.save never "
                           "writes; it was not read. Save the weights again with torch.save or as .safetensors.")
    total = sum(e.file_size for e in entries)
    if total > MAX_INFLATED_BYTES:
        raise VizattnError(f"'{name}' holds {total / 2**20:,.0f} MB once read, over the {MAX_INFLATED_BYTES // 2**20} MB "
                           "vizattn reads; use a smaller checkpoint.")


def _read_torch(data: bytes, name: str):
    import torch

    _check_archive(data, name)
    try:
        with torch.serialization.safe_globals(_harmless_globals()):
            obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise VizattnError(
            f"'{name}' holds Python objects that would run code when unpickled; it was refused and nothing in it "
            "was executed. Save a plain state dict (torch.save(model.state_dict())) or use .safetensors."
        ) from None
    except Exception as err:  # torch raises many types for corrupt zips/pickles; all mean the same to a user
        raise VizattnError(
            f"'{name}' is not a readable torch checkpoint (it may be truncated or another format); "
            f"save it again with torch.save(model.state_dict()). ({type(err).__name__})"
        ) from None
    meta = {}
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        meta = plain_meta({k: v for k, v in obj.items() if k not in ("state_dict", "optimizer")}, name)
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise VizattnError(f"'{name}' does not contain a state dict of tensors; save model.state_dict() instead.")
    if isinstance(meta.get("vizattn_config"), dict):
        meta["vizattn_config"] = json.dumps(meta["vizattn_config"])
    return obj, meta


def check_fits(model: torch.nn.Module, state: dict[str, torch.Tensor], name: str) -> None:
    """Raise one error listing missing keys, unexpected keys and shape mismatches (never a silent strict=False)."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = sorted(
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in set(own) & set(state)
        if state[k].shape != own[k].shape
    )
    if missing or unexpected or mismatched:
        parts = []
        for label, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", mismatched)):
            if keys:
                shown = ", ".join(keys[:8]) + (f", … ({len(keys)} in all)" if len(keys) > 8 else "")
                parts.append(f"{label}: {shown}")
        raise VizattnError(
            f"'{name}' does not fit the {getattr(model, 'config', None) and model.config.head} architecture — "
            + "; ".join(parts) + ". Choose the matching head or a checkpoint trained by vizattn."
        )


def image_files(folder: str | Path) -> list[Path]:
    """The images of a folder (by suffix, sorted), or one sentence when it has none."""
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []
    if not files:
        raise VizattnError(f"No PNG/JPEG/BMP/TIFF/WebP images in '{folder}'; point --images at a folder of images.")
    return files


@remember_refusals
def read_image(source: str | Path | bytes, name: str | None = None, max_side: int = MAX_IMAGE_SIDE) -> np.ndarray:
    """An H×W×3 uint8 RGB array from PNG/JPEG/BMP/TIFF/WebP bytes or a path, any mode, EXIF-rotated,
    shrunk so that its longer side is at most max_side. The format is told by content and only these five are
    opened (an EPS or PostScript file named .png never reaches Ghostscript); decoding work is bounded by pixels
    and, for progressive JPEGs, by their number of scans."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    data, name = _read_bytes(source, name, MAX_IMAGE_BYTES, "image")
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as im:
            if im.width * im.height > MAX_IMAGE_PIXELS:
                raise Image.DecompressionBombError("too many pixels")
            # in JPEG's entropy-coded data every 0xFF is followed by 0x00, so FF DA only ever starts a scan
            scans = data.count(b"\xff\xda") if im.format == "JPEG" else 0
            if scans > MAX_JPEG_SCANS:
                raise VizattnError(f"'{name}' is a JPEG with {scans:,} scans (progressive JPEGs "
                                   f"have about 10; vizattn decodes at most {MAX_JPEG_SCANS}); save it again as a "
                                   "baseline JPEG or PNG.")
            im = ImageOps.exif_transpose(im)
            im = _to_rgb(im)
            if max(im.size) > max_side:
                scale = max_side / max(im.size)
                im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.BILINEAR)
            return np.asarray(im, dtype=np.uint8).copy()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise VizattnError(
            f"'{name}' has more than {MAX_IMAGE_PIXELS:,} pixels (a possible decompression bomb); use a smaller image."
        ) from None
    except VizattnError:
        raise
    except UnidentifiedImageError:
        raise VizattnError(f"'{name}' is not a PNG, JPEG, BMP, TIFF or WebP image (told by its content, not its "
                           "name); convert it to one of these.") from None
    except Exception as err:  # PIL raises many types for bad bytes; all mean the same to a user
        raise VizattnError(
            f"'{name}' is not a readable image (it may be truncated or not an image); use a PNG, JPEG, BMP, TIFF "
            f"or WebP file. ({type(err).__name__})"
        ) from None


LABEL_FORMATS = ("PNG",)  # labels are PNG only, told by content: nothing else reaches a decoder
_EXIF_TURNS = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE", 6: "ROTATE_270",
               7: "TRANSVERSE", 8: "ROTATE_90"}  # as PIL's ImageOps.exif_transpose turns each orientation


def _open_bounded(data: bytes, name: str, formats: tuple[str, ...], what: str):
    """A PIL image opened by content among `formats` only, refused past MAX_IMAGE_PIXELS."""
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        im = Image.open(io.BytesIO(data), formats=formats)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise VizattnError(f"'{name}' has more than {MAX_IMAGE_PIXELS:,} pixels (a possible decompression bomb); "
                           f"use a smaller {what}.") from None
    except UnidentifiedImageError:
        kinds = " or ".join(formats) if len(formats) < 3 else "PNG, JPEG, BMP, TIFF or WebP"
        raise VizattnError(f"'{name}' is not a {kinds} file (told by its content, not its name); give a {kinds} "
                           f"{what}.") from None
    except Exception as err:  # PIL raises many types for bad bytes
        raise VizattnError(f"'{name}' is not a readable {what} (it may be truncated); save it again. "
                           f"({type(err).__name__})") from None
    if im.width * im.height > MAX_IMAGE_PIXELS:
        im.close()
        raise VizattnError(f"'{name}' has more than {MAX_IMAGE_PIXELS:,} pixels (a possible decompression bomb); "
                           f"use a smaller {what}.")
    return im


def image_geometry(source: str | Path | bytes, name: str | None = None) -> tuple[int, int, int]:
    """(stored height, stored width, EXIF orientation 1…8) of an image, read from its header only: what a label
    drawn on the stored pixels must match, and how `read_image` will turn it."""
    data, name = _read_bytes(source, name, MAX_IMAGE_BYTES, "image")
    with _open_bounded(data, name, IMAGE_FORMATS, "image") as im:
        return im.height, im.width, _orientation(im)


def _orientation(im) -> int:
    try:
        value = int(im.getexif().get(0x0112, 1))
    except Exception:  # an unreadable EXIF block turns nothing, as ImageOps.exif_transpose treats it
        return 1
    return value if value in _EXIF_TURNS else 1


def read_label(source: str | Path | bytes, name: str | None = None, orientation: int = 1) -> np.ndarray:
    """A label PNG as H×W int64 values (1-bit, 8-bit, 16-bit or palette indices) or H×W×3 uint8 colours.
    PNG only, told by content (an EPS named .png never reaches Ghostscript), bounded like images. Labels are
    drawn on their image's stored pixels, so they are turned by the image's EXIF `orientation`, as `read_image`
    turns the image; a label that carries an orientation of its own is refused rather than guessed."""
    from PIL import Image

    data, name = _read_bytes(source, name, MAX_IMAGE_BYTES, "label")
    with _open_bounded(data, name, LABEL_FORMATS, "label") as lab:
        if _orientation(lab) != 1:
            raise VizattnError(f"'{name}' carries an EXIF orientation of its own; save the label without one, "
                               "drawn on its image's stored pixels.")
        if orientation in _EXIF_TURNS:
            lab = lab.transpose(getattr(Image.Transpose, _EXIF_TURNS[orientation]))
        try:
            if lab.mode in ("RGB", "RGBA"):
                return np.asarray(lab.convert("RGB"), np.uint8).copy()
            if lab.mode == "1":  # 1-bit: 0 and 1, not PIL's 0 and 255 of convert("L")
                return np.asarray(lab, bool).astype(np.int64)
            if lab.mode in ("L", "P"):
                return np.asarray(lab, np.int64)
            if lab.mode.startswith("I"):
                return np.asarray(lab.convert("I"), np.int64)
        except Exception as err:  # truncated pixel data surfaces on the first read
            raise VizattnError(f"'{name}' is not a readable label PNG (it may be truncated); save it again. "
                               f"({type(err).__name__})") from None
    raise VizattnError(f"'{name}' is a {lab.mode} PNG; labels are PNGs of class indices (1-, 8- or 16-bit grey, or "
                       "palette) or of the model's palette colours.")


def _to_rgb(im):
    from PIL import Image

    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # high bit depth grey: rescale to 8 bits
        arr = np.asarray(im, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo or 1.0) * 255.0
        im = Image.fromarray(arr.astype(np.uint8), "L")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, im)
    return im.convert("RGB")
