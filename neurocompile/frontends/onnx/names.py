"""Graph node names from ONNX names."""
from __future__ import annotations

import re


def sanitize(name: str, fallback: str) -> str:
    """A graph node name from an ONNX name: ``/layer1/conv/Conv`` -> ``layer1_conv_Conv``."""
    s = re.sub(r"[^0-9A-Za-z_]+", "_", name or "").strip("_")
    return s or fallback
