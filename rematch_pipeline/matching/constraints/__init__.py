"""Constraint families of the matching model, one module each; each returns a block of sparse rows."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class RowBlock:
    """Rows `sum(vals * x[cols]) <= upper` of one constraint family; `keys` name each row for duals and reports."""

    family: str
    keys: list[tuple[int, ...]] = field(default_factory=list)
    upper: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (rows,)
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # entry -> local row
    cols: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # entry -> pair (column)
    vals: np.ndarray = field(default_factory=lambda: np.zeros(0))  # entry -> coefficient

    @property
    def n_rows(self) -> int:
        return len(self.keys)

    def add_per_offer(self, pair_o: np.ndarray, weights: np.ndarray, left: np.ndarray, tag: int,
                      copies: np.ndarray) -> None:
        """Append one row per offer that can bind: sum of `weights` over its pairs <= `left` (keys (offer, tag)).

        Rows that cannot bind (the candidate pairs together fit, each taken as often as it has `copies`) are left
        out; their dual would be zero anyway.
        """
        n_off = len(left)
        left = np.maximum(0, left)
        need = np.bincount(pair_o, weights=weights * copies, minlength=n_off)
        binding = np.nonzero(need > left)[0]
        if len(binding) == 0:
            return
        local = np.full(n_off, -1)
        local[binding] = np.arange(len(binding)) + len(self.keys)
        take = (weights > 0) & (local[pair_o] >= 0)
        self.keys.extend((int(o), tag) for o in binding)
        self.upper = np.concatenate([self.upper, left[binding].astype(np.float64)])
        self.rows = np.concatenate([self.rows, local[pair_o[take]]]).astype(np.int64)
        self.cols = np.concatenate([self.cols, np.nonzero(take)[0]]).astype(np.int64)
        self.vals = np.concatenate([self.vals, weights[take].astype(np.float64)])
