"""Where an image comes from: a generated scene (with its ground truth) or a file through the safe reader, and
the content hashes caches know images and checkpoints by. Light: no PyTorch until a file is read."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from vizattn.errors import VizattnError
from vizattn.io import file_sha256  # noqa: F401 (re-exported: the zoo names models by it)

DEFAULT_SCENE_SIZE = 384


def digest(data: bytes) -> str:
    """A short content hash: what caches know images and uploaded checkpoints by."""
    return hashlib.sha256(data).hexdigest()[:16]


@dataclass
class ImageSource:
    image: np.ndarray
    name: str  # short, file-name safe
    labels: np.ndarray | None = None  # ground truth, for generated scenes
    instances: np.ndarray | None = None

    @cached_property
    def key(self) -> str:
        """What caches know the image by: a hash of its pixels and its shape, computed once per source."""
        return digest(self.image.tobytes()) + str(self.image.shape)


def image_source(spec: str, size: int = DEFAULT_SCENE_SIZE) -> ImageSource:
    """`scene:SEED` for a generated scene (with ground truth), else an image file through the safe reader."""
    if spec.startswith("scene:"):
        from vizattn.data import generate_scene

        try:
            seed = int(spec.split(":", 1)[1])
        except ValueError:
            seed = -1
        if not 0 <= seed < 2**32:
            raise VizattnError(f"'{spec}' is not scene:SEED with a seed 0..4294967295, e.g. scene:7.") from None
        s = generate_scene(seed, (size, size))
        return ImageSource(s.image, f"scene{seed}", s.labels, s.instances)
    from vizattn.io import read_image

    return ImageSource(read_image(spec), safe_name(Path(spec).stem))


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")[:40] or "image"
