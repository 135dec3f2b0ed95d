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

# The persons LP is massively degenerate (integer costs, many identical households) and simplex stalls on it.
# A tiny non-negative perturbation by match quality breaks the ties. It adds at most PERTURBATION_TOTAL to any
# solution's value, so the perturbed LP value stays a valid upper bound on persons, less than one person loose.
PERTURBATION_TOTAL = 0.5
# And at most this on any one pair: an LP that counts a household at a fraction of a person (the look-ahead's coming
# households at 0.95) must not let a few pairs' tie-breaks outweigh that twentieth, however few households it holds.
PAIR_TIE_BREAK_MAX = 0.01


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

    @property
    def most(self) -> np.ndarray:
        """Each column's upper bound: 1 for a binary, the household type's size for a count."""
        return np.ones(self.n_cols) if self.col_upper is None else self.col_upper

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


def perturbation(model: LinearModel, quality: np.ndarray) -> np.ndarray:
    """The tie-break each pair adds to its persons: its quality shifted to be non-negative (look-ahead points are
    negative), scaled so that any solution gains at most PERTURBATION_TOTAL and any pair PAIR_TIE_BREAK_MAX. Never
    negative: a pair never seems worth less than its persons, so the perturbed LP value stays an upper bound."""
    households = max(1.0, float(model.upper[:model.blocks[0].n_rows].sum()))  # one pair per household at most
    low = min(0.0, float(model.quality.min(initial=0.0)))
    per_pair = min(PERTURBATION_TOTAL / households, PAIR_TIE_BREAK_MAX)
    scale = per_pair / max(1.0, float(model.quality.max(initial=0.0)) - low)
    return scale * np.maximum(np.asarray(quality, dtype=np.float64) - low, 0.0)


def lp_objective(model: LinearModel) -> np.ndarray:
    """Persons with the tie-break by quality (`perturbation`): the persons LP's objective."""
    return model.persons + perturbation(model, model.quality)
