"""The capture protocol: it changes nothing, leaves nothing behind, and records only its own model/thread."""
import threading

import numpy as np
import pytest
import torch
from torch import nn

from tests.modules.helpers import ALL, build, wake
from vizattn import VizattnError, capture, create_attention


class Nested(nn.Module):
    """Attention modules buried at different depths, as in a real segmenter."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.body = nn.Sequential(nn.ReLU(), nn.ModuleDict({"ctx": create_attention("nonlocal", 16)})["ctx"])
        self.head = nn.ModuleList([create_attention("criss_cross", 16), create_attention("gc", 16)])

    def forward(self, x):
        x = self.body(self.stem(x))
        for m in self.head:
            x = m(x)
        return x


def all_hooks(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules())


@pytest.mark.parametrize("name", ALL)
def test_capture_does_not_change_output(name):
    m = wake(build(name))
    x = torch.randn(2, 16, 9, 11)
    with torch.no_grad():
        plain = m(x)
        with capture(m) as cap:
            captured = m(x)
    assert torch.allclose(plain, captured, atol=0, rtol=0)
    assert list(cap.records) == [name]


def test_records_use_qualified_names_in_forward_order():
    model = wake(Nested()).eval()
    with torch.no_grad(), capture(model) as cap:
        model(torch.randn(1, 3, 8, 8))
    assert list(cap.records) == ["body.1", "head.0", "head.1"]
    assert [r.kind for r in cap.records.values()] == ["nonlocal", "criss_cross", "gc"]
    assert all(r.grid == (8, 8) for r in cap.records.values())


def test_nothing_survives_the_context_even_after_an_exception():
    model = Nested().eval()
    before = all_hooks(model)
    with pytest.raises(RuntimeError, match="boom"):
        with capture(model) as cap:
            model(torch.randn(1, 3, 6, 6))
            raise RuntimeError("boom")
    assert all_hooks(model) == before == 0
    assert len(torch.nn.modules.module._global_forward_hooks) == 0
    recorded = dict(cap.records)
    model(torch.randn(1, 3, 5, 5))  # a forward after exit must not record anything
    assert cap.records == recorded and all(r.grid == (6, 6) for r in cap.records.values())


def test_capture_ignores_modules_of_other_models():
    a, b = build("nonlocal"), build("nonlocal")
    with capture(a) as cap:
        b(torch.randn(1, 16, 4, 4))
    assert cap.records == {}


def test_concurrent_captures_on_one_shared_model_stay_separate():
    model = wake(Nested()).eval()
    inputs = [torch.randn(1, 3, 10, 10) for _ in range(4)]
    alone = []
    for x in inputs:
        with torch.no_grad(), capture(model) as cap:
            model(x)
        alone.append(cap.records["body.1"].query_map(4, 5))
    together = [None] * len(inputs)
    barrier = threading.Barrier(len(inputs))

    def work(i):
        barrier.wait()
        for _ in range(3):
            with torch.no_grad(), capture(model) as cap:
                model(inputs[i])
            together[i] = cap.records["body.1"].query_map(4, 5)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(together, alone):
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_bad_query_and_view_raise_one_clear_error():
    m = build("nonlocal")
    with capture(m) as cap:
        m(torch.randn(1, 16, 4, 6))
    rec = cap.records["nonlocal"]
    with pytest.raises(VizattnError, match="outside the 4×6 feature grid"):
        rec.query_map(4, 0)
    with pytest.raises(VizattnError, match="outside"):
        rec.query_map(-1, 0)
    with pytest.raises(VizattnError, match="not a view"):
        rec.query_map(0, 0, view="effective")
    with pytest.raises(VizattnError, match="Batch index"):
        rec.query_map(0, 0, batch=1)
    with pytest.raises(VizattnError, match="Unknown attention module"):
        create_attention("transformer", 8)
