"""Capacity: for every offer and dimension (persons, wheelchair and pet units, Kita, school, language course),
what the round assigns stays within what is left after earlier accepted matches."""

from __future__ import annotations

from rematch_pipeline.domain import CAPACITY_DIMENSIONS
from rematch_pipeline.matching.constraints import RowBlock
from rematch_pipeline.matching.data import MatchingData


def capacity_per_dimension(data: MatchingData) -> RowBlock:
    block = RowBlock("capacity_per_dimension")
    for d in range(len(CAPACITY_DIMENSIONS)):
        block.add_per_offer(data.pair_o, data.hh.demand[data.pair_h, d], data.of.remaining[:, d], tag=d,
                            copies=data.weight[data.pair_h])
    return block
