"""Our modules against the reference implementations in mmcv and mmsegmentation.

Each case builds the reference block, randomises every parameter and normalisation statistic (zero-initialised
gammas and output convs would hide whole branches), copies them into our module through one explicit name
table, runs both on the same input and compares the outputs and the attention rows: the reference's own
softmax outputs, logged as they are computed, against our records' query maps.
`vizattn bench fidelity` prints the table; tests/modules/test_references.py asserts it.
"""
from __future__ import annotations

import importlib
import sys
import types
from dataclasses import dataclass
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from vizattn.capture import capture
from vizattn.errors import VizattnError
from vizattn.modules import create_attention

SIZES = ((45, 45), (32, 64))  # 45×45 makes ISA pad its 8×8 groups and ANN's pooling regions overlap
CHANNELS = 32
BATCH = 2


class _StandInExtension(types.ModuleType):
    """Stands in for mmcv's compiled ops (mmcv-lite has none): importing works, calling an op fails."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)

        def missing(*_, **__):
            raise RuntimeError(f"mmcv's compiled op '{name}' is not installed (mmcv-lite)")

        return missing


def import_mmseg():
    """mmseg's model code, importable without mmcv's compiled extension (none of these blocks calls it)."""
    try:
        importlib.import_module("mmcv._ext")
    except ModuleNotFoundError:
        sys.modules.setdefault("mmcv._ext", _StandInExtension("mmcv._ext"))
    except ImportError:
        pass
    try:
        return importlib.import_module("mmseg.models")
    except ImportError as e:
        raise VizattnError(
            f"mmsegmentation could not be imported ({e}); install the requirements: pip install -r requirements.txt."
        ) from None


class SoftmaxLog(TorchFunctionMode):
    """Keeps the output of every softmax computed while active (F.softmax, Tensor.softmax, nn.Softmax)."""

    def __init__(self):
        super().__init__()
        self.outputs: list[torch.Tensor] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func in (F.softmax, torch.softmax, torch.Tensor.softmax):
            self.outputs.append(out.detach())
        return out


def randomise(module: nn.Module, seed: int = 0) -> nn.Module:
    """Every parameter and BN/LN statistic random and non-degenerate (scales positive, variances ≥ 0.5)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in list(module.named_parameters()) + list(module.named_buffers()):
            if name.endswith("num_batches_tracked"):
                continue
            shape, leaf = t.shape, name.rsplit(".", 1)[-1]
            if leaf == "running_var":
                new = 0.5 + torch.rand(shape, generator=g)
            elif leaf == "weight" and t.dim() == 1 or leaf in ("scale", "gamma"):  # norm scales, Scale, gammas
                new = 0.5 + torch.rand(shape, generator=g)
            else:  # conv weights, biases, running means
                fan_in = t[0].numel() if t.dim() > 1 else 1
                new = torch.randn(shape, generator=g) * (0.3 if t.dim() == 1 else fan_in ** -0.5)
            t.copy_(new.to(t.dtype))
    return module


def conv_bn(ours: str, theirs: str, conv: str = "conv", bn: str = "bn", ours_bn: str | None = None) -> dict[str, str]:
    """Names of an mmcv ConvModule (conv without bias + BN) against ours (Sequential conv, BN[, ReLU])."""
    ours_bn = ours_bn or f"{ours}.1"
    table = {f"{ours}.0.weight": f"{theirs}.{conv}.weight"}
    table.update({f"{ours_bn}.{k}": f"{theirs}.{bn}.{k}" for k in ("weight", "bias", "running_mean", "running_var")})
    return table


def plain(ours: str, theirs: str, bias: bool = True) -> dict[str, str]:
    return {f"{ours}.weight": f"{theirs}.weight", **({f"{ours}.bias": f"{theirs}.bias"} if bias else {})}


def copy_by_table(ours: nn.Module, reference: nn.Module, table: dict[str, str]) -> None:
    """Copy reference tensors into ours by name; every tensor of ours must be named exactly once."""
    mine = {k: v for k, v in ours.state_dict().items() if not k.endswith("num_batches_tracked")}
    theirs = reference.state_dict()
    if set(table) != set(mine):
        raise AssertionError(f"name table off: unmapped {sorted(set(mine) - set(table))}, "
                             f"unknown {sorted(set(table) - set(mine))}")
    with torch.no_grad():
        for k, ref_name in table.items():
            mine[k].copy_(theirs[ref_name].reshape(mine[k].shape))


@dataclass
class Case:
    """One module against one reference: how to build both, the name table, and which softmax is which row.
    A table of None means the reference is written from the official equations and reads our module's own
    parameters (PSA, LESA: mmseg ships neither)."""

    name: str
    reference: str
    build: Callable[[object, int], tuple[nn.Module, nn.Module, dict[str, str] | None]]  # (mmseg, C) -> ref, ours, table
    rows: Callable[[list[torch.Tensor], object, int, int, int], list[tuple[np.ndarray, np.ndarray]]]
    forward_ref: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] = lambda ref, x, low: ref(x)
    forward_ours: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] = lambda m, x, low: m(x)
    sizes: tuple[tuple[int, int], ...] = SIZES
    needs_mmseg: bool = True


def _bn_cfg():
    return dict(type="BN", requires_grad=True)


def _build_nl(mm, c):
    from mmcv.cnn import NonLocal2d

    ref = NonLocal2d(c, reduction=2, use_scale=True, norm_cfg=_bn_cfg(), mode="embedded_gaussian")
    table = {**plain("theta", "theta.conv"), **plain("phi", "phi.conv"), **plain("g", "g.conv"),
             **conv_bn("out", "conv_out")}
    return ref, create_attention("nonlocal", c), table


def _build_gc(mm, c):
    from mmcv.cnn import ContextBlock

    ref = ContextBlock(c, ratio=1 / 4, pooling_type="att", fusion_types=("channel_add", "channel_mul"))
    table = {**plain("mask", "conv_mask")}
    for ours, theirs in (("add", "channel_add_conv"), ("mul", "channel_mul_conv")):
        for i in (0, 1, 3):
            table.update(plain(f"{ours}.{i}", f"{theirs}.{i}"))
    return ref, create_attention("gc", c, fusion=("channel_add", "channel_mul")), table


def _build_cc(mm, c):
    from mmcv.ops import CrissCrossAttention

    ref = CrissCrossAttention(c)
    table = {**plain("query", "query_conv"), **plain("key", "key_conv"), **plain("value", "value_conv"),
             "gamma": "gamma.scale"}
    return ref, create_attention("criss_cross", c, recurrence=2), table


def _build_isa(mm, c):
    from mmseg.models.decode_heads.isa_head import ISAHead

    ref = ISAHead(isa_channels=c // 2, down_factor=(8, 8), in_channels=c, channels=c, num_classes=2,
                  norm_cfg=_bn_cfg())
    ref.in_conv, ref.conv_seg = nn.Identity(), nn.Identity()  # the block between them is ISA itself
    table = {**conv_bn("fuse", "out_conv")}
    for ours, theirs in (("long_range", "global_relation"), ("short_range", "local_relation")):
        for proj in ("query", "key"):
            for i in (0, 1):
                table.update(conv_bn(f"{ours}.{proj}.{i}", f"{theirs}.{proj}_project.{i}"))
        table.update(plain(f"{ours}.value", f"{theirs}.value_project"))
        table.update(conv_bn(f"{ours}.out", f"{theirs}.output_project"))
    return ref, create_attention("isa", c, group=(8, 8), key_channels=c // 2), table


def _anchor_table(with_query: bool):
    table = {**conv_bn("attention.key", "stages.0.key_project"), **plain("attention.value", "stages.0.value_project"),
             **plain("attention.out", "stages.0.out_project"), **conv_bn("fuse", "bottleneck")}
    if with_query:
        table.update(conv_bn("attention.query", "stages.0.query_project"))
    return table


def _build_apnb(mm, c):
    from mmseg.models.decode_heads.ann_head import APNB

    ref = APNB(in_channels=c, channels=c // 2, out_channels=c, query_scales=(1,), key_pool_scales=(1, 3, 6, 8),
               conv_cfg=None, norm_cfg=_bn_cfg(), act_cfg=dict(type="ReLU"))
    return ref, create_attention("apnb", c, key_channels=c // 2, value_channels=c // 2), _anchor_table(False)


LOW_CHANNELS = 24  # AFNB's low-level feature is narrower than the high-level one, as in ANN (1024 vs 2048)


def _build_afnb(mm, c):
    from mmseg.models.decode_heads.ann_head import AFNB

    ref = AFNB(low_in_channels=LOW_CHANNELS, high_in_channels=c, channels=c // 2, out_channels=c, query_scales=(1,),
               key_pool_scales=(1, 3, 6, 8), conv_cfg=None, norm_cfg=_bn_cfg(), act_cfg=dict(type="ReLU"))
    ours = create_attention("afnb", c, low_channels=LOW_CHANNELS, key_channels=c // 2, value_channels=c // 2)
    return ref, ours, _anchor_table(True)


class _DualAttention(nn.Module):
    """mmseg's PAM and CAM on one input; each adds the input, so their sum minus x is the one-residual form."""

    def __init__(self, mm, c):
        super().__init__()
        from mmseg.models.decode_heads.da_head import CAM, PAM

        self.pam, self.cam = PAM(c, c // 8), CAM()

    def forward(self, x):
        return self.pam(x) + self.cam(x) - x


class NaivePSAMask(nn.Module):
    """The PSAMask op written from its CPU kernel, one query position at a time (mmcv-lite lacks the compiled op):
    for position p and every q inside p's window, collect puts p's mask value for offset q − p at [q, p],
    distribute at [p, q]; everything outside the window stays 0."""

    def __init__(self, kind: str, mask_size):
        super().__init__()
        self.kind, self.mask_size = kind, tuple(mask_size)

    def forward(self, mask):
        n, _, h, w = mask.shape
        mh, mw = self.mask_size
        hh, hw = (mh - 1) // 2, (mw - 1) // 2
        src = mask.view(n, mh, mw, h, w)
        out = mask.new_zeros(n, h, w, h, w)
        for y in range(h):
            for x in range(w):
                i0, i1, j0, j1 = max(0, hh - y), min(mh, h + hh - y), max(0, hw - x), min(mw, w + hw - x)
                window = src[:, i0:i1, j0:j1, y, x]
                ys, xs = slice(i0 + y - hh, i1 + y - hh), slice(j0 + x - hw, j1 + x - hw)
                if self.kind == "collect":
                    out[:, ys, xs, y, x] = window
                else:
                    out[:, y, x, ys, xs] = window
        return out.view(n, h * w, h, w)


PSANET_MASK = (15, 15)


def _build_psanet(mm, c):
    from mmseg.models.decode_heads.psa_head import PSAHead

    ref = PSAHead(mask_size=PSANET_MASK, psa_type="bi-direction", compact=False, shrink_factor=2,
                  normalization_factor=1.0, psa_softmax=True, in_channels=c, channels=c // 2, num_classes=2,
                  norm_cfg=_bn_cfg())
    ref.psamask_collect, ref.psamask_distribute = NaivePSAMask("collect", PSANET_MASK), NaivePSAMask("distribute", PSANET_MASK)
    ref.bottleneck, ref.conv_seg = _FirstHalf(c), nn.Identity()  # compare the attention part: up to proj + resize
    table = {}
    for ours, theirs in (("collect", ""), ("distribute", "_p")):
        table.update(conv_bn(f"reduce.{ours}", f"reduce{theirs}"))
        table.update(conv_bn(f"attention.{ours}.0", f"attention{theirs}.0"))
        table.update(plain(f"attention.{ours}.1", f"attention{theirs}.1", bias=False))
    table.update(conv_bn("proj", "proj"))
    ours = create_attention("psanet", c, inner=c // 2, mask_size=PSANET_MASK)
    return ref, ours, table


class _FirstHalf(nn.Module):
    """Stands in for PSAHead's bottleneck, which receives cat(identity, attention output): keeps the latter."""

    def __init__(self, c):
        super().__init__()
        self.c = c

    def forward(self, t):
        return t[:, self.c :]


def _rows_psanet(logged, rec, b, y, x):
    h, w = rec.grid
    col, dis = logged  # B×N×h×w after PSAMask and softmax over dim 1
    return [(rec.query_map(y, x, "collect", b), col[b, :, y, x].reshape(h, w).numpy()),
            (rec.query_map(y, x, "distribute", b), dis[b, :, y, x].reshape(h, w).numpy())]


def _build_danet(mm, c):
    table = {**plain("query", "pam.query_project"), **plain("key", "pam.key_project"),
             **plain("value", "pam.value_project"), "gamma_position": "pam.gamma.scale",
             "gamma_channel": "cam.gamma.scale"}
    return _DualAttention(mm, c), create_attention("danet", c), table


class _Equations(nn.Module):
    """A reference written from the official equations, over our module's own parameters."""

    def __init__(self, module: nn.Module, equations: Callable):
        super().__init__()
        self.module, self.equations = module, equations

    def forward(self, x):
        return self.equations(self.module, x)[0]


def _build_equations(kind: str, **options):
    def build(mm, c):
        from benchmarks.equations import lesa_reference, psa_reference

        ours = create_attention(kind, c, **options)
        return _Equations(ours, psa_reference if kind == "psa" else lesa_reference), ours, None

    return build


def positions(h: int, w: int, count: int = 24) -> list[tuple[int, int]]:
    """Corners, centre and a fixed random sample of query positions."""
    rng = np.random.default_rng(h * 1000 + w)
    fixed = [(0, 0), (0, w - 1), (h - 1, 0), (h - 1, w - 1), (h // 2, w // 2)]
    return fixed + [(int(rng.integers(h)), int(rng.integers(w))) for _ in range(count - len(fixed))]


def _rows_dense(logged, rec, b, y, x, view=None, index=0):
    """Reference softmax of shape B×N×N (NL, DANet's PAM)."""
    h, w = rec.grid
    return [(rec.query_map(y, x, view, b), logged[index][b, y * w + x].reshape(h, w).numpy())]


def _rows_gc(logged, rec, b, y, x):
    return [(rec.query_map(y, x, "mask", b), logged[0][b].reshape(rec.grid).numpy())]


def _rows_cc(logged, rec, b, y, x):
    h, w = rec.grid
    out = []
    for r, att in enumerate(logged, start=1):  # B×H×W×(H+W): the column entries, then the row entries
        m = torch.zeros(h, w, dtype=att.dtype)
        m[:, x] += att[b, y, x, :h]
        m[y, :] += att[b, y, x, h:]
        out.append((rec.query_map(y, x, f"loop{r}", b), m.numpy()))
    return out


def _rows_isa(logged, rec, b, y, x):
    dh, dw = rec.config["group"]
    oh, ow = rec.config["lattice"]
    Y, X = y + rec.config["pad"][0], x + rec.config["pad"][2]
    i, a, j, c = Y // dh, Y % dh, X // dw, X % dw
    glob, loc = logged  # (B·dh·dw)×(oh·ow)×(oh·ow), then (B·oh·ow)×(dh·dw)×(dh·dw)
    long = rec.query_map(y, x, "long", b, padded=True)[a::dh, c::dw]
    short = rec.query_map(y, x, "short", b, padded=True)[i * dh : (i + 1) * dh, j * dw : (j + 1) * dw]
    return [(long, glob[(b * dh + a) * dw + c, i * ow + j].reshape(oh, ow).numpy()),
            (short, loc[(b * oh + i) * ow + j, a * dw + c].reshape(dh, dw).numpy())]


def _rows_anchor(logged, rec, b, y, x):
    mine = torch.cat([t.flatten() for t in rec.anchor_weights(y, x, b).values()]).double().numpy()
    return [(mine, logged[0][b, y * rec.grid[1] + x].numpy())]


def _rows_danet(logged, rec, b, y, x):
    pos = _rows_dense(logged, rec, b, y, x, "position", 0)
    return pos + [(rec.data["channel_affinity"][b].double().numpy(), logged[1][b].numpy())]


def _rows_psa(logged, rec, b, y, x):
    """The channel branch's softmax over positions, and the spatial branch's own softmax (per variant)."""
    soft = logged[1][b]  # 1×N (parallel) or C/2×N (sequential)
    return [(rec.query_map(y, x, "channel_pool", b), logged[0][b, 0].reshape(rec.grid).numpy()),
            (rec.data["spatial_softmax"][b].double().reshape(soft.shape).numpy(), soft.numpy())]


def _rows_lesa(logged, rec, b, y, x):
    h, w = rec.grid
    att = logged[0][b, :, y * w + x]  # heads×N
    return [(rec.query_map(y, x, f"head{i}", b), att[i].reshape(h, w).numpy()) for i in range(len(att))]


CASES = {
    "nonlocal": Case("nonlocal", "mmcv NonLocal2d", _build_nl, _rows_dense),
    "isa": Case("isa", "mmseg ISAHead (in_conv..out_conv)", _build_isa, _rows_isa,
                forward_ref=lambda ref, x, low: ref([x])),
    "criss_cross": Case("criss_cross", "mmcv CrissCrossAttention ×2", _build_cc, _rows_cc,
                        forward_ref=lambda ref, x, low: ref(ref(x))),
    "gc": Case("gc", "mmcv ContextBlock (add + mul)", _build_gc, _rows_gc),
    "apnb": Case("apnb", "mmseg APNB", _build_apnb, _rows_anchor),
    "afnb": Case("afnb", "mmseg AFNB", _build_afnb, _rows_anchor,
                 forward_ref=lambda ref, x, low: ref(low, x), forward_ours=lambda m, x, low: m(x, low)),
    "danet": Case("danet", "mmseg PAM + CAM − x", _build_danet, _rows_danet),
    "psanet": Case("psanet", "mmseg PSAHead (PSAMask from its kernel)", _build_psanet, _rows_psanet,
                   forward_ref=lambda ref, x, low: ref([x])),
    "psa_parallel": Case("psa (parallel)", "official PSA_p equations", _build_equations("psa", mode="parallel"),
                         _rows_psa, needs_mmseg=False),
    "psa_sequential": Case("psa (sequential)", "official PSA_s equations", _build_equations("psa", mode="sequential"),
                           _rows_psa, needs_mmseg=False),
    "lesa": Case("lesa", "official LESA equations, no position term", _build_equations("lesa", heads=4),
                 _rows_lesa, needs_mmseg=False),
    "lesa_position": Case("lesa (position=(9, 9))", "official LESA equations, relative position",
                          _build_equations("lesa", heads=4, position=(9, 9)), _rows_lesa, sizes=((9, 9),),
                          needs_mmseg=False),
}


@dataclass
class Result:
    name: str
    reference: str
    size: tuple[int, int]
    dtype: str
    output_diff: float
    attention_diff: float
    rows: int


def compare(name: str, size: tuple[int, int], dtype: torch.dtype = torch.float64, seed: int = 0,
            tamper: Callable[[nn.Module], None] | None = None) -> Result:
    """Build, randomise, copy, run both and compare; the largest absolute differences.
    `tamper` changes our module after the copy (tests use it to show a difference is caught)."""
    case = CASES[name]
    mm = import_mmseg() if case.needs_mmseg else None
    torch.manual_seed(seed)
    ref, ours, table = case.build(mm, CHANNELS)
    randomise(ref, seed)
    if table is not None:
        copy_by_table(ours, ref, table)
    if tamper is not None:
        tamper(ours)
    ref, ours = ref.to(dtype).eval(), ours.to(dtype).eval()
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(BATCH, CHANNELS, *size, generator=g).to(dtype)
    low = torch.randn(BATCH, LOW_CHANNELS, *size, generator=g).to(dtype)
    with torch.no_grad():
        with SoftmaxLog() as log:
            expected = case.forward_ref(ref, x, low)
        with capture(ours) as cap:
            got = case.forward_ours(ours, x, low)
    rec = cap.records[next(iter(cap.records))]
    logged = [t.double() for t in log.outputs]
    pairs = [p for b in range(BATCH) for y, xx in positions(*rec.grid) for p in case.rows(logged, rec, b, y, xx)]
    att = max(float(np.abs(np.asarray(m, np.float64) - r).max()) for m, r in pairs)
    out = float((got - expected).abs().max())
    return Result(case.name, case.reference, tuple(size), str(dtype).replace("torch.", ""), out, att, len(pairs))


HEADER = ["module", "reference", "input", "max abs Δ output float32", "max abs Δ output float64",
          "max abs Δ attention float32", "max abs Δ attention float64", "rows compared"]


def run(names=None, progress: bool = True) -> list[list]:
    """One table row per (case, input size): float32 and float64 runs side by side."""
    import warnings

    from tqdm import tqdm

    jobs = [(n, s) for n in (names or CASES) for s in CASES[n].sizes]
    rows = []
    for n, s in tqdm(jobs, desc="fidelity", disable=not progress):
        with warnings.catch_warnings():  # mmseg's advice on building its heads (binary classes, loss defaults)
            warnings.filterwarnings("ignore", category=UserWarning, module=r"mmseg\.")
            f32, f64 = compare(n, s, torch.float32), compare(n, s, torch.float64)
        rows.append([f64.name, f64.reference, f"{BATCH}×{CHANNELS}×{s[0]}×{s[1]}", f"{f32.output_diff:.1e}",
                     f"{f64.output_diff:.1e}", f"{f32.attention_diff:.1e}", f"{f64.attention_diff:.1e}", f64.rows])
    return rows
