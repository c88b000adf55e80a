"""Attention statistics against hand-computed answers."""
import numpy as np
import pytest

from vizattn.analysis.stats import entropy, mass_on, mean_distance, panel_statistics
from vizattn.explore import Panel, to_image


def test_entropy_uniform_is_one_and_delta_is_zero():
    assert entropy(np.full((4, 5), 1 / 20)) == pytest.approx(1.0)
    delta = np.zeros((4, 5))
    delta[1, 2] = 1
    assert entropy(delta) == 0.0
    assert entropy(np.array([[0.5, 0.5]]), normalised=False) == pytest.approx(np.log(2))


def test_mean_distance_known_answer():
    m = np.zeros((5, 5))
    m[0, 0] = m[4, 4] = 0.5  # query at the centre: both at distance √8 cells
    assert mean_distance(m, (2, 2)) == pytest.approx(np.sqrt(8))
    assert mean_distance(m, (2, 2), (8.0, 8.0)) == pytest.approx(8 * np.sqrt(8))


def test_mass_on_mask():
    m = np.array([[0.1, 0.3], [0.2, 0.4]])
    assert mass_on(m, np.array([[True, False], [False, True]])) == pytest.approx(0.5)


def test_panel_statistics_count_each_cell_once_whatever_its_size():
    # a 2×2 grid over a 3×3 image: cells cover 2×2, 2×1, 1×2 and 1×1 pixels
    grid = np.array([[0.25, 0.25], [0.25, 0.25]])
    image_map = to_image(grid, (3, 3))
    labels = np.array([[0, 0, 1], [0, 0, 1], [1, 1, 1]])  # class 0 is exactly the first cell
    p = Panel("m", "nonlocal", "attention", grid, image_map, (0, 0), (0, 2, 0, 2), (0, 0), False, True)
    stats = panel_statistics(p, labels, instances=np.where(labels == 0, 3, 0))
    assert stats["mass_own_class"] == pytest.approx(0.25)
    assert stats["mass_own_instance"] == pytest.approx(0.25)
    assert stats["entropy"] == pytest.approx(1.0)


def test_chance_baseline_is_what_a_uniform_map_scores_and_noise_prints_as_zero():
    from vizattn.analysis.stats import chance_statistics, tidy
    from vizattn.explore import Panel, to_image

    labels = np.zeros((8, 8), np.uint8)
    labels[:, 6:] = 1  # a quarter of the image (and of the 4×4 grid's cells) is class 1
    grid = np.zeros((4, 4))
    grid[0, 3] = 1.0
    p = Panel("m", "nonlocal", "attention", grid, to_image(grid, (8, 8)), (0, 3), (0, 2, 6, 8), (0, 7), False, True)
    c = chance_statistics(p, labels)
    assert c["entropy"] == pytest.approx(1.0)
    assert c["mass_own_class"] == pytest.approx(0.25)
    d = np.hypot(*(np.mgrid[:4, :4] - np.array([0, 3])[:, None, None]) * 2).mean()  # 2 px per cell
    assert c["mean_distance_px"] == pytest.approx(d)
    assert tidy(-4e-16) == 0.0 and tidy(0.123456) == 0.123 and tidy(1234.5) == 1230.0
