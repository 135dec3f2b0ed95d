"""Build the linear model from matching data: one binary per candidate pair, the constraint families, two objectives."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from rematch_pipeline.matching.constraints import RowBlock
from rematch_pipeline.matching.constraints.assignment import household_at_most_once
from rematch_pipeline.matching.constraints.capacity import capacity_per_dimension
from rematch_pipeline.matching.constraints.rooms import units_by_room_class
from rematch_pipeline.matching.data import MatchingData

FAMILIES = (household_at_most_once, capacity_per_dimension, units_by_room_class)


@dataclass
class LinearModel:
    """max c·x  s.t.  A x <= upper, x binary (integer up to `col_upper`); persons first, then quality."""

    matrix: sp.csr_matrix  # (rows, pairs)
    upper: np.ndarray
    blocks: list[RowBlock]
    offsets: list[int]  # first row of each block
    persons: np.ndarray  # objective 1: persons placed per pair
    quality: np.ndarray  # objective 2: match score per pair
    col_upper: np.ndarray | None = None  # households a column may take: 1 (binary), or a household type's size

    @property
    def n_cols(self) -> int:
        return int(self.matrix.shape[1])

    @property
    def n_rows(self) -> int:
        return int(self.matrix.shape[0])

    def household_rows(self, cols: np.ndarray) -> np.ndarray:
        """The assignment row (its household's) of each of these columns; that family has one entry per column."""
        for block, off in zip(self.blocks, self.offsets, strict=True):
            if block.family == "household_at_most_once":
                return (off + block.rows[cols]).astype(np.int32)
        raise KeyError("household_at_most_once")

    def block_duals(self, duals: np.ndarray, family: str) -> tuple[RowBlock, np.ndarray]:
        for block, off in zip(self.blocks, self.offsets, strict=True):
            if block.family == family:
                return block, duals[off:off + block.n_rows]
        raise KeyError(family)


def build_model(data: MatchingData) -> LinearModel:
    blocks = [family(data) for family in FAMILIES]
    offsets = list(np.cumsum([0] + [b.n_rows for b in blocks[:-1]]))
    rows = np.concatenate([b.rows + off for b, off in zip(blocks, offsets, strict=True)])
    cols = np.concatenate([b.cols for b in blocks])
    vals = np.concatenate([b.vals for b in blocks])
    n_rows = sum(b.n_rows for b in blocks)
    matrix = sp.csr_matrix((vals, (rows, cols)), shape=(n_rows, data.n_pairs))
    return LinearModel(
        matrix=matrix,
        upper=np.concatenate([b.upper for b in blocks]) if blocks else np.zeros(0),
        blocks=blocks,
        offsets=[int(o) for o in offsets],
        persons=data.hh.persons[data.pair_h].astype(np.float64),
        quality=data.score[data.pair_h, data.pair_o].astype(np.float64),
        col_upper=None if data.copies is None else data.weight[data.pair_h].astype(np.float64),
    )
