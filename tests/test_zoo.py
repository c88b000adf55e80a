"""Save/load round trips and the refusal of bad checkpoints, with nothing in them executed."""
import json

import pytest
import torch
from safetensors.torch import save_file

from tests.evil import evil_checkpoints
from vizattn import VizattnError
from vizattn.io import read_checkpoint
from vizattn.models.segmenter import ModelConfig, build_model
from vizattn.zoo import load, save


def small(head="gc"):
    torch.manual_seed(0)
    return build_model(ModelConfig(head)).eval()


@pytest.mark.parametrize("head", ["gc", "ann", "psa_sequential"])
def test_safetensors_round_trip(tmp_path, head):
    model = small(head)
    save(model, tmp_path / "m.safetensors", {"config": model.config.to_dict()})
    loaded = load(str(tmp_path / "m.safetensors"))
    assert not loaded.training and loaded.config == model.config
    x = torch.randn(1, 3, 40, 48)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))


def test_architecture_is_read_from_metadata_without_a_card(tmp_path):
    model = small("isa")
    save(model, tmp_path / "only.safetensors")
    assert not (tmp_path / "only.json").exists()
    assert load(tmp_path / "only.safetensors").config.head == "isa"


def test_torch_state_dict_loads_through_weights_only(tmp_path):
    model = small("criss_cross")
    torch.save(model.state_dict(), tmp_path / "m.pt")
    loaded = load(tmp_path / "m.pt", head="criss_cross")
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)
    assert load(tmp_path / "m.pt").config.head == "criss_cross"  # the keys and shapes say which head it is
    state = model.state_dict()
    state.pop("head.context.gamma")
    torch.save(state, tmp_path / "odd.pt")
    with pytest.raises(VizattnError, match="fit none of ours; choose its head"):
        load(tmp_path / "odd.pt")
    torch.save({"state_dict": model.state_dict(), "vizattn_config": model.config.to_dict()}, tmp_path / "c.pth")
    assert load(tmp_path / "c.pth").config.head == "criss_cross"


def test_misfit_lists_missing_unexpected_and_mismatched(tmp_path):
    state = small("gc").state_dict()
    state.pop("head.classifier.1.bias")
    state["head.extra.weight"] = torch.zeros(1)
    state["head.classifier.1.weight"] = torch.zeros(5, 64, 1, 1)
    save_file(state, str(tmp_path / "bad.safetensors"), metadata={"vizattn_config": json.dumps(ModelConfig("gc").to_dict())})
    with pytest.raises(VizattnError) as err:
        load(tmp_path / "bad.safetensors")
    msg = str(err.value)
    assert "missing keys: head.classifier.1.bias" in msg
    assert "unexpected keys: head.extra.weight" in msg
    assert "shape mismatches: head.classifier.1.weight (5, 64, 1, 1) vs (9, 64, 1, 1)" in msg
    with pytest.raises(VizattnError, match="does not fit"):
        load(tmp_path / "bad.safetensors", head="nonlocal")


def test_pickle_that_runs_code_is_refused_and_does_not_run(tmp_path):
    target = tmp_path / "ran.txt"
    evil = tmp_path / "evil.pt"
    evil.write_bytes(evil_checkpoints(target)["evil.pt"])
    with pytest.raises(VizattnError, match="would run code when unpickled"):
        load(evil, head="gc")
    assert not target.exists()


@pytest.mark.parametrize("payload,name", [
    (b"", "empty.safetensors"),
    (b"not a checkpoint at all", "junk.safetensors"),
    (b"\xff" * 64, "junk.pt"),
])
def test_garbage_is_refused_with_one_sentence(payload, name):
    with pytest.raises(VizattnError):
        read_checkpoint(payload, name)


def test_truncated_files_are_refused(tmp_path):
    model = small("gc")
    save(model, tmp_path / "m.safetensors")
    data = (tmp_path / "m.safetensors").read_bytes()
    torch.save(model.state_dict(), tmp_path / "m.pt")
    tdata = (tmp_path / "m.pt").read_bytes()
    for blob, name in ((data[: len(data) // 2], "cut.safetensors"), (tdata[: len(tdata) // 2], "cut.pt")):
        with pytest.raises(VizattnError, match="not a readable"):
            read_checkpoint(blob, name)


def test_unknown_name_says_what_exists():
    with pytest.raises(VizattnError, match="neither a bundled model"):
        load("no-such-model")


def test_non_finite_weights_are_refused(tmp_path):
    state = small("gc").state_dict()
    state["head.classifier.1.bias"] = state["head.classifier.1.bias"].clone()
    state["head.classifier.1.bias"][0] = float("nan")
    torch.save(state, tmp_path / "nan.pt")
    with pytest.raises(VizattnError, match=r"non-finite weights \(NaN or Inf\) in head.classifier.1.bias"):
        load(tmp_path / "nan.pt", head="gc")


def test_bundled_models_skip_the_cost_estimate_that_every_other_file_gets(monkeypatch, tmp_path):
    """Our own zoo's configurations are known; estimating them would import torch._dynamo (about 3 s) at the
    app's first start. A copy of the same file elsewhere is costed like any file a user brings."""
    import shutil

    from vizattn import zoo

    calls = []
    monkeypatch.setattr(zoo, "check_cost", lambda model, name: calls.append(name))
    name = zoo.available()[0]
    zoo.load(name)
    assert calls == []
    copy = tmp_path / f"{name}.safetensors"
    shutil.copy(zoo.PRETRAINED / f"{name}.safetensors", copy)
    zoo.load(copy)
    assert calls == [copy.name]
