"""Shared fixtures for the module tests: every registered module, built small."""
import torch

from vizattn import capture, create_attention, list_attention

SMALL = 16  # channels: enough for 8 LESA heads and a C/8 criss-cross projection


def build(name: str, channels: int = SMALL, **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_attention(name, channels, **kw).eval()


def wake(module: torch.nn.Module) -> torch.nn.Module:
    """Replace the zero initialisations that make a fresh block the identity, so every path carries signal."""
    for p in module.parameters():
        if torch.count_nonzero(p) == 0:
            with torch.no_grad():
                p.copy_(0.5 + 0.1 * torch.randn_like(p))
    return module


def run(name: str, x: torch.Tensor, **kw):
    m = wake(build(name, x.shape[1], **kw))
    with torch.no_grad(), capture(m) as cap:
        y = m(x)
    return m, y, cap.records[name]


ALL = list_attention()
