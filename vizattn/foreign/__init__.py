"""Models vizattn did not write, brought in by adapters that produce our records: one file per foreign family
(`mmseg` checkpoints rebuilt over our modules; `hf_transformers`, `torch_mha` and `mmcv_blocks` read live modules
through the generic observer in `observe`)."""
from __future__ import annotations


def foreign_targets(model, patterns=None, exclude: set[int] = frozenset()) -> tuple[dict[int, str], dict]:
    """(id(module) -> name, id(module) -> interpreter) of the foreign attention modules a capture should read:
    every module of a known family, plus every module named in `patterns` (names or globs)."""
    from vizattn.foreign import hf_transformers, mmcv_blocks, torch_mha

    targets, interpreters = {}, {}
    for name, m in model.named_modules():
        if id(m) in exclude:
            continue
        for family in (hf_transformers, torch_mha, mmcv_blocks):
            if family.matches(m):
                targets[id(m)] = name or type(m).__name__
                interpreters[id(m)] = family.interpret
                break
    if patterns:
        from vizattn.foreign.observe import select

        for key, name in select(model, patterns).items():
            if key not in exclude:
                targets.setdefault(key, name)
    return targets, interpreters
