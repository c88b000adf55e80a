"""mmsegmentation checkpoints as vizattn models, in plain torch: no mmcv, no CUDA, no config file needed.

An mmseg R-50/101-D8 model with an NL, ISA, CCNet, GCNet, ANN, DANet or PSANet decode head is rebuilt from
our ResNetV1c and our attention modules, so its attention comes out as our records. The head type and its
hyper-parameters are read from the state dict's keys and shapes, refined by the checkpoint's `meta` where
present (config text parsed as data with `ast`, never executed). Each head (heads.py) carries the table mapping
mmseg's parameter names onto ours. The auxiliary head is not needed for inference: its keys are ignored, by name.
"""
from vizattn.data.palettes import CITYSCAPES, CITYSCAPES_PALETTE, VOC, classes_and_palette, spread_palette, voc_palette
from vizattn.foreign.mmseg.base import MMSegHead
from vizattn.foreign.mmseg.checkpoint import from_checkpoint, is_mmseg_state
from vizattn.foreign.mmseg.config import MMSegConfig, config_from_state, parse_config
from vizattn.foreign.mmseg.heads import HEAD_NAMES, HEADS
from vizattn.foreign.mmseg.model import MMSegModel

__all__ = ["CITYSCAPES", "CITYSCAPES_PALETTE", "HEADS", "HEAD_NAMES", "MMSegConfig", "MMSegHead", "MMSegModel", "VOC",
           "classes_and_palette", "config_from_state", "from_checkpoint", "is_mmseg_state", "parse_config",
           "spread_palette", "voc_palette"]
