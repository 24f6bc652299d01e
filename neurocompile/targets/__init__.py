"""Compilation targets: the base class and registry, the artifact, and one folder per chip
(:mod:`.loihi2`, :mod:`.spinnaker`) plus the float reference (:mod:`.float`)."""
