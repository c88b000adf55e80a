"""Argument types shared by the commands: bounded integers with argparse's one-line usage error."""
from __future__ import annotations

import argparse


def bounded(lo: int, hi: int):
    """An argparse type: an integer lo..hi, or argparse's one-line usage error."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not an integer") from None
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"{v} is outside {lo}..{hi}")
        return v
    return parse


COUNT, SIDE, SEED = bounded(1, 10_000), bounded(32, 2048), bounded(0, 2**32 - 1)


COUNT, SIDE, SEED = bounded(1, 10_000), bounded(32, 2048), bounded(0, 2**32 - 1)
