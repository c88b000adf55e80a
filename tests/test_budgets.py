"""Forward budgets hold for any model: a transformers forward and a captum attribution run inside a guarded slot
are stopped at the next module boundary once the budget is spent, with the guard's one sentence; other threads
are never checked against this one's budget."""
import threading

import numpy as np
import pytest
import torch

from tests.foreign.test_observe import segformer
from vizattn.errors import VizattnError
from vizattn.explore import run_model
from vizattn.guard import WorkGuard

IMAGE = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)


class Counting(torch.nn.Module):
    """A factory-style model that reports no progress: a stack of convolutions."""

    def __init__(self):
        super().__init__()
        self.layers = torch.nn.Sequential(*[torch.nn.Conv2d(3, 3, 3, padding=1) for _ in range(8)])

    def forward(self, x):
        return self.layers(x)


def test_a_transformers_forward_is_stopped_by_the_budget():
    model = segformer("eager")
    with pytest.raises(VizattnError, match="was stopped so that other sessions are served"):
        with WorkGuard(budget_s=0.0).slot():
            run_model(model, IMAGE)
    with WorkGuard(budget_s=60.0).slot():  # within its budget the same forward runs
        assert run_model(model, IMAGE).records


def test_an_attribution_run_is_stopped_by_the_budget():
    from vizattn.analysis.attribution import attribution_report
    from vizattn.models.segmenter import ModelConfig, build_model
    from vizattn.model import to_tensor

    model = build_model(ModelConfig("criss_cross")).eval()
    layer = dict(model.named_modules())["head.context"]
    with pytest.raises(VizattnError, match="was stopped"):
        with WorkGuard(budget_s=0.0).slot():
            attribution_report(model, to_tensor(IMAGE), (10, 10), np.ones((8, 8)) / 64, layer)


def test_the_budget_of_one_thread_never_stops_another():
    model, seen = Counting(), {}

    def other():
        seen["out"] = model(torch.zeros(1, 3, 8, 8)).shape

    with pytest.raises(VizattnError):
        with WorkGuard(budget_s=0.0).slot():
            t = threading.Thread(target=other)
            t.start()
            t.join()
            model(torch.zeros(1, 3, 8, 8))
    assert seen["out"] == (1, 3, 8, 8)
