"""JSON that every reader can parse: non-finite numbers (NaN, ±Inf; Python's json would write them bare, which is
not JSON) become null, numpy scalars and arrays become plain numbers and lists."""
from __future__ import annotations

import json
import math

import numpy as np


def finite(obj):
    if isinstance(obj, np.ndarray):
        obj = obj.tolist()
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def dumps(obj, **kwargs) -> str:
    return json.dumps(finite(obj), allow_nan=False, **kwargs)
