"""Housing units by room class: households needing >= k rooms fit in the units with >= k rooms (Hall's condition
on nested classes reduces to one cumulative row per offer and class k). Each household takes exactly one unit."""

from __future__ import annotations

import numpy as np

from rematch_pipeline.domain import ROOM_CLASSES
from rematch_pipeline.matching.constraints import RowBlock
from rematch_pipeline.matching.constraints.capacity import _block
from rematch_pipeline.matching.data import MatchingData


def units_by_room_class(data: MatchingData) -> RowBlock:
    keys: list[tuple[int, ...]] = []
    uppers, rows, cols, vals = [], [], [], []
    n_off = len(data.offers)
    pairs = np.arange(data.n_pairs)
    rooms = data.hh.rooms[data.pair_h]
    for ki, k in enumerate(ROOM_CLASSES):
        member = rooms >= k
        need = np.bincount(data.pair_o[member], minlength=n_off)
        left = np.maximum(0, data.of.units_ge_left[:, ki])
        binding = np.nonzero(need > left)[0]
        if len(binding) == 0:
            continue
        local = np.full(n_off, -1)
        local[binding] = np.arange(len(binding)) + len(keys)
        take = member & (local[data.pair_o] >= 0)
        keys.extend((int(o), k) for o in binding)
        uppers.append(left[binding].astype(np.float64))
        rows.append(local[data.pair_o[take]])
        cols.append(pairs[take])
        vals.append(np.ones(int(take.sum())))
    return _block("units_by_room_class", keys, uppers, rows, cols, vals)
