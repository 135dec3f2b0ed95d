"""Exchange within capacity classes: households with equal demand and room need may take each other's places."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from rematch_pipeline.matching.data import MatchingData

FORBIDDEN = -1e12  # an ineligible (household, place) edge: never chosen, as the holders alone fill every place
# Places per assignment problem. Its cost grows with the cube of the places, and a class at national scale holds
# thousands (docs/solver-tuning.md); the places are split by municipality into parts this large, so an exchange
# between two parts waits for a later call.
MAX_PLACES = 400


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
                            allowed: np.ndarray | None = None,
                            only: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Better households for the places (h, o) hold: per class, an assignment problem on match score.

    Every place stays filled by a household of the class that held it, eligible there (and `allowed` there, if
    given: (H, O) bool), so capacity and persons are unchanged and the score never drops. Unplaced households of
    the class compete for the places too: per part, up to MAX_PLACES of them, those with the best score there
    first. `only`: the classes to look at (default: every class holding a place).
    """
    ok = data.eligible if allowed is None else data.eligible & allowed
    out_h, out_o = h.copy(), o.copy()
    placed = np.zeros(len(classes), dtype=bool)
    placed[h] = True
    for c in np.unique(classes[h]) if only is None else np.intersect1d(only, classes[h]):
        held = np.nonzero(classes[h] == c)[0]
        held = held[np.argsort(o[held], kind="stable")]  # parts by municipality
        members = np.nonzero(classes == c)[0]
        for lo in range(0, len(held), MAX_PLACES):
            part = held[lo:lo + MAX_PLACES]
            places = out_o[part]
            waiting = members[~placed[members]]
            if len(waiting) > MAX_PLACES:
                best = np.where(ok[waiting][:, places], data.score[waiting][:, places], -np.inf).max(axis=1)
                waiting = waiting[np.argsort(-best, kind="stable")[:MAX_PLACES]]
            cand = np.concatenate([out_h[part], waiting])
            weights = np.where(ok[cand][:, places], data.score[cand][:, places], FORBIDDEN)
            rows, cols = linear_sum_assignment(weights, maximize=True)
            if (weights[rows, cols] <= FORBIDDEN).any():
                continue  # only if a holder itself broke `allowed` there: this part stays as it was
            placed[out_h[part]] = False
            out_h[part[cols]] = cand[rows]
            placed[cand[rows]] = True
    return out_h.astype(np.int64), out_o.astype(np.int64)
