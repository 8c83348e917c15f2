"""Past one machine: corpus encoding and search sharded over a Ray cluster (``--backend ray``).

Ray is imported only by :mod:`evalkit.distributed.ray_backend`; the shard plan, the shard store and the worker's
code run (and are tested) without it.
"""
