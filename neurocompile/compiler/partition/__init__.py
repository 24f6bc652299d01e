"""Partitioning passes: placing neuron groups onto cores and chips, with resource reports."""
