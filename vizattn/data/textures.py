"""Procedural noise fields, material colours and lighting for the synthetic street scenes.
Every function takes an explicit ``np.random.Generator`` so a scene is a pure function of its seed."""

from __future__ import annotations

import colorsys

import numpy as np

# Value-noise octaves as (cell size in px at 256-px image height, weight).
ASPHALT_OCTAVES: tuple[tuple[float, float], ...] = ((1.5, 0.55), (4.0, 0.35), (12.0, 0.3))
FOLIAGE_OCTAVES: tuple[tuple[float, float], ...] = ((2.0, 0.6), (4.5, 0.55), (10.0, 0.35))
LOW_OCTAVES: tuple[tuple[float, float], ...] = ((40.0, 0.7), (100.0, 0.5))

# Shading amplitudes (multiplicative, around 1).
ASPHALT_GRAIN = 0.13
ASPHALT_STAIN = 0.07
FOLIAGE_CONTRAST = 0.42
SURFACE_GRAIN = 0.04
SURFACE_STAIN = 0.03

# Shared material-tint distributions: the two classes of an ambiguous pair draw from the SAME one.
ASPHALT_LIGHTNESS = (85.0, 140.0)
ASPHALT_WARMTH = 0.05  # max relative R-vs-B shift
FOLIAGE_HUE = (0.17, 0.33)  # yellow-green .. green, as colorsys hue
FOLIAGE_SAT = (0.35, 0.7)
FOLIAGE_VAL = (0.3, 0.58)

# Global lighting.
BRIGHTNESS = (0.8, 1.15)
CONTRAST = (0.85, 1.15)
CONTRAST_PIVOT = 120.0
GRADIENT_STRENGTH = (0.0, 0.3)  # total relative change across the image diagonal
ILLUMINATION_BLOTCH = 0.06
PIXEL_NOISE_STD = 2.5
MIN_CELL_PX = 1.0  # finer lattices are indistinguishable from white noise but cost more


def _smoothstep(t: np.ndarray) -> np.ndarray:
    return t * t * (3.0 - 2.0 * t)


def value_noise(rng: np.random.Generator, shape: tuple[int, int], cell: float) -> np.ndarray:
    """Smooth lattice noise in [-1, 1] with one random value per ``cell`` px, float32 (H, W).

    Separable interpolation (rows then columns) is O(H*W), much cheaper than a dense resize.
    """
    h, w = shape
    cell = max(cell, MIN_CELL_PX)
    gh, gw = int(np.ceil(h / cell)) + 2, int(np.ceil(w / cell)) + 2
    grid = rng.random((gh, gw), dtype=np.float32) * 2.0 - 1.0
    # A random sub-cell phase keeps the lattice from aligning with pixel (0, 0) in every scene.
    ty = np.arange(h, dtype=np.float32) / cell + rng.random(dtype=np.float32)
    tx = np.arange(w, dtype=np.float32) / cell + rng.random(dtype=np.float32)
    iy, ix = ty.astype(np.intp), tx.astype(np.intp)
    fy, fx = _smoothstep(ty - iy)[:, None], _smoothstep(tx - ix)[None, :]
    # np.take is an order of magnitude faster than fancy indexing along axis 1.
    rows = np.take(grid, iy, axis=0)
    rows += (np.take(grid, iy + 1, axis=0) - rows) * fy
    out = np.take(rows, ix, axis=1)
    out += (np.take(rows, ix + 1, axis=1) - out) * fx
    return out


def fractal_noise(
    rng: np.random.Generator,
    shape: tuple[int, int],
    octaves: tuple[tuple[float, float], ...],
    scale: float,
) -> np.ndarray:
    """Weighted sum of value-noise octaves; cell sizes are multiplied by ``scale`` (image height / 256)."""
    out = np.zeros(shape, np.float32)
    for cell, weight in octaves:
        out += weight * value_noise(rng, shape, cell * scale)
    return out


class Fields:
    """The per-scene shading fields (float32, H x W, around 1.0) that every surface samples.

    Road and sidewalk read the same ``asphalt`` field, vegetation and terrain the same ``foliage``
    field, so within a pair only the per-scene tint differs.
    """

    def __init__(self, rng: np.random.Generator, shape: tuple[int, int], scale: float):
        grain = fractal_noise(rng, shape, ASPHALT_OCTAVES, scale)
        self.low = fractal_noise(rng, shape, LOW_OCTAVES, scale)
        self.asphalt = 1.0 + ASPHALT_GRAIN * grain + ASPHALT_STAIN * self.low
        leaves = fractal_noise(rng, shape, FOLIAGE_OCTAVES, scale)
        # exp() gives bright leaf clusters and deep dark gaps, the look of foliage rather than stone.
        self.foliage = np.exp(FOLIAGE_CONTRAST * leaves) + ASPHALT_STAIN * self.low
        self.surface = 1.0 + SURFACE_GRAIN * grain + SURFACE_STAIN * self.low


def hsv(h: float, s: float, v: float) -> np.ndarray:
    """HSV in [0, 1] -> RGB float32 in [0, 255]."""
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), np.float32) * 255.0


def asphalt_tint(rng: np.random.Generator) -> np.ndarray:
    """One draw of the asphalt material colour; road and sidewalk each get an independent draw."""
    lightness = rng.uniform(*ASPHALT_LIGHTNESS)
    warmth = rng.uniform(-1.0, 1.0) * ASPHALT_WARMTH
    jitter = rng.normal(0.0, 0.015, 3)
    return (lightness * (1.0 + warmth * np.array([1.0, 0.0, -1.0]) + jitter)).astype(np.float32)


def foliage_tint(rng: np.random.Generator) -> np.ndarray:
    """One draw of the foliage colour; vegetation and terrain each get an independent draw."""
    return hsv(rng.uniform(*FOLIAGE_HUE), rng.uniform(*FOLIAGE_SAT), rng.uniform(*FOLIAGE_VAL))


# (hue range, saturation range, value range) of facade paint families: plaster, brick, stone, etc.
_FACADE_FAMILIES = (
    ((0.07, 0.13), (0.15, 0.35), (0.7, 0.9)),  # beige / cream
    ((0.0, 0.05), (0.45, 0.65), (0.45, 0.65)),  # brick
    ((0.08, 0.12), (0.45, 0.7), (0.65, 0.85)),  # ochre
    ((0.55, 0.62), (0.1, 0.25), (0.6, 0.8)),  # pale blue-grey
    ((0.0, 1.0), (0.0, 0.06), (0.75, 0.92)),  # off-white
    ((0.95, 1.0), (0.2, 0.4), (0.6, 0.8)),  # pink
)


def facade_colour(rng: np.random.Generator) -> np.ndarray:
    hr, sr, vr = _FACADE_FAMILIES[rng.integers(len(_FACADE_FAMILIES))]
    return hsv(rng.uniform(*hr), rng.uniform(*sr), rng.uniform(*vr))


def car_colour(rng: np.random.Generator) -> np.ndarray:
    if rng.random() < 0.45:  # white / silver / black cars are the common ones
        grey = rng.choice([30.0, 60.0, 170.0, 215.0, 235.0])
        return (grey + rng.normal(0, 4, 3)).astype(np.float32)
    return hsv(rng.random(), rng.uniform(0.5, 0.9), rng.uniform(0.35, 0.85))


def cloth_colour(rng: np.random.Generator) -> np.ndarray:
    return hsv(rng.random(), rng.uniform(0.0, 0.8), rng.uniform(0.1, 0.85))


def skin_colour(rng: np.random.Generator) -> np.ndarray:
    return hsv(rng.uniform(0.04, 0.09), rng.uniform(0.3, 0.6), rng.uniform(0.35, 0.95))


def sky_image(rng: np.random.Generator, horizon: int, low: np.ndarray) -> np.ndarray:
    """Sky for rows [0, horizon): a gradient from a deep zenith colour to a pale horizon, with
    clouds where the low-frequency field ``low`` (H, W) is high.  Returns float32 (horizon, W, 3)."""
    low = low[:horizon]
    overcast = rng.random() < 0.3
    sat = rng.uniform(0.0, 0.12) if overcast else rng.uniform(0.3, 0.6)
    zenith = hsv(rng.uniform(0.55, 0.62), sat, rng.uniform(0.65, 0.85))
    horizon_col = hsv(rng.uniform(0.55, 0.62), sat * 0.4, rng.uniform(0.85, 0.97))
    t = (np.arange(horizon, dtype=np.float32) / max(horizon, 1))[:, None, None]
    sky = zenith * (1.0 - t) + horizon_col * t
    # Clouds: soft white where the low-frequency field is high.
    cover = np.clip((low - rng.uniform(0.0, 0.5)) * 2.0, 0.0, 1.0)[..., None]
    return sky * (1.0 - cover) + np.float32(235.0) * cover


def apply_lighting(rng: np.random.Generator, img: np.ndarray, low: np.ndarray) -> np.ndarray:
    """Global brightness/contrast, a linear illumination gradient in a random direction, soft
    illumination blotches and per-pixel sensor noise; returns uint8.

    The gradient direction is uniform over the circle so, across the dataset, it does not favour
    the classes that tend to sit higher or lower in the frame.
    """
    h, w = low.shape
    angle = rng.uniform(0.0, 2.0 * np.pi)
    strength = rng.uniform(*GRADIENT_STRENGTH)
    yy = (np.arange(h, dtype=np.float32) - h / 2)[:, None]
    xx = (np.arange(w, dtype=np.float32) - w / 2)[None, :]
    # Python floats (not np.float64) keep the arithmetic in float32.
    ramp = (float(np.cos(angle)) * xx + float(np.sin(angle)) * yy) * float(strength / np.hypot(h, w))
    contrast = rng.uniform(*CONTRAST)
    # (img * gain - pivot) * contrast + pivot, folded into one multiply and one add.
    gain = (rng.uniform(*BRIGHTNESS) * contrast) * (1.0 + ramp + ILLUMINATION_BLOTCH * low)
    # Uniform sensor noise (cheaper to draw than Gaussian) with std PIXEL_NOISE_STD.
    half_width = np.float32(PIXEL_NOISE_STD * np.sqrt(3.0))
    offset = rng.random(img.shape, dtype=np.float32) * (2 * half_width)
    offset += np.float32(CONTRAST_PIVOT * (1.0 - contrast)) - half_width
    out = img * gain[..., None]
    out += offset
    np.clip(out, 0.0, 255.0, out=out)
    return out.astype(np.uint8)
