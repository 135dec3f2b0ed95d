"""Constraint families of the matching model, one module each; each returns a block of sparse rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class RowBlock:
    """Rows `sum(vals * x[cols]) <= upper` of one constraint family; `keys` name each row for duals and reports."""

    family: str
    keys: list[tuple[int, ...]]
    upper: np.ndarray  # (rows,)
    rows: np.ndarray  # entry -> local row
    cols: np.ndarray  # entry -> pair (column)
    vals: np.ndarray  # entry -> coefficient

    @property
    def n_rows(self) -> int:
        return len(self.keys)
