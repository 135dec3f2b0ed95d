"""Capacity: for every offer and dimension (persons, wheelchair and pet units, Kita, school, language course),
what the round assigns stays within what is left after earlier accepted matches."""

from __future__ import annotations

import numpy as np

from rematch_pipeline.domain import CAPACITY_DIMENSIONS
from rematch_pipeline.matching.constraints import RowBlock
from rematch_pipeline.matching.data import MatchingData


def capacity_per_dimension(data: MatchingData) -> RowBlock:
    keys: list[tuple[int, ...]] = []
    uppers, rows, cols, vals = [], [], [], []
    n_off = len(data.offers)
    pairs = np.arange(data.n_pairs)
    for d in range(len(CAPACITY_DIMENSIONS)):
        dem = data.hh.demand[data.pair_h, d]
        need = np.bincount(data.pair_o, weights=dem, minlength=n_off)
        left = np.maximum(0, data.of.remaining[:, d])
        # Only rows that can bind: where the candidate pairs together could exceed what is left.
        binding = np.nonzero(need > left)[0]
        if len(binding) == 0:
            continue
        local = np.full(n_off, -1)
        local[binding] = np.arange(len(binding)) + len(keys)
        take = (dem > 0) & (local[data.pair_o] >= 0)
        keys.extend((int(o), d) for o in binding)
        uppers.append(left[binding].astype(np.float64))
        rows.append(local[data.pair_o[take]])
        cols.append(pairs[take])
        vals.append(dem[take].astype(np.float64))
    return _block("capacity_per_dimension", keys, uppers, rows, cols, vals)


def _block(family: str, keys: list[tuple[int, ...]], uppers: list[np.ndarray], rows: list[np.ndarray],
           cols: list[np.ndarray], vals: list[np.ndarray]) -> RowBlock:
    def cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

    return RowBlock(family, keys, cat(uppers, np.float64), cat(rows, np.int64), cat(cols, np.int64),
                    cat(vals, np.float64))
