"""vizattn: see what the attention modules inside a segmentation network attended."""
from vizattn.capture import AttentionRecord, Capture, capture
from vizattn.errors import VizattnError
from vizattn.evaluate import predict
from vizattn.modules import create_attention, list_attention
from vizattn.zoo import available, load

__version__ = "0.1.0"
__all__ = ["AttentionRecord", "Capture", "VizattnError", "available", "capture", "create_attention",
           "list_attention", "load", "predict"]
