"""Attribution of one pixel's predicted class logit (captum), beside the attention map: to the input
(Integrated Gradients, Saliency) and to the context module's output (LayerGradCam), with the rank
correlation between each and the attention map on the feature grid."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr


def _pixel_logit(model, y: int, x: int):
    def forward(inp):
        return model(inp)[:, :, y, x]
    return forward


def input_attributions(model, x: torch.Tensor, pixel: tuple[int, int], target: int, steps: int = 32,
                       internal_batch_size: int = 4) -> dict[str, np.ndarray]:
    """H×W maps: IG (sum over colour channels, zero = mean-grey baseline) and |gradient| (Saliency).

    `internal_batch_size` bounds memory: IG runs its `steps` interpolated images in chunks of that size,
    so a 512×512 input never holds more than a few forward graphs at once.
    """
    from captum.attr import IntegratedGradients, Saliency

    fwd = _pixel_logit(model, *pixel)
    ig = IntegratedGradients(fwd).attribute(x, baselines=torch.zeros_like(x), target=target, n_steps=steps,
                                            internal_batch_size=internal_batch_size)
    sal = Saliency(fwd).attribute(x, target=target, abs=True)
    return {"integrated_gradients": ig[0].sum(0).detach().cpu().numpy(), "saliency": sal[0].sum(0).detach().cpu().numpy()}


def context_gradcam(model, x: torch.Tensor, pixel: tuple[int, int], target: int, layer: torch.nn.Module) -> np.ndarray:
    """LayerGradCam of the pixel's logit on `layer`'s output (the context module): an h×w grid map, ReLU'd."""
    from captum.attr import LayerGradCam

    cam = LayerGradCam(_pixel_logit(model, *pixel), layer).attribute(x, target=target, relu_attributions=True)
    return cam[0, 0].detach().cpu().numpy()


def to_grid(image_map: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Average an H×W map over each feature-grid cell (adaptive pooling, as the cells cover the image)."""
    t = torch.from_numpy(np.ascontiguousarray(image_map, dtype=np.float64))[None, None]
    return F.adaptive_avg_pool2d(t, grid)[0, 0].numpy()


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's ρ between two maps of the same grid (NaN when either is constant)."""
    a, b = np.ravel(a), np.ravel(b)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def attribution_report(model, x: torch.Tensor, pixel: tuple[int, int], attention_grid: np.ndarray,
                       layer: torch.nn.Module | None, steps: int = 32, internal_batch_size: int = 4) -> dict:
    """Everything the app's click view shows: maps on the grid and their rank correlation with attention."""
    model.eval()
    with torch.no_grad():
        target = int(model(x)[0, :, pixel[0], pixel[1]].argmax())
    maps = input_attributions(model, x, pixel, target, steps, internal_batch_size)
    grid = attention_grid.shape
    out = {"target": target, "maps": {}, "rank_correlation": {}}
    for name, m in maps.items():
        g = to_grid(np.abs(m), grid)
        out["maps"][name] = g
        out["rank_correlation"][name] = rank_correlation(g, attention_grid)
    if layer is not None:
        cam = context_gradcam(model, x, pixel, target, layer)
        out["maps"]["layer_gradcam"] = cam
        out["rank_correlation"]["layer_gradcam"] = rank_correlation(cam, attention_grid)
    return out
