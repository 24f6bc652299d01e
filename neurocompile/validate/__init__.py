"""Run one model on several targets, find where they diverge, and report (``neurocompile validate``)."""
from neurocompile.validate.session import validate

__all__ = ["validate"]
