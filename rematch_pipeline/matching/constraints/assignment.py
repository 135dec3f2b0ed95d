"""Assignment: a household goes to at most one offer, whole (one binary per pair, so it is never split); a household
type (`types`) places at most as many households as it has."""

from __future__ import annotations

import numpy as np

from rematch_pipeline.matching.constraints import RowBlock
from rematch_pipeline.matching.data import MatchingData


def household_at_most_once(data: MatchingData) -> RowBlock:
    households, local = np.unique(data.pair_h, return_inverse=True)
    return RowBlock(
        family="household_at_most_once",
        keys=[(int(h),) for h in households],
        upper=data.weight[households].astype(np.float64),  # a household type takes up to its size
        rows=local.astype(np.int64),
        cols=np.arange(data.n_pairs, dtype=np.int64),
        vals=np.ones(data.n_pairs),
    )
