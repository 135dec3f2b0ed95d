"""Housing units by room class: households needing >= k rooms fit in the units with >= k rooms (Hall's condition
on nested classes reduces to one cumulative row per offer and class k). Each household takes exactly one unit."""

from __future__ import annotations

from rematch_pipeline.domain import ROOM_CLASSES
from rematch_pipeline.matching.constraints import RowBlock
from rematch_pipeline.matching.data import MatchingData


def units_by_room_class(data: MatchingData) -> RowBlock:
    block = RowBlock("units_by_room_class")
    taken = data.hh.units_taken(data.pair_h)
    for ki, k in enumerate(ROOM_CLASSES):
        block.add_per_offer(data.pair_o, taken[:, ki], data.of.units_ge_left[:, ki], tag=k,
                            copies=data.weight[data.pair_h])
    return block
