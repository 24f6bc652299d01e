"""Frontends: read a model (NIR, ONNX, snnTorch) into the intermediate graph (:mod:`.loader`
picks one from the source)."""
