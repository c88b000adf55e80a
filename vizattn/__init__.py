"""vizattn: see what the attention modules inside a segmentation network attended.

The names below are imported on first use (PEP 562): `from vizattn.errors import VizattnError` or the app's
first page need not wait for PyTorch to import."""
from vizattn.errors import VizattnError

__version__ = "0.1.0"
__all__ = ["AttentionRecord", "Capture", "VizattnError", "available", "capture", "create_attention",
           "list_attention", "load", "predict", "relevance", "relevance_details", "rollout", "rollout_details", "show"]
_LAZY = {"AttentionRecord": "vizattn.records", "Capture": "vizattn.capture", "capture": "vizattn.capture",
         "predict": "vizattn.evaluate", "create_attention": "vizattn.modules", "list_attention": "vizattn.modules",
         "available": "vizattn.zoo", "load": "vizattn.zoo", "rollout": "vizattn.analysis.rollout",
         "rollout_details": "vizattn.analysis.rollout", "relevance": "vizattn.analysis.relevance",
         "relevance_details": "vizattn.analysis.relevance", "show": "vizattn.notebook"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'vizattn' has no attribute '{name}'")
