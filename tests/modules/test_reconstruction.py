"""The captured maps are the ones used: Σ_p map_q[p] · values[p] rebuilds the module's own output."""
import pytest
import torch

from tests.modules.helpers import ALL, run

# (ISA needs padding at 45×45 with 8×8 groups; ANN's pyramid regions overlap when 45 is not divisible)
CASES = [(n, (7, 13)) for n in ALL] + [(n, (45, 45)) for n in ("isa", "apnb", "criss_cross")]


@pytest.mark.parametrize("name,size", CASES)
def test_output_rebuilt_from_captured_maps(name, size):
    _, _, rec = run(name, torch.randn(2, 16, *size))
    views = rec.reconstruction()
    assert views, f"{name} offers no reconstruction"
    for view, (values, output) in views.items():
        _, c, h, w = values.shape
        maps = torch.stack([rec.reconstruction_map(y, x, view, batch=1) for y in range(h) for x in range(w)])
        rebuilt = torch.einsum("qhw,chw->cq", maps.double(), values[1].double()).view(c, h, w)
        torch.testing.assert_close(rebuilt, output[1].double(), atol=1e-5, rtol=1e-5)


def test_reconstruction_covers_every_step():
    """Every attention step of every kind is checked, not just one (ISA both steps, CC every loop, LESA every head)."""
    expected = {"isa": {"long", "short"}, "criss_cross": {"loop1", "loop2"}, "lesa": {f"head{i}" for i in range(8)},
                "nonlocal": {"attention"}, "danet": {"position"}, "gc": {"mask"}, "apnb": {"all"}, "afnb": {"all"},
                "psa": {"channel_pool"}, "psanet": {"collect", "distribute"}}
    assert set(expected) == set(ALL)
    for name, views in expected.items():
        _, _, rec = run(name, torch.randn(1, 16, 5, 6))
        assert set(rec.reconstruction()) == views
