"""Data-parallel runs: an input split into shards along the batch axis, run on worker processes
(a local pool, or a Dask distributed cluster) and merged into exactly the single-process result.

``run_sharded`` wraps :func:`neurocompile.api.run`; ``map_shards`` runs any task function
``task(artifact_path, x_shard, **kwargs) -> {name: array}`` the same way (``validate`` uses it for
its traces). Workers get the artifact's PATH and their shard, never model objects; finished shards
are cached by (artifact hash, task, shard hash) so that a rerun after an interruption resumes.
"""
from neurocompile.parallel.run import map_shards, run_sharded, shard_plan

__all__ = ["run_sharded", "map_shards", "shard_plan"]
