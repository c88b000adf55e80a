"""Procedural street scenes for semantic segmentation in which road/sidewalk and vegetation/terrain
look identical locally, so telling them apart needs context from far across the image."""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable, Iterable

import numpy as np

from . import textures as tx

CLASSES: tuple[str, ...] = (
    "sky", "building", "road", "sidewalk", "vegetation", "terrain", "car", "person", "pole",
)
# Cityscapes colours for display.
PALETTE: np.ndarray = np.array(
    [
        [70, 130, 180], [70, 70, 70], [128, 64, 128], [244, 35, 232], [107, 142, 35],
        [152, 251, 152], [0, 0, 142], [220, 20, 60], [153, 153, 153],
    ],
    np.uint8,
)
AMBIGUOUS_PAIRS: tuple[tuple[str, str], ...] = (("road", "sidewalk"), ("vegetation", "terrain"))
THING_CLASSES: tuple[str, ...] = ("car", "person", "pole")
IGNORE_INDEX = 255

SKY, BUILDING, ROAD, SIDEWALK, VEGETATION, TERRAIN, CAR, PERSON, POLE = range(len(CLASSES))

# ---- geometry, in px at an image height of 256 (everything is scaled by height / 256) ----
REF_HEIGHT = 256.0
GROUND_SHARE = (0.5, 0.75)  # fraction of the image height taken by the ground bands
BUILDING_TOP_SHARE = (0.04, 0.3)  # building tops, as a fraction of the height
MIN_BUILDING_HEIGHT_SHARE = 0.1
BUILDING_WIDTH = (40.0, 110.0)
BAND_HEIGHT = {ROAD: (60.0, 110.0), SIDEWALK: (35.0, 70.0), TERRAIN: (30.0, 60.0)}
LAST_BAND_MIN_VISIBLE = 0.6  # the nearest band may be cut by the bottom of the frame
# Ground band orders, far (top) to near (bottom).
TEMPLATES: tuple[tuple[int, ...], ...] = (
    (SIDEWALK, ROAD, SIDEWALK),
    (SIDEWALK, ROAD, TERRAIN),
    (TERRAIN, SIDEWALK, ROAD, SIDEWALK),
    (SIDEWALK, ROAD),
    (SIDEWALK, TERRAIN, ROAD, SIDEWALK),
    (TERRAIN, ROAD, SIDEWALK),
)
CURB_PROB = 0.5
CURB_WIDTH = 2.0
# A green ground band is a lawn (terrain) or, as often, a bed of low bushes (vegetation) of the same
# foliage texture: only the tint shared with distant tree crowns (vegetation) or lawn patches (terrain)
# tells them apart, as the tint shared with distant cars tells road from sidewalk.
BUSH_BED_PROB = 0.5
GRASS_PATCH_PROB = 0.75  # lawn patch inside a sidewalk when the template has no terrain band
GRASS_PATCH_WIDTH = (45.0, 110.0)
LANE_MARK_PROB = 0.5
DASH_LENGTH, DASH_GAP, DASH_WIDTH = (14.0, 24.0), (14.0, 30.0), 2.5

CAR_COUNT, PERSON_COUNT, POLE_COUNT, TREE_COUNT, HEDGE_COUNT = (2, 5), (2, 6), (1, 4), (0, 3), (0, 2)
TREE_PROB = 0.85  # else no tree at all
CAR_WIDTH = (50.0, 80.0)
CAR_SPREAD, PERSON_SPREAD = 45.0, 25.0  # std of x around a group centre
PERSON_HEIGHT = (36.0, 54.0)
POLE_HEIGHT = (60.0, 110.0)
CROWN_RADIUS = (25.0, 50.0)
TRUNK_HALF_WIDTH = (2.0, 3.5)
HEDGE_HEIGHT, HEDGE_WIDTH = (14.0, 30.0), (40.0, 110.0)
HEDGE_BUMP_FREQ = (0.15, 0.35)  # rad / px along the hedge top
HEDGE_FOOT_DEPTH = (1.0, 5.0)  # below the ground line
CORNICE_HEIGHT = 2.0
WINDOW_CELL_Y, WINDOW_CELL_X, WINDOW_MARGIN = (14.0, 22.0), (12.0, 22.0), 4.0
POLE_HALF_WIDTH, SIGN_RADIUS, LAMP_ARM = (1.2, 2.0), (5.0, 8.0), (8.0, 16.0)
TRAFFIC_LIGHT_HALF_WIDTH, TRAFFIC_LIGHT_HEIGHT = 4.0, 12.0
# Inside the _draw_* functions, bare fractions are shape proportions relative to the object's own
# size (e.g. wheel radius = 0.17 x car height); they are not scene-level tunables.


@dataclass(frozen=True)
class Scene:
    """One generated scene.

    image: (H, W, 3) uint8.  labels: (H, W) uint8 index into CLASSES (never IGNORE_INDEX).
    instances: (H, W) int32, a unique id > 0 per visible car/person/pole instance and 0 for all
    stuff classes (sky, building, road, sidewalk, vegetation, terrain).  seed: the generator seed.
    """

    image: np.ndarray
    labels: np.ndarray
    instances: np.ndarray
    seed: int


class _Canvas:
    """Image, label and instance buffers plus the per-scene shading fields."""

    def __init__(self, shape: tuple[int, int], fields: tx.Fields, img: np.ndarray,
                 texture_rng: np.random.Generator):
        self.h, self.w = shape
        self.fields = fields
        self.texture_rng = texture_rng  # for draws whose count depends on the image size
        self.img = img
        self.labels = np.full(shape, SKY, np.uint8)
        self.inst = np.zeros(shape, np.int32)

    def box(self, y0: float, y1: float, x0: float, x1: float):
        """Clip a box to the frame; return (slices, yy, xx absolute pixel-centre coords) or None."""
        iy0, iy1 = max(int(np.floor(y0)), 0), min(int(np.ceil(y1)), self.h)
        ix0, ix1 = max(int(np.floor(x0)), 0), min(int(np.ceil(x1)), self.w)
        if iy0 >= iy1 or ix0 >= ix1:
            return None
        yy = np.arange(iy0, iy1, dtype=np.float32)[:, None] + 0.5
        xx = np.arange(ix0, ix1, dtype=np.float32)[None, :] + 0.5
        return (slice(iy0, iy1), slice(ix0, ix1)), yy, xx

    def paint(self, sl, mask, rgb: np.ndarray, label: int, inst: int = 0, shade: np.ndarray | None = None):
        """Paint ``rgb`` modulated by a shading field (default: generic surface) where mask is set."""
        shade = self.fields.surface if shade is None else shade
        if mask is None:  # whole box
            self.img[sl] = rgb * shade[sl][..., None]
            self.labels[sl] = label
            self.inst[sl] = inst
            return
        self.img[sl][mask] = rgb * shade[sl][mask][:, None]
        self.labels[sl][mask] = label
        self.inst[sl][mask] = inst

    def shape_(self, y0, y1, x0, x1, fn: Callable, rgb, label, inst=0, shade=None):
        """Paint the pixels of box (y0, y1, x0, x1) where ``fn(yy, xx)`` is True."""
        b = self.box(y0, y1, x0, x1)
        if b is not None:
            sl, yy, xx = b
            self.paint(sl, fn(yy, xx), rgb, label, inst, shade)

    def rect(self, y0, y1, x0, x1, rgb, label, inst=0, shade=None):
        b = self.box(y0, y1, x0, x1)
        if b is not None:
            self.paint(b[0], None, rgb, label, inst, shade)

    def ellipse(self, cy, cx, ry, rx, rgb, label, inst=0, shade=None):
        def fn(yy, xx):
            return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0

        self.shape_(cy - ry, cy + ry, cx - rx, cx + rx, fn, rgb, label, inst, shade)

    def rounded_rect(self, y0, y1, x0, x1, rgb, label, inst=0, power=6.0):
        """Superellipse: a rectangle with rounded corners (car bodies, torsos)."""
        cy, cx, ry, rx = (y0 + y1) / 2, (x0 + x1) / 2, max((y1 - y0) / 2, 0.5), max((x1 - x0) / 2, 0.5)
        def fn(yy, xx):
            return np.abs((yy - cy) / ry) ** power + np.abs((xx - cx) / rx) ** power <= 1.0

        self.shape_(y0, y1, x0, x1, fn, rgb, label, inst)

    def trapezoid(self, y0, y1, top: tuple[float, float], bottom: tuple[float, float], rgb, label, inst=0):
        """Rows y0..y1 whose x-extent goes linearly from ``top`` (x0, x1) to ``bottom`` (x0, x1)."""

        def fn(yy, xx):
            t = (yy - y0) / max(y1 - y0, 1e-3)
            left = top[0] + (bottom[0] - top[0]) * t
            right = top[1] + (bottom[1] - top[1]) * t
            return (xx >= left) & (xx <= right)

        self.shape_(y0, y1, min(top[0], bottom[0]), max(top[1], bottom[1]), fn, rgb, label, inst)


# ------------------------------------------------------------------ layout (stuff)


def _layout_bands(rng: np.random.Generator, h: int, s: float) -> tuple[int, list[tuple[int, int, int]]]:
    """Pick a template and band heights; return (ground line y, [(class, y0, y1), ...])."""
    template = TEMPLATES[rng.integers(len(TEMPLATES))]
    nominal = np.array([rng.uniform(*BAND_HEIGHT[c]) * s for c in template])
    needed = nominal[:-1].sum() + rng.uniform(LAST_BAND_MIN_VISIBLE, 1.0) * nominal[-1]
    ground_h = float(np.clip(needed, GROUND_SHARE[0] * h, GROUND_SHARE[1] * h))
    nominal *= min(1.0, ground_h / needed)  # squeeze only when the bands cannot fit
    ground_y = int(round(h - ground_h))
    edges = np.round(ground_y + np.concatenate([[0.0], np.cumsum(nominal[:-1])])).astype(int)
    bands = [(c, int(y0), int(y1)) for c, y0, y1 in zip(template, edges, list(edges[1:]) + [h])]
    return ground_y, bands


def _draw_buildings(cv: _Canvas, rng: np.random.Generator, ground_y: int, s: float) -> None:
    """A contiguous row of facades with varied heights, window grids and a cornice."""
    x = -rng.uniform(0, BUILDING_WIDTH[0]) * s
    top_lo = BUILDING_TOP_SHARE[0] * cv.h
    top_hi = min(BUILDING_TOP_SHARE[1] * cv.h, ground_y - MIN_BUILDING_HEIGHT_SHARE * cv.h)
    while x < cv.w:
        bw = rng.uniform(*BUILDING_WIDTH) * s
        top = rng.uniform(top_lo, max(top_hi, top_lo))
        colour = tx.facade_colour(rng)
        cv.rect(top, ground_y, x, x + bw, colour, BUILDING)
        cv.rect(top, top + max(CORNICE_HEIGHT * s, 1.0), x, x + bw, colour * 0.7, BUILDING)
        _draw_windows(cv, rng, top, ground_y, x, x + bw, s)
        x += bw


def _draw_windows(cv: _Canvas, rng, top, bottom, x0, x1, s: float) -> None:
    cell_y, cell_x = rng.uniform(*WINDOW_CELL_Y) * s, rng.uniform(*WINDOW_CELL_X) * s
    fill_y, fill_x = rng.uniform(0.45, 0.7), rng.uniform(0.4, 0.7)  # window share of a cell
    margin = WINDOW_MARGIN * s
    glass = tx.hsv(rng.uniform(0.55, 0.65), rng.uniform(0.1, 0.4), rng.uniform(0.15, 0.4))
    lit = tx.hsv(0.13, 0.35, 0.9)
    lit_prob = rng.uniform(0.0, 0.25)
    b = cv.box(top + margin, bottom - margin, x0 + margin, x1 - margin)
    if b is None:
        return
    sl, yy, xx = b
    ry, rx = (yy - top - margin) / cell_y, (xx - x0 - margin) / cell_x
    mask = (ry % 1.0 < fill_y) & (rx % 1.0 < fill_x)
    # Per-window brightness: a few windows are lit, the rest reflect the sky more or less.
    # Pixel centres may sit a fraction of a cell before the first window row/column.
    iy, ix = np.maximum(ry, 0).astype(np.intp), np.maximum(rx, 0).astype(np.intp)
    per_window = cv.texture_rng.random((int(iy.max()) + 1, int(ix.max()) + 1))
    pw = per_window[iy, ix][mask]
    colours = np.where((pw < lit_prob)[:, None], lit, glass * (0.7 + 0.6 * pw)[:, None])
    shade = cv.fields.surface[sl][mask][:, None]
    cv.img[sl][mask] = colours * shade
    cv.labels[sl][mask] = BUILDING


def _draw_ground(cv: _Canvas, rng, bands, tints: dict[int, np.ndarray], s: float) -> None:
    for cls, y0, y1 in bands:
        shade = cv.fields.foliage if cls in (TERRAIN, VEGETATION) else cv.fields.asphalt
        cv.rect(y0, y1, 0, cv.w, tints[cls], cls, shade=shade)
    # Curbs between asphalt bands: a lighter line whose colour is the mean of both tints, so it
    # marks the edge without telling which side is which.  Labelled sidewalk, on the sidewalk side.
    curb_rgb = (tints[ROAD] + tints[SIDEWALK]) * 0.6
    curb_w = max(CURB_WIDTH * s, 1.0)
    for (ca, _, ya), (cb, _, _) in zip(bands[:-1], bands[1:]):
        if {ca, cb} == {ROAD, SIDEWALK} and rng.random() < CURB_PROB:
            y0 = ya if cb == SIDEWALK else ya - curb_w
            cv.rect(y0, y0 + curb_w, 0, cv.w, curb_rgb, SIDEWALK, shade=cv.fields.asphalt)


def _draw_grass_patch(cv: _Canvas, rng, bands, tint, s: float) -> None:
    """A lawn patch set into a sidewalk (tree pit / verge), flush with one edge of the band."""
    walks = [b for b in bands if b[0] == SIDEWALK]
    _, y0, y1 = walks[rng.integers(len(walks))]
    height = (y1 - y0) * rng.uniform(0.55, 0.9)
    width = rng.uniform(*GRASS_PATCH_WIDTH) * s
    x0 = _between(rng, -0.2 * width, cv.w - 0.8 * width)
    top = y0 if rng.random() < 0.5 else y1 - height
    cv.rect(top, top + height, x0, x0 + width, tint, TERRAIN, shade=cv.fields.foliage)


def _draw_lane_marks(cv: _Canvas, rng, road: tuple[int, int, int], s: float) -> None:
    """At most one dashed line along the road."""
    _, y0, y1 = road
    yc = y0 + (y1 - y0) * rng.uniform(0.35, 0.65)
    half = max(DASH_WIDTH * s, 1.0) / 2
    dash, gap = rng.uniform(*DASH_LENGTH) * s, rng.uniform(*DASH_GAP) * s
    paint = np.full(3, rng.uniform(170, 225), np.float32)
    x = -rng.uniform(0, dash + gap)
    while x < cv.w:
        cv.rect(yc - half, yc + half, x, x + dash, paint, ROAD, shade=cv.fields.asphalt)
        x += dash + gap


# ------------------------------------------------------------------ things and trees


def _draw_car(cv: _Canvas, rng, foot: float, cx: float, s: float, inst: int) -> None:
    w = rng.uniform(*CAR_WIDTH) * s
    h = w * rng.uniform(0.42, 0.55)
    body = tx.car_colour(rng)
    glass = tx.hsv(0.58, 0.2, rng.uniform(0.12, 0.3))
    facing = 1.0 if rng.random() < 0.5 else -1.0  # which side the bonnet is on
    r = 0.17 * h
    cv.rounded_rect(foot - 0.72 * h, foot - 0.12 * h, cx - w / 2, cx + w / 2, body, CAR, inst)
    # Cabin: a trapezoid set back from the bonnet.
    c0, c1 = cx - 0.3 * w - facing * 0.06 * w, cx + 0.3 * w - facing * 0.06 * w
    cv.trapezoid(foot - h, foot - 0.68 * h, (c0 + 0.08 * w, c1 - 0.08 * w), (c0, c1), body, CAR, inst)
    inset = 0.07 * h
    cv.trapezoid(foot - h + inset, foot - 0.7 * h, (c0 + 0.08 * w + inset, c1 - 0.08 * w - inset),
                 (c0 + inset, c1 - inset), glass, CAR, inst)
    for wx in (cx - 0.31 * w, cx + 0.31 * w):
        cv.ellipse(foot - r, wx, r, r, np.full(3, 25.0, np.float32), CAR, inst)
        cv.ellipse(foot - r, wx, 0.45 * r, 0.45 * r, np.full(3, 120.0, np.float32), CAR, inst)
    lamp_x = cx + facing * (w / 2 - 0.04 * w)
    cv.rect(foot - 0.6 * h, foot - 0.5 * h, lamp_x - 0.04 * w, lamp_x + 0.04 * w,
            tx.hsv(0.14, 0.3, 0.95), CAR, inst)


def _draw_person(cv: _Canvas, rng, foot: float, cx: float, s: float, inst: int) -> None:
    h = rng.uniform(*PERSON_HEIGHT) * s
    shirt, trousers = tx.cloth_colour(rng), tx.cloth_colour(rng)
    leg_w, stride = 0.085 * h, rng.uniform(0.0, 0.09) * h
    for side in (-1.0, 1.0):  # legs, spread for a walking pose
        top_x = cx + side * 0.05 * h
        foot_x = cx + side * (0.05 * h + stride)
        cv.trapezoid(foot - 0.48 * h, foot, (top_x - leg_w / 2, top_x + leg_w / 2),
                     (foot_x - leg_w / 2, foot_x + leg_w / 2), trousers, PERSON, inst)
    torso_w = rng.uniform(0.22, 0.3) * h
    for side in (-1.0, 1.0):  # arms
        ax = cx + side * (torso_w / 2 + 0.03 * h)
        cv.rounded_rect(foot - 0.8 * h, foot - 0.48 * h, ax - 0.035 * h, ax + 0.035 * h,
                        shirt * 0.85, PERSON, inst)
    cv.rounded_rect(foot - 0.82 * h, foot - 0.44 * h, cx - torso_w / 2, cx + torso_w / 2, shirt, PERSON, inst)
    cv.ellipse(foot - 0.9 * h, cx, 0.085 * h, 0.075 * h, tx.skin_colour(rng), PERSON, inst)
    if rng.random() < 0.6:  # hair / hat
        cv.ellipse(foot - 0.95 * h, cx, 0.045 * h, 0.08 * h, tx.cloth_colour(rng) * 0.5, PERSON, inst)


def _draw_pole(cv: _Canvas, rng, foot: float, cx: float, s: float, inst: int) -> None:
    h = rng.uniform(*POLE_HEIGHT) * s
    half = max(rng.uniform(*POLE_HALF_WIDTH) * s, 0.6)
    metal = np.full(3, rng.uniform(60, 150), np.float32)
    top = foot - h
    cv.rect(top, foot, cx - half, cx + half, metal, POLE, inst)
    kind = rng.integers(4)
    if kind == 1:  # traffic sign: disc or plate
        r = rng.uniform(*SIGN_RADIUS) * s
        colour = tx.hsv(rng.choice([0.0, 0.6, 0.12]), 0.8, 0.8)
        if rng.random() < 0.5:
            cv.ellipse(top + r, cx, r, r, colour, POLE, inst)
        else:
            cv.rect(top, top + 2 * r, cx - r, cx + r, colour, POLE, inst)
    elif kind == 2:  # street lamp: horizontal arm and head
        side = rng.choice([-1.0, 1.0])
        arm = rng.uniform(*LAMP_ARM) * s
        cv.rect(top, top + 2 * half, min(cx, cx + side * arm), max(cx, cx + side * arm), metal, POLE, inst)
        cv.rect(top, top + 3 * half, cx + side * arm - 3 * half, cx + side * arm + 3 * half,
                metal * 0.6, POLE, inst)
    elif kind == 3:  # traffic light
        bw, bh = TRAFFIC_LIGHT_HALF_WIDTH * s, TRAFFIC_LIGHT_HEIGHT * s
        cv.rect(top, top + bh, cx - bw, cx + bw, np.full(3, 35.0, np.float32), POLE, inst)
        lamp = rng.integers(3)
        cv.ellipse(top + bh * (lamp + 0.5) / 3, cx, bh / 8, bw / 2, tx.hsv((0.0, 0.12, 0.35)[lamp], 0.9, 1.0),
                   POLE, inst)


def _draw_tree(cv: _Canvas, rng, foot: float, cx: float, s: float, tint: np.ndarray) -> None:
    """Trunk and crown, all labelled vegetation (the trunk is too thin to matter as a class)."""
    radius = rng.uniform(*CROWN_RADIUS) * s
    trunk_h = rng.uniform(0.4, 1.0) * radius
    half = max(rng.uniform(*TRUNK_HALF_WIDTH) * s, 0.8)
    cv.rect(foot - trunk_h - 0.5 * radius, foot, cx - half, cx + half, tx.hsv(0.07, 0.5, 0.3), VEGETATION)
    cy = foot - trunk_h - 0.8 * radius
    k = np.arange(2, 6, dtype=np.float32)
    amps = rng.uniform(0.03, 0.1, k.size).astype(np.float32)
    phases = rng.uniform(0, 2 * np.pi, k.size).astype(np.float32)

    def crown(yy, xx):  # a disc with a wobbly radius
        theta = np.arctan2(yy - cy, xx - cx)[..., None]
        r = radius * (1.0 + (amps * np.cos(k * theta + phases)).sum(-1))
        return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r

    big = radius * 1.35
    cv.shape_(cy - big, cy + big, cx - big, cx + big, crown, tint, VEGETATION, shade=cv.fields.foliage)


def _draw_hedge(cv: _Canvas, rng, foot: float, cx: float, s: float, tint: np.ndarray) -> None:
    height = rng.uniform(*HEDGE_HEIGHT) * s
    width = rng.uniform(*HEDGE_WIDTH) * s
    freq = rng.uniform(*HEDGE_BUMP_FREQ) / s
    phase = rng.uniform(0, 2 * np.pi)
    wave = 0.2 * height
    # 1 - |sin| gives a row of rounded bushes with notches between them.
    def fn(yy, xx):
        return yy >= foot - height + wave * (1.0 - np.abs(np.sin(freq * xx + phase)))

    cv.shape_(foot - height, foot, cx - width / 2, cx + width / 2, fn, tint, VEGETATION,
              shade=cv.fields.foliage)


def _between(rng: np.random.Generator, lo: float, hi: float) -> float:
    """Uniform in [lo, hi]; unlike rng.uniform it tolerates hi < lo (degenerate tiny images)."""
    return lo + (hi - lo) * rng.random()


def _count(rng, lo_hi: tuple[int, int], aspect: float) -> int:
    """Draw a count in [lo, hi] and scale it with the width/height ratio (wider frame, more objects)."""
    return max(1 if lo_hi[0] > 0 else 0, int(round(rng.integers(lo_hi[0], lo_hi[1] + 1) * aspect)))


def _cluster_x(rng, n: int, w: int, spread: float) -> np.ndarray:
    """x positions around one or two group centres (a queue of cars, a group of pedestrians).

    Grouping leaves wide stretches of bare road and sidewalk, where the nearest cue is far away.
    """
    centres = rng.uniform(0, w, size=rng.integers(1, 3))
    xs = centres[rng.integers(centres.size, size=n)] + rng.normal(0.0, spread, n)
    return np.clip(xs, 0, w)  # keep every instance at least half in frame


def _place_things(rng, bands, ground_y: int, w: int, s: float, aspect: float):
    """Return drawables (foot_y, kind, x) for cars, persons, poles, trees and hedges."""
    road = [(y0, y1) for c, y0, y1 in bands if c == ROAD]
    walks = [(y0, y1) for c, y0, y1 in bands if c == SIDEWALK]
    top_band = bands[0]
    items = []
    n_cars = _count(rng, CAR_COUNT, aspect)
    for x in _cluster_x(rng, n_cars, w, CAR_SPREAD * s):
        y0, y1 = road[0]
        lo = y0 + min(0.5 * CAR_WIDTH[0] * s, 0.5 * (y1 - y0))
        items.append((_between(rng, lo, y1 - 0.05 * (y1 - y0)), "car", x))
    n_persons = _count(rng, PERSON_COUNT, aspect)
    xs = {"person": _cluster_x(rng, n_persons, w, PERSON_SPREAD * s),
          "pole": rng.uniform(0, w, _count(rng, POLE_COUNT, aspect))}  # poles stand anywhere
    for kind in ("person", "pole"):
        for x in xs[kind]:
            y0, y1 = walks[rng.integers(len(walks))]
            items.append((_between(rng, y0 + 0.3 * (y1 - y0), y1 - 0.5), kind, x))
    if rng.random() < TREE_PROB:
        n_trees = max(1, _count(rng, TREE_COUNT, aspect))
        for _ in range(n_trees):
            y0, y1 = top_band[1], top_band[2]
            items.append((_between(rng, y0 + 2 * s, y0 + 0.45 * (y1 - y0)), "tree", rng.uniform(0, w)))
    for _ in range(_count(rng, HEDGE_COUNT, aspect)):
        items.append((ground_y + rng.uniform(*HEDGE_FOOT_DEPTH) * s, "hedge", rng.uniform(0, w)))
    items.sort(key=lambda it: it[0])  # painter's order: far (high in frame) first
    return items


# ------------------------------------------------------------------ public API


def generate_scene(seed: int, size: tuple[int, int] = (256, 256)) -> Scene:
    """Render one scene; ``size`` is (height, width).  Deterministic in (seed, size)."""
    h, w = int(size[0]), int(size[1])
    # Two streams: ``rng`` draws only size-independent numbers (layout, objects, colours), so one
    # seed gives the same scene at any resolution; ``tex_rng`` draws the size-dependent noise.
    rng, tex_rng = np.random.default_rng(seed).spawn(2)
    s = h / REF_HEIGHT
    aspect = float(np.clip(w / h, 0.5, 2.5))
    fields = tx.Fields(tex_rng, (h, w), s)
    # Independent per-scene tints per class, from one shared distribution per pair.
    tints = {ROAD: tx.asphalt_tint(rng), SIDEWALK: tx.asphalt_tint(rng),
             VEGETATION: tx.foliage_tint(rng), TERRAIN: tx.foliage_tint(rng)}

    ground_y, bands = _layout_bands(rng, h, s)
    bands = [(VEGETATION if c == TERRAIN and rng.random() < BUSH_BED_PROB else c, y0, y1) for c, y0, y1 in bands]
    img = np.empty((h, w, 3), np.float32)  # rows >= ground_y are all covered by ground bands
    img[:ground_y] = tx.sky_image(tex_rng, ground_y, fields.low)
    cv = _Canvas((h, w), fields, img, tex_rng)
    _draw_buildings(cv, rng, ground_y, s)
    _draw_ground(cv, rng, bands, tints, s)
    if TERRAIN not in [b[0] for b in bands] and rng.random() < GRASS_PATCH_PROB:
        _draw_grass_patch(cv, rng, bands, tints[TERRAIN], s)
    if rng.random() < LANE_MARK_PROB:
        _draw_lane_marks(cv, rng, next(b for b in bands if b[0] == ROAD), s)

    next_id = 1
    for foot, kind, x in _place_things(rng, bands, ground_y, w, s, aspect):
        if kind in ("tree", "hedge"):
            (_draw_tree if kind == "tree" else _draw_hedge)(cv, rng, foot, x, s, tints[VEGETATION])
            continue
        draw = {"car": _draw_car, "person": _draw_person, "pole": _draw_pole}[kind]
        draw(cv, rng, foot, x, s, next_id)
        next_id += 1

    image = tx.apply_lighting(tex_rng, cv.img, fields.low)
    return Scene(image=image, labels=cv.labels, instances=cv.inst, seed=int(seed))


def generate_batch(seeds: Iterable[int], size: tuple[int, int] = (256, 256)) -> tuple[np.ndarray, np.ndarray]:
    """Stack scenes: images (B, H, W, 3) uint8 and labels (B, H, W) uint8."""
    scenes = [generate_scene(int(seed), size) for seed in seeds]
    return np.stack([sc.image for sc in scenes]), np.stack([sc.labels for sc in scenes])


def colorize(labels: np.ndarray) -> np.ndarray:
    """Labels (..., H, W) -> RGB uint8 with PALETTE (IGNORE_INDEX shown black)."""
    lut = np.zeros((256, 3), np.uint8)
    lut[: len(PALETTE)] = PALETTE
    return lut[labels]
