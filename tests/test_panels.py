"""explore.panels makes each panel's maps when they are first read (a browser grid reads neither): what it gives
equals the record's own query map and its spread, and the shape a grid is told equals the map's, for every kind
of the bundled zoo and a SegFormer's keys on a reduced grid."""
import numpy as np
import pytest

from vizattn.bundled import available, model_card
from vizattn.explore import Forward, MadeOnRead, cell_of, panels, run_model, to_image
from vizattn.sources import image_source
from vizattn.zoo import load


@pytest.fixture(scope="module")
def forwards():
    image = image_source("scene:1000000021", 96).image
    out = {n: run_model(load(n), image) for n in available() if model_card(n).get("module")}
    # a SegFormer (random weights) attends with keys on a grid reduced by its sr_ratio: maps not on the query grid
    import torch

    import vizattn
    from tests.foreign.test_observe import segformer

    model = segformer()
    with torch.no_grad(), vizattn.capture(model) as cap:
        model(pixel_values=torch.randn(1, 3, 64, 96))
    out["segformer"] = Forward(np.zeros((64, 96, 3), np.uint8), np.zeros((64, 96), np.uint8), cap.records)
    return out


def test_lazy_maps_equal_the_records_own_and_the_shape_is_known_before_the_map(forwards):
    seen_other_key_grid = False
    for name, fw in forwards.items():
        for y, x in ((5, 90), (60, 33)):  # inside 96² and 64×96
            for p in panels(fw, y, x):
                assert not MadeOnRead.made(p, "grid_map") and not MadeOnRead.made(p, "image_map")
                shape = p.grid_shape  # from the record, the map still unmade
                assert not MadeOnRead.made(p, "grid_map"), name
                gy, gx = cell_of(y, x, fw.shape, p.record.grid)
                expected = p.record.query_map(gy, gx, p.view)
                assert shape == expected.shape, (name, p.view)
                seen_other_key_grid |= shape != tuple(p.record.grid)
                np.testing.assert_array_equal(p.grid_map, expected)
                np.testing.assert_array_equal(p.image_map, to_image(expected, fw.shape))
                assert p.grid_map is p.grid_map and p.image_map is p.image_map  # made once, then kept
                if p.distribution and not p.tokens:
                    assert p.uniform == 1.0 / expected.size
    assert seen_other_key_grid  # SegFormer's reduced keys


def test_a_panel_given_its_maps_keeps_them():
    grid = np.arange(6.0).reshape(2, 3)
    image = to_image(grid, (4, 6))
    from vizattn.explore import Panel

    p = Panel("m", "nonlocal", "attention", grid, image, (0, 0), (0, 2, 0, 2), (0, 0), False, True)
    assert p.grid_map is grid and p.image_map is image and p.grid_shape == (2, 3)
    with pytest.raises(TypeError):
        Panel("m", "nonlocal", "attention", grid)  # the maps stay required fields, with no default
