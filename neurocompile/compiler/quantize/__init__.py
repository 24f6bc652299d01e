"""Quantization passes: from float parameters to a target's fixed-point formats."""
