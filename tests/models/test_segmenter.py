"""Every head builds, runs at awkward sizes, is captured, and has the computed receptive field."""
import pytest
import torch

from vizattn import capture
from vizattn.models.receptive_field import receptive_field
from vizattn.models.segmenter import HEADS, ModelConfig, build_model

EXPECTED_MODULES = {
    "fcn": [], "nonlocal": ["nonlocal"], "isa": ["isa"], "criss_cross": ["criss_cross"], "gc": ["gc"],
    "lesa": ["lesa"], "psa_parallel": ["psa"], "psa_sequential": ["psa"], "ann": ["afnb", "apnb"], "danet": ["danet"],
    "psa_parallel_paper": ["psa"], "psa_sequential_paper": ["psa"],
}


@pytest.mark.parametrize("head", list(HEADS))
@pytest.mark.parametrize("size", [(45, 61), (8, 8), (64, 40)])
def test_every_head_at_awkward_sizes(head, size):
    model = build_model(ModelConfig(head)).eval()
    x = torch.randn(2, 3, *size)
    with torch.no_grad(), capture(model) as cap:
        logits = model(x)
    assert logits.shape == (2, 9, *size) and torch.isfinite(logits).all()
    assert [r.kind for r in cap.records.values()] == EXPECTED_MODULES[head]
    grid = (-(-size[0] // 8), -(-size[1] // 8))
    assert all(r.grid == grid for r in cap.records.values())


def test_heads_differ_only_in_the_context_module():
    fcn = set(build_model(ModelConfig("fcn")).state_dict())
    for head in HEADS:
        extra = set(build_model(ModelConfig(head)).state_dict()) - fcn
        assert all(k.startswith("head.context.") for k in extra), head
        assert fcn <= set(build_model(ModelConfig(head)).state_dict())


def test_receptive_field_is_computed_from_the_layers():
    model = build_model(ModelConfig("fcn"))
    # stem 3 (s2) -> layer1 +4, +8 (s4) -> layer2 +8, +16 (s8) -> dilated 3×3 +32: 71 px
    assert receptive_field(model.backbone) == 71
    # two 3×3 head convs at stride 8 add 32, the bilinear upsampling of the logits another 8
    assert receptive_field(model) == 111
    # attention is removed before measuring, so the head's own convs decide
    assert receptive_field(build_model(ModelConfig("nonlocal"))) == 111
