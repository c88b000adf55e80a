"""Every number a checkpoint's configuration may carry is untrusted data: a type and a bound for each field,
checked before anything is built, and a cost estimate of the model it describes, computed on the `meta`
device (shapes only: nothing is allocated and nothing runs) before the real model is built."""
from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable

import torch

from vizattn.errors import VizattnError

# A model vizattn builds must stay within these at the largest image the app and CLI feed it (1024 px).
ESTIMATE_SIZE = (1024, 1024)
MAX_GFLOPS = 1000.0  # our zoo's heaviest head (LESA) takes 91
MAX_TENSOR_BYTES = 8 * 2**30  # the largest single intermediate (dense attention at a 128² grid is 1 GiB)
# Foreign models (mmseg checkpoints, transformers folders) are costed at the largest input they will be given (an
# mmseg config's test scale: 2048×1024 for Cityscapes), where real ones need more compute than ours: mmseg's
# R-101-D8 DANet takes 6,700 GFLOPs there, SegFormer-B5 1,100 at 1024². Their largest tensor keeps the same limit.
MAX_FOREIGN_GFLOPS = 10_000.0


@dataclass(frozen=True)
class Bound:
    check: Callable[[object], bool]
    text: str


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def integer(lo: int, hi: int) -> Bound:
    return Bound(lambda v: _is_int(v) and lo <= v <= hi, f"an integer {lo}..{hi}")


def number(lo: float, hi: float) -> Bound:
    return Bound(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and lo <= v <= hi,
                 f"a number {lo:g}..{hi:g}")


def integers(lo: int, hi: int, count: int | None = None, most: int = 8) -> Bound:
    """`count` integers (or 1..`most` of them) each in lo..hi, as a list or tuple."""
    def ok(v):
        n_ok = len(v) == count if count else 1 <= len(v) <= most
        return isinstance(v, (list, tuple)) and n_ok and all(_is_int(x) and lo <= x <= hi for x in v)
    many = f"{count}" if count else f"1..{most}"
    return Bound(ok, f"{many} integers {lo}..{hi}")


def numbers(lo: float, hi: float, count: int) -> Bound:
    """`count` numbers each in lo..hi, as a list or tuple."""
    one = number(lo, hi)
    return Bound(lambda v: isinstance(v, (list, tuple)) and len(v) == count and all(one.check(x) for x in v),
                 f"{count} numbers {lo:g}..{hi:g}")


def either(*bounds: Bound) -> Bound:
    """A value that meets any of `bounds` (e.g. one integer, or one per stage)."""
    return Bound(lambda v: any(b.check(v) for b in bounds), " or ".join(b.text for b in bounds))


def choice(*values) -> Bound:
    return Bound(lambda v: isinstance(v, (str, bool)) and v in values, " or ".join(map(str, values)))


def subset(*values) -> Bound:
    return Bound(lambda v: isinstance(v, (list, tuple)) and 1 <= len(v) <= len(values) and set(v) <= set(values),
                 f"a non-empty list of {', '.join(values)}")


FLAG = choice(True, False)


def check(values: dict, bounds: dict[str, Bound], name: str, what: str = "configuration",
          unknown_allowed: bool = True) -> None:
    """One sentence for the first value of the wrong type or out of bounds (or, if not allowed, unknown)."""
    for key, v in values.items():
        bound = bounds.get(key)
        if bound is None:
            if unknown_allowed:
                continue
            raise VizattnError(f"'{name}' has a {what} option '{key}' that vizattn does not know "
                               f"(known: {', '.join(bounds) or 'none'}); it was not loaded.")
        if not bound.check(v):
            shown = repr(v) if len(repr(v)) <= 40 else repr(v)[:37] + "..."
            raise VizattnError(f"'{name}' has a {what} with {key}={shown}, outside what vizattn accepts "
                               f"({bound.text}); it was not loaded.")


def estimate_cost(model: torch.nn.Module, size: tuple[int, int] = ESTIMATE_SIZE, channels: int = 3) -> tuple[float, int]:
    """(GFLOPs, bytes of the largest intermediate tensor) of one forward of a model built on the meta device."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import FlopCounterMode

    class Largest(TorchDispatchMode):
        biggest = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(t, torch.Tensor):
                    self.biggest = max(self.biggest, t.numel() * t.element_size())
            return out

    largest = Largest()
    x = torch.empty(1, channels, *size, device="meta")
    with torch.no_grad(), FlopCounterMode(display=False) as flops, largest:
        model(x)
    return flops.get_total_flops() / 1e9, largest.biggest


def check_cost(model: torch.nn.Module, name: str, size: tuple[int, int] = ESTIMATE_SIZE,
               max_gflops: float | None = None) -> None:
    """Refuse, with one sentence, a model whose forward at `size` (h, w; by default 1024×1024) would exceed the
    compute limit (MAX_GFLOPS unless `max_gflops` is given) or the memory limit."""
    limit = MAX_GFLOPS if max_gflops is None else max_gflops
    gflops, biggest = estimate_cost(model, size)
    if gflops > limit or biggest > MAX_TENSOR_BYTES:
        raise VizattnError(
            f"'{name}' describes a model that would need {gflops:,.0f} GFLOPs and a {biggest / 2**30:.1f} GiB tensor "
            f"for one {size[0]}×{size[1]} image (limits: {limit:,.0f} GFLOPs, {MAX_TENSOR_BYTES // 2**30} GiB); it was "
            "not loaded.")
