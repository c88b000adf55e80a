"""Capture what attention modules attended, without hooks and without changing their output.

`capture(model)` opens a session (vizattn.records) that owns every module of ours in the model and every
foreign attention module an adapter in vizattn.foreign knows; it sits above both, so neither imports it.
"""
from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING

from vizattn.foreign import foreign_targets
from vizattn.modules.base import AttentionModule
from vizattn.records import SESSIONS, AttentionRecord, active_sessions  # noqa: F401 (re-exported: the public names)

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn


class Capture:
    """Context manager collecting one `AttentionRecord` per attention module of `model`, in forward order."""

    def __init__(self, model: nn.Module, modules=None):
        self.model = model
        self._names = {
            id(m): (name or m.kind) for name, m in model.named_modules() if isinstance(m, AttentionModule)
        }
        # modules vizattn did not write: the known families, or the ones named (names or globs)
        self._foreign, self._interpreters = foreign_targets(model, modules, exclude=set(self._names))
        self.records: dict[str, AttentionRecord] = {}
        self._token = None
        self._observer = None

    def __enter__(self) -> Capture:
        self.records = {}
        self._token = SESSIONS.set(SESSIONS.get() + (self,))
        if self._foreign:
            from vizattn.foreign.observe import Observer

            self._observer = Observer(self._foreign, self, self.model, self._interpreters)
            self._observer.__enter__()
        return self

    def __exit__(self, *exc) -> bool:
        try:
            if self._observer is not None:
                self._observer.__exit__(*exc)
        finally:
            self._observer = None
            SESSIONS.reset(self._token)
            self._token = None
        return False

    def add_named(self, name: str, record: AttentionRecord) -> None:
        """A record of a module vizattn did not write (from the foreign observer), under its own name."""
        self.records[name] = record

    def owns(self, module: nn.Module) -> bool:
        return id(module) in self._names

    def add(self, module: nn.Module, record: AttentionRecord) -> None:
        name = self._names[id(module)]
        self.records.pop(name, None)  # a module run again is re-recorded, at its new place in forward order
        self.records[name] = record


def capture(model: nn.Module, modules=None) -> Capture:
    """`with capture(model) as cap: model(x)` fills `cap.records` with what every attention module attended:
    ours, the foreign families vizattn knows (HF SegFormer/ViT/DINOv2, nn.MultiheadAttention, mmcv/mmseg
    blocks), and every softmax or fused attention inside the modules named in `modules` (names or globs)."""
    return Capture(model, modules)


class _CallableModule(types.ModuleType):
    """`vizattn.capture` is both this module and the function `capture`. The package imports it lazily (so the
    app's first page need not wait for PyTorch), and Python binds a submodule over the package attribute of the
    same name when it is first imported; calling the module therefore calls the function."""

    def __call__(self, model: nn.Module, modules=None) -> Capture:
        return capture(model, modules)


sys.modules[__name__].__class__ = _CallableModule
