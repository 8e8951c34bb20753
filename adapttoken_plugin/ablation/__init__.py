"""Ablation sweeps: a grid of selector settings over a dataset, with an on-disk evidence cache.

    grid = Grid(selectors=("adapttoken", "adapttoken-lite"), budgets=("1/32", "1/16"), tau=(0.5, 2.0))
    sweep = Sweep(model, processor, AdaptTokenConfig(), grid, needle_items(24, (256, 1024)), "runs/ablate")
    report = sweep.run()        # resumable; report.cache_hit_rate

Group passes (scores, entropies, candidate features) do not depend on the budget, tau or theta, so
they run once per (video, question, model, frames, scoring layer) and are cached on disk; every other
run re-does only its selection and final pass. `scripts/ablate.py` is the command line.
"""

from .datasets import Item, annotation_items, needle_items
from .evidence_cache import EvidenceCache
from .grid import Grid, RunSpec, expand_grid
from .runner import Sweep, SweepReport

__all__ = ["EvidenceCache", "Grid", "Item", "RunSpec", "Sweep", "SweepReport", "annotation_items", "expand_grid",
           "needle_items"]
