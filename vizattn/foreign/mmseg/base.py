"""What every rebuilt mmseg decode head shares: the classifier, the backbone's and classifier's names, and the
renaming of an mmseg state dict by a head's own name table (longest prefix wins)."""
from __future__ import annotations

import torch
from torch import nn

from vizattn.errors import VizattnError

D, H = "decode_head.", "head."  # mmseg's prefix for the decode head, and ours
# keys a checkpoint may carry that inference does not use (training-only outputs)
IGNORED_PREFIXES = ("auxiliary_head.", "decode_head.pam_conv_seg.", "decode_head.cam_conv_seg.",
                    "decode_head.loss_decode.", "data_preprocessor.")
# APNB shares one projection for queries and keys; mmseg's state dict lists it under both names
ALIASES = {"decode_head.context.stages.0.query_project.": "decode_head.context.stages.0.key_project."}


def convmodule(theirs: str, ours: str) -> list[tuple[str, str]]:
    """mmcv's ConvModule (conv, bn) against our conv-BN-ReLU Sequential (0, 1)."""
    return [(f"{theirs}.conv.", f"{ours}.0."), (f"{theirs}.bn.", f"{ours}.1.")]


def shape(state, key, dim=0, name="This mmseg checkpoint") -> int:
    """One size of a weight the architecture is read from: present, with that dimension, and at least 1 (a
    zero-width layer divides by zero when built, and costs nothing to declare in a file)."""
    if key not in state:
        raise VizattnError(f"{_quoted(name)} lacks '{key}'; it does not look like a supported model.")
    t = state[key]
    if t.dim() <= dim or int(t.shape[dim]) < 1:
        raise VizattnError(f"{_quoted(name)} has '{key}' of shape {tuple(t.shape)}, which no mmseg layer has; the "
                           "checkpoint is damaged or hand-made, so it was not loaded.")
    return int(t.shape[dim])


def _quoted(name: str) -> str:
    return name if name == "This mmseg checkpoint" else f"'{name}'"


class MMSegHead(nn.Module):
    """A decode head laid out as mmseg's, the attention inside always one of our modules, then mmseg's
    classifier (dropout, 1×1 conv). A subclass builds its layers, runs them, and names them."""

    key = ""  # our short name for the head, as MMSegConfig.head spells it
    mmseg_name = ""  # mmseg's class, as its configs spell it
    signature = ""  # a state-dict key only this head has
    module = ""  # the vizattn attention module(s) inside, for the model card

    def __init__(self, cfg, stage_channels: list[int]):  # cfg: an MMSegConfig (config.py imports this module)
        super().__init__()
        self.build(stage_channels, cfg.channels, cfg.options)
        self.classifier = nn.Sequential(nn.Dropout2d(0.1), nn.Conv2d(cfg.channels, cfg.num_classes, 1))

    def build(self, stage_channels: list[int], channels: int, options: dict) -> None:
        raise NotImplementedError

    def features(self, stages: list[torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, stages: list[torch.Tensor]) -> torch.Tensor:
        return self.classifier(self.features(stages))

    @classmethod
    def options(cls, state: dict[str, torch.Tensor], channels: int, name: str) -> dict:
        """The head's hyper-parameters as its weights' shapes tell them."""
        return {}

    @classmethod
    def check(cls, options: dict, name: str) -> None:
        """Refuse options the weights and config together still leave unknown."""

    @classmethod
    def names(cls) -> list[tuple[str, str]]:
        """(mmseg prefix, our prefix) pairs; the backbone's names are the same on both sides."""
        return [("backbone.", "backbone."), (f"{D}conv_seg.", f"{H}classifier.1.")]

    @classmethod
    def rename(cls, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """mmseg names -> ours by the head's table (longest prefix wins); training-only keys dropped by name.
        A key the table does not know is kept as it is, so the fit check names it."""
        table = sorted(cls.names(), key=lambda p: -len(p[0]))
        out = {}
        for key, value in state.items():
            if key.startswith(IGNORED_PREFIXES):
                continue
            alias = next((a for a in ALIASES if key.startswith(a)), None)
            if alias:
                twin = state.get(ALIASES[alias] + key[len(alias):])
                if twin is None or twin.shape != value.shape or not torch.equal(twin, value):
                    raise VizattnError(f"'{key}' should repeat APNB's shared key projection but differs from it; "
                                       "the checkpoint is inconsistent.")
                continue
            for theirs, ours in table:
                if key.startswith(theirs):
                    key = ours + key[len(theirs):]
                    break
            out[key] = value.reshape(1) if key.endswith((".gamma", "gamma_position", "gamma_channel")) else value
        return out
