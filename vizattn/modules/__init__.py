"""The attention-module zoo, created by name through one factory."""
from __future__ import annotations

from torch import nn

from vizattn.errors import VizattnError
from vizattn.modules.ann import AFNB, APNB
from vizattn.modules.base import AttentionModule, dense_attention
from vizattn.modules.criss_cross import CrissCross
from vizattn.modules.danet import DANet
from vizattn.modules.gc import GlobalContext
from vizattn.modules.isa import ISA
from vizattn.modules.lesa import LESA
from vizattn.modules.non_local import NonLocal
from vizattn.modules.psa import PolarizedSelfAttention
from vizattn.modules.psanet import PSANet

REGISTRY: dict[str, type[AttentionModule]] = {
    cls.kind: cls
    for cls in (NonLocal, ISA, CrissCross, GlobalContext, LESA, PolarizedSelfAttention, APNB, AFNB, DANet, PSANet)
}


def list_attention() -> list[str]:
    """Names accepted by `create_attention`."""
    return sorted(REGISTRY)


def create_attention(name: str, channels: int, **kw) -> nn.Module:
    """A context module mapping B×channels×H×W to the same shape; kw are the module's own options."""
    if name not in REGISTRY:
        raise VizattnError(f"Unknown attention module '{name}'; choose one of {', '.join(list_attention())}.")
    return REGISTRY[name](channels, **kw)


__all__ = ["AttentionModule", "REGISTRY", "create_attention", "dense_attention", "list_attention"]
