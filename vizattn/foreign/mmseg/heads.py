"""The seven mmseg decode heads vizattn rebuilds (NL, CC, GC on FCNHead; ISA, ANN, DA, PSA), each with its
layers, its name table and the options its weights' shapes give, registered in HEADS by our short name."""
from __future__ import annotations

import math

import torch

from vizattn.errors import VizattnError
from vizattn.foreign.mmseg.base import D, H, MMSegHead, convmodule, shape
from vizattn.modules import create_attention
from vizattn.modules.base import conv_bn_relu


def inner(state, key, channels: int, name: str) -> int:
    """The width of an attention's inner projection, which the head's width is divided by: 1..channels."""
    width = shape(state, key, name=name)
    if width > channels:
        raise VizattnError(f"'{name}' declares '{key}' {width} channels wide inside a {channels}-channel head, which "
                           "no mmseg head builds; it was not loaded.")
    return width


class FCNHead(MMSegHead):
    """mmseg's FCNHead around a block: conv, block, conv, then a conv on cat(input, output)."""

    def block(self, channels: int, o: dict):
        raise NotImplementedError

    def build(self, stage_channels, ch, o):
        cin = stage_channels[-1]
        self.reduce = conv_bn_relu(cin, ch, 3)
        self.context = self.block(ch, o)
        self.project = conv_bn_relu(ch, ch, 3)
        self.concat = conv_bn_relu(cin + ch, ch, 3)

    def features(self, stages):
        x = stages[-1]
        return self.concat(torch.cat([x, self.project(self.context(self.reduce(x)))], dim=1))

    @classmethod
    def names(cls):
        return (super().names() + convmodule(f"{D}convs.0", f"{H}reduce") + convmodule(f"{D}convs.1", f"{H}project")
                + convmodule(f"{D}conv_cat", f"{H}concat"))


class NLHead(FCNHead):
    key, mmseg_name, module, signature = "nl", "NLHead", "nonlocal", f"{D}nl_block.theta.conv.weight"

    def block(self, ch, o):
        return create_attention("nonlocal", ch, reduction=o.get("reduction", 2))

    @classmethod
    def options(cls, state, channels, name):
        return {"reduction": channels // inner(state, f"{D}nl_block.theta.conv.weight", channels, name)}

    @classmethod
    def names(cls):
        return (super().names() + [(f"{D}nl_block.{n}.conv.", f"{H}context.{n}.") for n in ("theta", "phi", "g")]
                + convmodule(f"{D}nl_block.conv_out", f"{H}context.out"))


class CCHead(FCNHead):
    key, mmseg_name, module, signature = "cc", "CCHead", "criss_cross", f"{D}cca.query_conv.weight"

    def block(self, ch, o):
        return create_attention("criss_cross", ch, recurrence=o.get("recurrence", 2))

    @classmethod
    def names(cls):
        return (super().names() + [(f"{D}cca.{n}_conv.", f"{H}context.{n}.") for n in ("query", "key", "value")]
                + [(f"{D}cca.gamma.scale", f"{H}context.gamma")])


class GCHead(FCNHead):
    key, mmseg_name, module, signature = "gc", "GCHead", "gc", f"{D}gc_block.conv_mask.weight"

    def block(self, ch, o):
        return create_attention("gc", ch, ratio=o.get("ratio", 0.25), fusion=tuple(o.get("fusion_types", ("channel_add",))))

    @classmethod
    def options(cls, state, channels, name):
        add, mul = f"{D}gc_block.channel_add_conv.0.weight", f"{D}gc_block.channel_mul_conv.0.weight"
        return {"ratio": shape(state, add if add in state else mul, name=name) / channels,
                "fusion_types": [t for t in ("channel_add", "channel_mul") if f"{D}gc_block.{t}_conv.0.weight" in state]}

    @classmethod
    def names(cls):
        return super().names() + [(f"{D}gc_block.conv_mask.", f"{H}context.mask."),
                                  (f"{D}gc_block.channel_add_conv.", f"{H}context.add."),
                                  (f"{D}gc_block.channel_mul_conv.", f"{H}context.mul.")]


class ISAHead(MMSegHead):
    key, mmseg_name, module = "isa", "ISAHead", "isa"
    signature = f"{D}global_relation.key_project.0.conv.weight"

    def build(self, stage_channels, ch, o):
        self.reduce = conv_bn_relu(stage_channels[-1], ch, 3)
        self.context = create_attention("isa", ch, group=tuple(o.get("down_factor", (8, 8))),
                                        key_channels=o["isa_channels"], value_channels=ch)

    def features(self, stages):
        return self.context(self.reduce(stages[-1]))

    @classmethod
    def options(cls, state, channels, name):
        return {"isa_channels": shape(state, f"{D}global_relation.key_project.0.conv.weight", name=name)}

    @classmethod
    def names(cls):
        table = super().names() + convmodule(f"{D}in_conv", f"{H}reduce") + convmodule(f"{D}out_conv", f"{H}context.fuse")
        for theirs, ours in (("global_relation", "long_range"), ("local_relation", "short_range")):
            for proj in ("query", "key"):
                for i in (0, 1):
                    table += convmodule(f"{D}{theirs}.{proj}_project.{i}", f"{H}context.{ours}.{proj}.{i}")
            table += [(f"{D}{theirs}.value_project.", f"{H}context.{ours}.value.")]
            table += convmodule(f"{D}{theirs}.output_project", f"{H}context.{ours}.out")
        return table


class ANNHead(MMSegHead):
    key, mmseg_name, module = "ann", "ANNHead", "afnb + apnb"
    signature = f"{D}fusion.stages.0.key_project.conv.weight"

    def build(self, stage_channels, ch, o):
        cin, low = stage_channels[-1], stage_channels[-2]
        proj, scales = o["project_channels"], tuple(o.get("key_pool_scales", (1, 3, 6, 8)))
        self.fusion = create_attention("afnb", cin, low_channels=low, key_channels=proj, value_channels=proj, sizes=scales)
        self.bottleneck = conv_bn_relu(cin, ch, 3)
        self.context = create_attention("apnb", ch, key_channels=proj, value_channels=proj, sizes=scales)

    def features(self, stages):
        return self.context(self.bottleneck(self.fusion(stages[-1], stages[-2])))

    @classmethod
    def options(cls, state, channels, name):
        if any(k.startswith(f"{D}fusion.stages.1.") for k in state):
            raise VizattnError(f"'{name}' uses several ANN query scales; vizattn reads query_scales=(1,) only.")
        return {"project_channels": shape(state, f"{D}fusion.stages.0.key_project.conv.weight", name=name)}

    @classmethod
    def names(cls):
        table = super().names()
        for theirs, ours in (("fusion", "fusion"), ("context", "context")):
            s = f"{D}{theirs}.stages.0."
            table += convmodule(f"{s}key_project", f"{H}{ours}.attention.key")
            table += [(f"{s}value_project.", f"{H}{ours}.attention.value."), (f"{s}out_project.", f"{H}{ours}.attention.out.")]
            table += convmodule(f"{D}{theirs}.bottleneck", f"{H}{ours}.fuse")
        return (table + convmodule(f"{D}fusion.stages.0.query_project", f"{H}fusion.attention.query")
                + convmodule(f"{D}bottleneck", f"{H}bottleneck"))


class DAHead(MMSegHead):
    key, mmseg_name, module, signature = "da", "DAHead", "danet", f"{D}pam.key_project.weight"

    def build(self, stage_channels, ch, o):
        self.context = create_attention("danet", stage_channels[-1], reduction=ch // o["pam_channels"], branch_convs=True,
                                        out_channels=ch)

    def features(self, stages):
        return self.context(stages[-1])

    @classmethod
    def options(cls, state, channels, name):
        return {"pam_channels": inner(state, f"{D}pam.key_project.weight", channels, name)}

    @classmethod
    def names(cls):
        table = super().names() + [(f"{D}pam.{n}_project.", f"{H}context.{n}.") for n in ("query", "key", "value")]
        table += [(f"{D}pam.gamma.scale", f"{H}context.gamma_position"), (f"{D}cam.gamma.scale", f"{H}context.gamma_channel")]
        for theirs, ours in (("pam_in_conv", "position_in"), ("pam_out_conv", "position_out"),
                             ("cam_in_conv", "channel_in"), ("cam_out_conv", "channel_out")):
            table += convmodule(f"{D}{theirs}", f"{H}context.{ours}")
        return table


class PSAHead(MMSegHead):
    key, mmseg_name, module, signature = "psa", "PSAHead", "psanet", f"{D}attention.1.weight"

    def build(self, stage_channels, ch, o):
        cin = stage_channels[-1]
        self.context = create_attention("psanet", cin, inner=ch, mask_size=tuple(o["mask_size"]),
                                        psa_type=o.get("psa_type", "bi-direction"), shrink_factor=o.get("shrink_factor", 2),
                                        normalization_factor=o.get("normalization_factor", 1.0))
        self.bottleneck = conv_bn_relu(2 * cin, ch, 3)

    def features(self, stages):
        x = stages[-1]
        return self.bottleneck(torch.cat([x, self.context(x)], dim=1))

    @classmethod
    def options(cls, state, channels, name):
        m = shape(state, f"{D}attention.1.weight", name=name)
        side = math.isqrt(m)
        return {"mask_size": [side, side] if side * side == m else None,
                "psa_type": "bi-direction" if f"{D}attention_p.1.weight" in state else "collect"}

    @classmethod
    def check(cls, options, name):
        if not options.get("mask_size"):
            raise VizattnError(f"'{name}' has a non-square PSANet mask and no config saying its size; it cannot be read.")

    @classmethod
    def names(cls):
        table = super().names()
        for theirs, ours in (("", "collect"), ("_p", "distribute")):
            table += convmodule(f"{D}reduce{theirs}", f"{H}context.reduce.{ours}")
            table += convmodule(f"{D}attention{theirs}.0", f"{H}context.attention.{ours}.0")
            table += [(f"{D}attention{theirs}.1.", f"{H}context.attention.{ours}.1.")]
        return table + convmodule(f"{D}proj", f"{H}context.proj") + convmodule(f"{D}bottleneck", f"{H}bottleneck")


# our short name -> head; the one place a head is looked up
HEADS: dict[str, type[MMSegHead]] = {c.key: c for c in (NLHead, ISAHead, CCHead, GCHead, ANNHead, DAHead, PSAHead)}
HEAD_NAMES = {k: c.mmseg_name for k, c in HEADS.items()}
