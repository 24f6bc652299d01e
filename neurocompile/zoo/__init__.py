"""Trained models shipped with neurocompile (``zoo:NAME`` on the command line).

* ``digits``: an snnTorch MLP for scikit-learn's 8x8 digits, see :mod:`.digits`.
* ``digits-conv``: an snnTorch CNN for the same digits with direct (analog) input, see :mod:`.digits_conv`.
"""
