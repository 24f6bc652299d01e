"""The ``neurocompile`` command line (click)."""
