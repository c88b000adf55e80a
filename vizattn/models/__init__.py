"""Segmenters: the shared backbone, one head per context module, and the FCN baseline."""
from vizattn.models.segmenter import HEADS, ModelConfig, Segmenter, build_model

__all__ = ["HEADS", "ModelConfig", "Segmenter", "build_model"]
