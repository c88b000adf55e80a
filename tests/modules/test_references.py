"""Our modules compute what mmcv's and mmsegmentation's do (and, for PSA and LESA, what the official code's
equations give): parameters copied by one name table, every weight and BN statistic random, outputs and
attention rows compared (benchmarks/fidelity.py does the work; `vizattn bench fidelity` prints it)."""
import pytest
import torch

from benchmarks import fidelity
from benchmarks.fidelity import CASES, compare

RUNS = [(n, s) for n, case in CASES.items() for s in case.sizes]


@pytest.mark.parametrize("name,size", RUNS, ids=[f"{n}-{s[0]}x{s[1]}" for n, s in RUNS])
def test_module_equals_reference(name, size):
    exact = compare(name, size, torch.float64)
    assert exact.rows >= 48
    assert exact.output_diff <= 1e-10, exact
    assert exact.attention_diff <= 1e-10, exact
    single = compare(name, size, torch.float32)
    assert single.output_diff <= 1e-4, single


# (the equation references read our module's own parameters, so only copied references can be told apart)
@pytest.mark.parametrize("name", [n for n, case in CASES.items() if case.needs_mmseg])
def test_a_changed_weight_is_caught(name):
    """The comparison can fail: nudging one of our tensors after the copy shows up in the output."""
    def nudge(m):
        with torch.no_grad():
            max(m.parameters(), key=lambda p: p.numel()).mul_(1.5)

    assert compare(name, CASES[name].sizes[0], torch.float64, tamper=nudge).output_diff > 1e-3


def test_name_table_must_cover_every_tensor():
    mm = fidelity.import_mmseg()
    ref, ours, table = CASES["apnb"].build(mm, 16)
    table.pop("fuse.0.weight")
    with pytest.raises(AssertionError, match="fuse.0.weight"):
        fidelity.copy_by_table(ours, ref, table)


def test_softmax_log_sees_every_spelling():
    with fidelity.SoftmaxLog() as log:
        x = torch.randn(2, 3)
        torch.softmax(x, -1), x.softmax(-1), torch.nn.functional.softmax(x, dim=0), torch.nn.Softmax(dim=1)(x)
    assert len(log.outputs) == 4
