"""A run's lifecycle: its folder (atomic writes, lock, config), checkpoint records, metrics log,
parity artifacts, row screening, and the :class:`~posttrain.runs.loop.Loop` every training method runs on.

Modules are imported by name (``from posttrain.runs.folder import RunFolder``): the low-level ones
(:mod:`.atomic`, :mod:`.log`) are used by the engine and the caches, the loop sits above the engine.
"""
