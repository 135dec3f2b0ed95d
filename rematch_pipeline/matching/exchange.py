"""Exchange within capacity classes: households with equal demand and room need may take each other's places."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from rematch_pipeline.matching.data import MatchingData

FORBIDDEN = -1e12  # an ineligible (household, place) edge: never chosen, as the current assignment is a full matching


def capacity_classes(data: MatchingData) -> np.ndarray:
    """(H,) class of each household: equal demand in every capacity dimension and equal room need.

    Two households of a class use exactly the same capacity wherever they go, so swapping them, or putting an
    unplaced one in a placed one's place, keeps every capacity row and the persons placed.
    """
    if len(data.households) == 0:
        return np.zeros(0, dtype=np.int64)
    key = np.column_stack([data.hh.demand, data.hh.rooms])
    _, inverse = np.unique(key, axis=0, return_inverse=True)
    return np.asarray(inverse, dtype=np.int64).ravel()


def exchange_within_classes(data: MatchingData, classes: np.ndarray, h: np.ndarray, o: np.ndarray,
                            allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The best households for the places (h, o) hold: per class, an assignment problem on match score.

    Every place stays filled by a household of the class that held it, eligible there (and `allowed` there, if
    given: (H, O) bool), so capacity and persons are unchanged and the score never drops. Unplaced households of
    the class compete for the places too.
    """
    ok = data.eligible if allowed is None else data.eligible & allowed
    out_h, out_o = [], []
    for c in np.unique(classes[h]):
        held = classes[h] == c
        members = np.nonzero(classes == c)[0]
        places = o[held]
        weights = np.where(ok[members][:, places], data.score[members][:, places], FORBIDDEN)
        rows, cols = linear_sum_assignment(weights, maximize=True)
        if (weights[rows, cols] <= FORBIDDEN).any():  # only if (h, o) itself broke `allowed`: keep it as it was
            out_h.append(h[held])
            out_o.append(places)
            continue
        out_h.append(members[rows])
        out_o.append(places[cols])
    if not out_h:
        return h.copy(), o.copy()
    return np.concatenate(out_h).astype(np.int64), np.concatenate(out_o).astype(np.int64)
