"""Synthetic street-scene data whose ambiguous class pairs need long-range context to resolve.
Re-exports the generator (scenes) and the receptive-field context statistics (context)."""

from .context import (
    ambiguous_mask,
    beyond_rf_counts,
    beyond_rf_share,
    cue_distance,
    pooled_beyond_rf_share,
)
from .scenes import (
    AMBIGUOUS_PAIRS,
    CLASSES,
    IGNORE_INDEX,
    PALETTE,
    THING_CLASSES,
    Scene,
    colorize,
    generate_batch,
    generate_scene,
)

__all__ = [
    "AMBIGUOUS_PAIRS", "CLASSES", "IGNORE_INDEX", "PALETTE", "THING_CLASSES", "Scene",
    "ambiguous_mask", "beyond_rf_counts", "beyond_rf_share", "colorize", "cue_distance",
    "generate_batch", "generate_scene", "pooled_beyond_rf_share",
]
