"""Long-running work on a shared server. Streamlit runs every session in a thread of one process; a forward of a
large checkpoint takes tens of seconds on 2 cores and a few GB. So forwards take turns (a slot, by default one
at a time, waited for with a deadline) and each runs within a time budget, checked whenever the forward reports
progress (every backbone stage and slide crop of an mmseg model) and before every module's forward of any model
(a transformers folder, a factory's model, captum's attribution passes) run inside the slot. Clicks only read
captured records and never wait for a slot: one session's forward cannot stop another session's clicks from
being answered."""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from contextvars import ContextVar

from vizattn.errors import VizattnError

FORWARD_BUDGET_S = 300.0  # an mmseg R-50-D8 forward at 1024×2048 takes 38-55 s here


class WorkGuard:
    def __init__(self, budget_s: float = FORWARD_BUDGET_S, slots: int = 1):
        self.budget_s = budget_s
        self._slots = threading.BoundedSemaphore(slots)

    @contextmanager
    def slot(self, waiting=None):
        """Hold a slot for one piece of heavy work; `waiting()` is called if the slot is taken (to say so)."""
        if not self._slots.acquire(blocking=False):
            if waiting is not None:
                waiting()
            if not self._slots.acquire(timeout=self.budget_s):
                raise VizattnError(f"The server has been busy with another session's model for over "
                                   f"{self.budget_s:.0f} s; try again in a minute.")
        try:
            deadline = Deadline(self.budget_s)
            with watching(deadline):
                yield deadline
        finally:
            self._slots.release()


class Deadline:
    def __init__(self, budget_s: float):
        self.budget_s, self.start = budget_s, time.monotonic()

    def check(self) -> None:
        """Raise once the budget is spent (called from progress callbacks, between stages of the forward)."""
        elapsed = time.monotonic() - self.start
        if elapsed > self.budget_s:
            raise VizattnError(f"This model took over {self.budget_s:.0f} s on this image and was stopped so that "
                               "other sessions are served; try a smaller image or a smaller model.")


_WATCHED: ContextVar[Deadline | None] = ContextVar("vizattn_deadline", default=None)
_HOOK = []  # the one global pre-forward hook, installed on first use
_HOOK_LOCK = threading.Lock()


@contextmanager
def watching(deadline: Deadline):
    """Within this block, in this thread or task only, every torch module's forward first checks `deadline`: a
    model that reports no progress of its own is still stopped at its next module boundary."""
    with _HOOK_LOCK:
        if not _HOOK:
            import torch

            _HOOK.append(torch.nn.modules.module.register_module_forward_pre_hook(_check_watched))
    token = _WATCHED.set(deadline)
    try:
        yield deadline
    finally:
        _WATCHED.reset(token)


def _check_watched(module, args) -> None:
    deadline = _WATCHED.get()
    if deadline is not None:
        deadline.check()
