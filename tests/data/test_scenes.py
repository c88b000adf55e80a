"""Tests for the procedural street-scene generator and its receptive-field context statistics.
Checks determinism, label validity, that ambiguous pairs share local statistics, and exact cue distances."""

import numpy as np
import pytest
from scipy.ndimage import distance_transform_edt, laplace, uniform_filter

from vizattn.data import (
    AMBIGUOUS_PAIRS,
    CLASSES,
    IGNORE_INDEX,
    PALETTE,
    THING_CLASSES,
    ambiguous_mask,
    beyond_rf_share,
    cue_distance,
    generate_batch,
    generate_scene,
    pooled_beyond_rf_share,
)

C = {name: i for i, name in enumerate(CLASSES)}
STATS_SEEDS = range(150)  # enough scenes that the standard error of a mean difference is ~0.1 std
STATS_SIZE = (128, 128)
PATCH = 9
DEEP = 6.0  # patch centres farther than this from another class: the 9x9 patch is all one class
PATCHES_PER_SCENE = 20
TOLERANCE = 0.25  # |mean_a - mean_b| < TOLERANCE * pooled std


# ---------------------------------------------------------------- basic contract


def test_constants():
    assert CLASSES == (
        "sky", "building", "road", "sidewalk", "vegetation", "terrain", "car", "person", "pole",
    )
    assert PALETTE.shape == (len(CLASSES), 3) and PALETTE.dtype == np.uint8
    assert AMBIGUOUS_PAIRS == (("road", "sidewalk"), ("vegetation", "terrain"))
    assert IGNORE_INDEX == 255


def test_deterministic_per_seed_and_size():
    a, b = generate_scene(7), generate_scene(7)
    for field in ("image", "labels", "instances"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert a.seed == 7
    assert not np.array_equal(a.image, generate_scene(8).image)


@pytest.mark.parametrize("size", [(256, 256), (128, 96), (64, 64), (97, 211)])
def test_shapes_and_dtypes(size):
    sc = generate_scene(3, size)
    assert sc.image.shape == (*size, 3) and sc.image.dtype == np.uint8
    assert sc.labels.shape == size and sc.labels.dtype == np.uint8
    assert sc.instances.shape == size and sc.instances.dtype == np.int32


@pytest.mark.parametrize("size", [(1, 1), (8, 8), (16, 300), (300, 16)])
def test_degenerate_sizes_still_render(size):
    sc = generate_scene(5, size)
    assert sc.image.shape == (*size, 3) and sc.labels.max() < len(CLASSES)


def test_geometry_scales_with_size():
    """The same seed gives the same layout at any resolution, just scaled."""
    small, big = generate_scene(11, (256, 256)).labels, generate_scene(11, (512, 512)).labels
    assert (small == big[::2, ::2]).mean() > 0.95


def test_generate_batch_matches_scenes():
    images, labels = generate_batch([1, 2, 3], (64, 80))
    assert images.shape == (3, 64, 80, 3) and labels.shape == (3, 64, 80)
    np.testing.assert_array_equal(images[1], generate_scene(2, (64, 80)).image)
    np.testing.assert_array_equal(labels[2], generate_scene(3, (64, 80)).labels)


@pytest.mark.parametrize("size", [(128, 128), (97, 211)])
def test_labels_and_instances_are_consistent(size):
    things = {C[c] for c in THING_CLASSES}
    for seed in range(15):
        sc = generate_scene(seed, size)
        assert sc.labels.max() < len(CLASSES)
        is_thing = np.isin(sc.labels, list(things))
        # Every thing pixel has an instance id, stuff pixels have none.
        assert (sc.instances[is_thing] > 0).all()
        assert (sc.instances[~is_thing] == 0).all()
        for inst in np.unique(sc.instances[sc.instances > 0]):
            classes = np.unique(sc.labels[sc.instances == inst])
            assert classes.size == 1 and int(classes[0]) in things


def test_every_class_appears_in_most_scenes():
    present = np.array([np.bincount(generate_scene(s, (96, 96)).labels.ravel(), minlength=len(CLASSES)) > 0
                        for s in range(40)])
    assert present.mean(0).min() >= 0.75, dict(zip(CLASSES, present.mean(0)))


# ---------------------------------------------------------------- the ambiguous pairs


def _patch_features(seeds, size, classes):
    """Per class: rows of (mean R, mean G, mean B, Laplacian std) of 9x9 patches deep inside it."""
    rng = np.random.default_rng(0)
    out = {c: [] for c in classes}
    for seed in seeds:
        sc = generate_scene(seed, size)
        img = sc.image.astype(np.float32)
        mean_rgb = uniform_filter(img, (PATCH, PATCH, 1))
        lap = laplace(img.mean(-1))
        var = uniform_filter(lap**2, PATCH) - uniform_filter(lap, PATCH) ** 2
        energy = np.sqrt(np.clip(var, 0.0, None))
        for c in classes:
            ys, xs = np.nonzero(distance_transform_edt(sc.labels == C[c]) > DEEP)
            if ys.size:
                pick = rng.choice(ys.size, min(PATCHES_PER_SCENE, ys.size), replace=False)
                y, x = ys[pick], xs[pick]
                out[c].append(np.column_stack([mean_rgb[y, x], energy[y, x]]))
    return {c: np.concatenate(v) for c, v in out.items()}


def _effect(a, b, stat=np.mean):
    """|stat_a - stat_b| / pooled std, per feature column."""
    pooled = np.sqrt((a.var(0) + b.var(0)) / 2.0)
    return np.abs(stat(a, axis=0) - stat(b, axis=0)) / pooled


@pytest.fixture(scope="module")
def features():
    return _patch_features(STATS_SEEDS, STATS_SIZE, ("road", "sidewalk", "vegetation", "terrain", "building"))


@pytest.mark.parametrize("pair", AMBIGUOUS_PAIRS)
def test_pairs_share_local_statistics(features, pair):
    a, b = features[pair[0]], features[pair[1]]
    colour = _effect(a[:, :3], b[:, :3])
    # Texture energy is compared by median: the sparse dashed lane marks, a deliberate road-only
    # cue, put a heavy tail on a few per cent of road patches that would dominate a mean.
    energy = _effect(a[:, 3:], b[:, 3:], stat=np.median)
    assert (colour < TOLERANCE).all(), colour
    assert (energy < TOLERANCE).all(), energy


def test_control_road_and_building_differ(features):
    """The same features do separate classes that are meant to be locally distinct."""
    effects = np.concatenate([_effect(features["road"][:, :3], features["building"][:, :3]),
                              _effect(features["road"][:, 3:], features["building"][:, 3:], stat=np.median)])
    assert effects.max() > 4 * TOLERANCE, effects


def test_within_scene_tints_usually_differ():
    """Road and sidewalk get independent tints, so inside one scene there is a colour to match."""
    gaps = []
    for seed in range(30):
        sc = generate_scene(seed, STATS_SIZE)
        road = distance_transform_edt(sc.labels == C["road"]) > DEEP
        walk = distance_transform_edt(sc.labels == C["sidewalk"]) > DEEP
        if road.any() and walk.any():
            gaps.append(np.linalg.norm(sc.image[road].mean(0) - sc.image[walk].mean(0)))
    assert len(gaps) >= 25
    assert np.mean(np.array(gaps) > 4.0) >= 0.8


# ---------------------------------------------------------------- context statistics, exact answers


def test_cue_distance_square_in_sky():
    labels = np.full((40, 40), C["sky"], np.uint8)
    labels[10:30, 10:30] = C["road"]  # rows/cols 10..29
    d = cue_distance(labels)
    assert d.dtype == np.float32
    assert d[19, 19] == 10.0  # nearest sky pixels: (9, 19) and (19, 9)
    assert d[10, 10] == 1.0
    assert d[15, 20] == 6.0  # (9, 20) is 6 rows up
    assert (d[labels == C["sky"]] == 0).all()
    np.testing.assert_array_equal(ambiguous_mask(labels), labels == C["road"])


def test_cue_distance_pair_partner_is_not_a_cue():
    labels = np.full((40, 40), C["sky"], np.uint8)
    labels[10:30, 10:30] = C["road"]
    labels[10:30, 30:40] = C["sidewalk"]  # same pair: extends the region to the right border
    labels[10:30, 0:10] = C["vegetation"]  # other pair: a cue for road, and road is one for it
    d = cue_distance(labels)
    assert d[19, 29] == 10.0  # the sidewalk to the right does not count
    assert d[19, 10] == 1.0  # vegetation is right next to it
    assert d[19, 9] == 1.0


def test_cue_distance_diagonal_and_no_cue():
    labels = np.full((10, 10), C["road"], np.uint8)
    labels[0, 0] = C["sky"]
    d = cue_distance(labels)
    assert d[3, 4] == 5.0
    assert d[9, 9] == pytest.approx(np.hypot(9, 9))
    whole = cue_distance(np.full((30, 40), C["terrain"], np.uint8))
    assert (whole == np.float32(50.0)).all()  # no cue anywhere: the image diagonal


def test_beyond_rf_share_exact():
    labels = np.full((100, 100), C["road"], np.uint8)
    labels[0] = C["sky"]  # distance of row r is r
    share = beyond_rf_share(labels, rf=103)  # d > 51.5: rows 52..99 of the 99 road rows
    assert share["road/sidewalk"] == pytest.approx(48 / 99)
    assert share["vegetation/terrain"] == 0.0
    assert share["all"] == pytest.approx(48 / 99)


def test_some_decisions_lie_beyond_the_receptive_field():
    labels = [generate_scene(seed).labels for seed in range(20)]
    share = pooled_beyond_rf_share(labels, rf=103)
    assert share["all"] > 0.0
    assert share["road/sidewalk"] > 0.0
    assert np.mean([beyond_rf_share(lab, 103)["all"] for lab in labels]) > 0.0
