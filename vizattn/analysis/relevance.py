"""Gradient-weighted relevance (Chefer, Gur & Wolf, ICCV 2021, "Generic Attention-model Explainability for
Interpreting Bi-Modal and Encoder-Decoder Transformers"): R ← R + Ā_l · R from R = I, layer by layer, with
Ā_l = E_h[(∇A_l ⊙ A_l)⁺] the head-mean of the attention weighted by the target's gradient, negatives dropped.

The target is the logit of the class the model predicts at the query pixel (logits bilinearly resized to the
image, as `run_model` shows them). Only the query's row of R is computed, backwards: v ← v + v · Ā_l from the last
layer to the first, each layer inside its own gradient hook while autograd's backward pass reaches it, so the
layers' Ā are never held together. Memory, honestly: SDPA models keep no N×N at all — rows are recomputed in
chunks from the captured q and k, and ∇A = ∇out · Vᵀ chunk by chunk (heads × chunk × keys float64, ≤ 8 MiB a
chunk); eager models' autograd graph holds every layer's attention (the model's own forward saves it for its
backward), and one layer's ∇A exists at a time while backward runs. Layers, class/register tokens, SegFormer's
reduced keys and the step between stages are treated as in `vizattn.analysis.rollout` (keys spread over the
cells they pool, the row moved between grids by area). The query's own cell holds R's identity (1) on top of
what flowed to it.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F

from vizattn.analysis.rollout import Layer, Rollout, finish, layers_of, move, query_token
from vizattn.errors import VizattnError
from vizattn.explore import check_pixel
from vizattn.foreign import foreign_targets
from vizattn.foreign.observe import Observer
from vizattn.model import as_model
from vizattn.modules.base import AttentionModule


class _Records:
    """A capture session of its own (the observer reports here), outside `vizattn.capture`'s sessions."""

    def __init__(self):
        self.records = {}

    def add_named(self, name, record):
        self.records[name] = record


class _LiveObserver(Observer):
    """The capture's observer that also keeps each recorded call's live output (still in the autograd graph):
    the softmax rows themselves, or an SDPA call's output."""

    def __init__(self, *args, live: dict):
        super().__init__(*args)
        self.live = live

    def __torch_function__(self, func, types, args=(), kwargs=None):
        before = len(self.session.records)
        out = super().__torch_function__(func, types, args, kwargs)
        if len(self.session.records) > before and isinstance(out, torch.Tensor):
            self.live[next(reversed(self.session.records))] = (func is F.scaled_dot_product_attention, out)
        return out


@contextmanager
def _parameters_in_graph(model):
    """Frozen parameters are made to require grad for the call (and restored), so the graph exists; the gradient
    is taken with autograd.grad, which never writes .grad."""
    frozen = [p for p in model.parameters() if not p.requires_grad]
    for p in frozen:
        p.requires_grad_(True)
    try:
        yield
    finally:
        for p in frozen:
            p.requires_grad_(False)


def _weighted_rows(layer: Layer, sdpa: bool, grad: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Ā's rows `idx` (c × keys): E_h[(∇A ⊙ A)⁺] for batch 0; ∇A read directly (softmax rows) or as ∇out · Vᵀ."""
    s = layer.stacks(0)
    g = grad.flatten(0, -3)[s][:, idx].double()
    if sdpa:
        g = g @ layer.record.data["values"][s].double().transpose(-1, -2)
    return (g * layer.record.rows_at(idx, s)).clamp(min=0).mean(0)


def relevance_details(model, image, y: int, x: int, *, modules=None) -> Rollout:
    """Chefer's relevance row of image pixel (y, x) with what was set aside (see the module docstring).
    `image`: H×W×3 uint8 (through the model's `segment`, as the app runs it) or a 1×3×H×W tensor (`model(image)`)."""
    if isinstance(image, torch.Tensor):
        if image.dim() != 4:
            raise VizattnError(f"relevance takes a 1×3×H×W tensor or an H×W×3 image; got shape {tuple(image.shape)}.")
        model = model.eval()
        shape, forward = tuple(image.shape[-2:]), (lambda: model(image))
    else:
        image = np.asarray(image)
        seg = as_model(model).eval()
        shape, forward = image.shape[:2], (lambda: seg.segment(image))
    y, x = check_pixel(y, x, shape)
    own = {id(m) for m in model.modules() if isinstance(m, AttentionModule)}
    targets, interpreters = foreign_targets(model, modules, exclude=own)
    if not targets:
        raise VizattnError("relevance follows a transformer's attention (ViT, DeiT, DINOv2, SegFormer, or softmax / "
                           "SDPA inside modules named with modules=[...]); this model has none vizattn can read.")
    session, live = _Records(), {}
    with _parameters_in_graph(model), torch.enable_grad():
        with _LiveObserver(targets, session, model, interpreters, live=live):
            out = forward()
        logits = getattr(out, "logits", out)
        if not (isinstance(logits, torch.Tensor) and logits.dim() == 4):
            raise VizattnError("relevance needs a model that predicts classes per pixel (B×K×h×w logits); this one "
                               "returns no such map.")
        if tuple(logits.shape[-2:]) != shape:
            logits = F.interpolate(logits, size=shape, mode="bilinear", align_corners=False)
        target = logits[0, int(logits[0, :, y, x].argmax()), y, x]
        layers = layers_of(session.records, modules)
        followed = [layer for layer in layers if layer.name in live and live[layer.name][1].requires_grad]
        if not followed:
            raise VizattnError("None of this model's attention is in the autograd graph (nn.MultiheadAttention's "
                               "rows are rebuilt, not used); relevance needs softmax or SDPA attention.")
        names = {layer.name for layer in followed}
        skipped = [layer.name for layer in layers if layer.name not in names]
        return _propagate(followed, live, target, query_token(followed[-1], y, x, shape), skipped)


def _propagate(layers: list[Layer], live: dict, target: torch.Tensor, query, skipped: list[str]) -> Rollout:
    q, cell = query
    state = dict(v=torch.zeros(layers[-1].tokens, dtype=torch.float64), at=len(layers) - 1, next=len(layers) - 1,
                 disorder=None, reached=set())
    state["v"][q] = 1.0

    def step(i: int, grad: torch.Tensor) -> None:
        if i > state["next"]:  # a layer reached after an earlier one: not a stack backward can walk in order
            state["disorder"] = layers[i].name
            return
        layer, sdpa = layers[i], live[layers[i].name][0]
        v = move(state["v"], layers[state["at"]], layer)
        flow = torch.zeros(layer.keys, dtype=torch.float64)
        for idx in layer.chunks(v.nonzero().flatten()):
            flow += v[idx] @ _weighted_rows(layer, sdpa, grad, idx)
        state.update(v=v + layer.spread(flow), at=i, next=i - 1)
        state["reached"].add(i)

    handles = [live[layer.name][1].register_hook(lambda g, i=i: step(i, g)) for i, layer in enumerate(layers)]
    try:
        first = live[layers[0].name][1]
        (grad_first,) = torch.autograd.grad(target, [first], allow_unused=True)
    finally:
        for h in handles:
            h.remove()
    if state["next"] == 0 and grad_first is not None:  # the input's own hook may not run where autograd stops
        step(0, grad_first)
    if state["disorder"]:
        raise VizattnError(f"{state['disorder']}'s gradient arrived after a later layer's: its attention layers do "
                           "not form one stack, so relevance cannot follow them in order; name a stack with modules=.")
    v = move(state["v"], layers[state["at"]], layers[0])
    unreached = [layer.name for i, layer in enumerate(layers) if i not in state["reached"]]  # no gradient: Ā = 0
    return finish(v.detach(), layers, cell, skipped + unreached)


def relevance(model, image, y: int, x: int, *, modules=None) -> np.ndarray:
    """Chefer et al.'s gradient-weighted relevance of the query at image pixel (y, x) for the class the model
    predicts there: an (h, w) array on the first attention layer's grid (class/register columns set aside;
    `relevance_details` reports them and the layers followed)."""
    return relevance_details(model, image, y, x, modules=modules).map
