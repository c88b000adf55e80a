"""vizattn: see what the attention modules inside a segmentation network attended."""
from vizattn.capture import AttentionRecord, Capture, capture
from vizattn.errors import VizattnError
from vizattn.modules import create_attention, list_attention

__version__ = "0.1.0"
__all__ = ["AttentionRecord", "Capture", "VizattnError", "capture", "create_attention", "list_attention"]
