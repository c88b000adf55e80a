"""The layers composed for one query pixel, as a panel like any other: rollout (Abnar & Zuidema) and gradient-
weighted relevance (Chefer et al.), shown and exported beside the per-layer maps (`--view rollout|relevance`, the
app's layer navigator). Both follow the foreign self-attention layers a capture saw; our own modules compose
their steps in their "effective" views (criss-cross's two loops, ISA's A_S·A_L), the same idea inside one module."""
from __future__ import annotations

import numpy as np

from vizattn.errors import VizattnError
from vizattn.explore import Forward, Panel, cell_box, check_pixel, to_image

COMPOSED_VIEWS = ("rollout", "relevance")
NOTES = {
    "rollout": "Rollout over {n} layers (mean over heads, residual 0.5, rows renormalised){extra}.",
    "relevance": "Gradient-weighted relevance over {n} layers for the predicted class at this pixel "
                 "(Chefer et al. 2021){extra}.",
}


def composed_panel(forward: Forward, y: int, x: int, view: str, model=None, details=None) -> Panel:
    """The `view` ("rollout" or "relevance") of query pixel (y, x) as a Panel on the first layer's grid.
    Relevance runs a backward pass through `model` on the forward's image, unless `details` holds its rows for
    this pixel already (the page's, computed under its work guard); rollout ignores `details`."""
    from vizattn.analysis.relevance import relevance_details
    from vizattn.analysis.rollout import rollout_details

    y, x = check_pixel(y, x, forward.shape)
    if view not in COMPOSED_VIEWS:
        raise VizattnError(f"'{view}' is not a composed view; choose one of {', '.join(COMPOSED_VIEWS)}.")
    if view == "relevance" and details is not None:
        r = details
    elif view == "rollout":
        r = rollout_details(forward, y, x)
    elif model is None:
        raise VizattnError("Relevance needs the model itself (a backward pass); give the model.")
    else:
        r = relevance_details(model, forward.image, y, x)
    m = np.asarray(r.map, np.float64)
    total = m.sum()
    grid_map = m / total if total > 0 else m  # a distribution over the patch grid, as the papers normalise it
    gy, gx = min(r.grid[0] - 1, y * r.grid[0] // forward.shape[0]), min(r.grid[1] - 1, x * r.grid[1] // forward.shape[1])
    extra = f"; {r.extra_share:.0%} went to class/register tokens (set aside)" if r.extra_share > 5e-4 else ""
    note = NOTES[view].format(n=len(r.layers), extra=extra)
    return Panel("all layers", view, view, grid_map, to_image(grid_map, forward.shape), (gy, gx),
                 cell_box(gy, gx, forward.shape, r.grid), (y, x), False, True, note)
