"""Records grouped into layers from their module names, for a navigator: one group per transformer layer
(SegFormer's stage and block, ViT's layer), one per module elsewhere, each with short panel titles.

A name's dotted parts that are plain numbers are its container indices: two or more say stage and block
(`segformer.encoder.block.2.1.attention`, `stages.2.blocks.1.attention`: stage 2 · block 1), one says a layer
(`encoder.layer.7.attention`: layer 7), none is a module of its own (`decode_head.cca`: cca). Groups keep the
order in which their first record was captured (forward order).
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

_HEAD = re.compile(r"head(\d+)")


@dataclass(frozen=True)
class Entry:
    """One panel of a group: a record's view, its short title and the record's full name."""

    name: str
    view: str
    title: str


@dataclass(frozen=True)
class LayerGroup:
    """One layer: a short label ("stage 2 · block 1"), the full names of its records and, where views were
    given, its panels (a multi-head record's mean first, then its heads in order)."""

    label: str
    names: tuple[str, ...]
    entries: tuple[Entry, ...] = ()


def view_label(view: str) -> str:
    """"head3" -> "head 3"; other views ("mean": of the heads shown beside it) as they are."""
    m = _HEAD.fullmatch(view)
    if m:
        return f"head {m.group(1)}"
    return view


def _split(name: str) -> tuple[str, tuple[int, ...], str]:
    """(skeleton up to the last index, the indices, the part after it): `a.layer.7.attention.self` ->
    ("a.layer.#", (7,), "attention.self")."""
    parts = name.split(".")
    idx = [i for i, p in enumerate(parts) if p.isdigit()]
    if not idx:
        return "", (), name
    last = idx[-1]
    skeleton = ".".join("#" if p.isdigit() else p for p in parts[: last + 1])
    return skeleton, tuple(int(parts[i]) for i in idx), ".".join(parts[last + 1:])


def _index_label(numbers: tuple[int, ...]) -> str:
    if len(numbers) == 1:
        return f"layer {numbers[0]}"
    return " · ".join([f"stage {numbers[0]}", f"block {numbers[1]}", *(str(n) for n in numbers[2:])])


def _short_names(names: list[str]) -> dict[str, str]:
    """Each name's shortest dotted suffix that no other of these names ends with."""
    out = {}
    for name in names:
        parts = name.split(".")
        for k in range(1, len(parts) + 1):
            tail = ".".join(parts[-k:])
            if not any(o != name and (o == tail or o.endswith("." + tail)) for o in names):
                break
        out[name] = tail
    return out


def layer_groups(records: Mapping[str, Sequence[str]] | Iterable[str]) -> list[LayerGroup]:
    """The records' layers in forward order. `records`: names in capture order, or a mapping name -> views
    (then each group lists its panels with short titles such as "stage 2 · block 1 · head 3")."""
    views = dict(records) if isinstance(records, Mapping) else None
    names = list(records)
    split = {n: _split(n) for n in names}
    skeletons = list(dict.fromkeys(s for s, numbers, _ in split.values() if numbers))
    # two numbered families (an encoder and a decoder): each label starts where their names first differ
    prefix = {}
    if len(skeletons) > 1:
        for s in skeletons:
            parts = s.split(".")
            at = next((i for i in range(len(parts)) if any(len(o.split(".")) <= i or o.split(".")[i] != parts[i]
                                                          for o in skeletons if o != s)), 0)
            prefix[s] = parts[at] + " "
    order: dict[tuple, list[str]] = {}
    labels: dict[tuple, str] = {}
    for n in names:
        skeleton, numbers, _ = split[n]
        key = (skeleton, numbers) if numbers else ("", n)
        order.setdefault(key, []).append(n)
        labels[key] = prefix.get(skeleton, "") + _index_label(numbers) if numbers else n  # a module's own name
    groups = []
    for key, members in order.items():
        label = labels[key]
        entries = ()
        if views is not None:
            tails = _short_names([split[m][2] or m for m in members]) if len(members) > 1 else {}
            entries = tuple(Entry(m, v, " · ".join(filter(None, [label, tails.get(split[m][2] or m), view_label(v)])))
                            for m in members for v in _ordered(views[m]))
        groups.append(LayerGroup(label, tuple(members), entries))
    return groups


def _ordered(views: Sequence[str]) -> list[str]:
    """A multi-head record's mean first (the summary), then the rest in their order."""
    return sorted(views, key=lambda v: v != "mean") if any(_HEAD.fullmatch(v) for v in views) else list(views)
