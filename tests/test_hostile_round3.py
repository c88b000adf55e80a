"""Hardening, round 3: the newer doors held to the standard of the old ones (tensors that are not plain weights,
numpy metadata, DataParallel prefixes, sibling model cards), each refused or read with one sentence."""
import io
import shutil

import numpy as np
import pytest
import torch

import vizattn
from vizattn import io as vio
from vizattn.bundled import PRETRAINED
from vizattn.errors import VizattnError
from vizattn.models.segmenter import ModelConfig, build_model


def saved(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


@pytest.mark.parametrize("tensor", [torch.zeros(4, 4).to_sparse(), torch.empty(4, device="meta")])
def test_sparse_and_meta_tensors_are_refused_with_a_sentence(tensor):
    with pytest.raises(VizattnError, match="not plain dense weights"):
        vio.read_checkpoint(saved({"w": tensor}), "odd.pt")


def test_numpy_arrays_in_checkpoint_metadata_are_numbers_not_code():
    meta = {"PALETTE": np.array([[128, 64, 128], [244, 35, 232]]), "CLASSES": ("road", "sidewalk"),
            "blob": np.zeros(50_000)}  # over the metadata budget: dropped, not read
    state, got = vio.read_checkpoint(saved({"meta": meta, "state_dict": {"w": torch.zeros(2)}}), "old.pth")
    assert got["meta"]["PALETTE"] == [[128, 64, 128], [244, 35, 232]] and got["meta"]["blob"] is None


def test_a_data_parallel_prefix_on_our_own_architecture_loads(tmp_path):
    model = build_model(ModelConfig("gc"))
    path = tmp_path / "ddp.pt"
    path.write_bytes(saved({f"module.{k}": v for k, v in model.state_dict().items()}))
    loaded = vizattn.load(str(path))
    assert loaded.config.head == "gc" and loaded.provenance.detected == "its parameter names and shapes"


@pytest.mark.parametrize("card", ["{not json", "[1, 2]", "null"])
def test_a_broken_sibling_model_card_gets_one_sentence(tmp_path, card):
    shutil.copy(PRETRAINED / "gc.safetensors", tmp_path / "gc.safetensors")
    (tmp_path / "gc.json").write_text(card)
    with pytest.raises(VizattnError, match="model card 'gc.json' beside the checkpoint (is not|holds a JSON)"):
        vizattn.load(str(tmp_path / "gc.safetensors"))
