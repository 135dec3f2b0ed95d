"""Quality by single moves over every eligible pair: a household to a better municipality, or two households swapped."""

from __future__ import annotations

import time

import numpy as np

from rematch_pipeline.matching.data import MatchingData, fits, usage

GAIN = 1e-9  # a move must raise the quality by more than this (rounding noise is no gain)


def _best_fit(u: int, left: np.ndarray, demand: np.ndarray, candidates: np.ndarray, score: np.ndarray) -> int:
    """The offer among `candidates` (O,) bool where household u fits that it scores highest, or -1."""
    where = candidates & fits(demand[u], left)
    return int(np.argmax(np.where(where, score[u], -np.inf))) if where.any() else -1


def improve_by_moves(data: MatchingData, h: np.ndarray, o: np.ndarray, sweeps: int,
                     deadline: float = float("inf")) -> tuple[np.ndarray, np.ndarray, str]:
    """The placement (h, o) after at most `sweeps` passes over its households, in index order: each moves to the
    eligible offer it scores highest among those where it fits, or else swaps with the household whose swap gains
    most among those at offers it scores higher (both eligible at the other's offer, both offers within capacity).

    Every placed household stays placed and every offer within what it has left, so quality only rises. After
    each pass, a household left out that now fits where the moves freed room joins (the most persons first, at
    the offer it scores highest): rounds not proven maximal may leave such room, and its unmatched reason would
    then be false. So persons placed never fall. Neighbourhoods of a few municipalities cannot make these moves at
    national scale: a household's better municipality is rarely in the same neighbourhood, and rarely among the
    model's columns (docs/solver-tuning.md). After the first pass a household is looked at again only where an
    offer changed that it could move to or swap at; the passes are the work limit, so the result is the same on
    every machine. Also returns how it ended: `heuristic` (no move left), `work_limit` (the passes ran out) or
    `time_limit` (the safety net's `deadline`, perf_counter, passed: another machine may have gone further).
    """
    n_h, n_o = data.eligible.shape
    at = np.full(n_h, -1, dtype=np.int64)
    at[h] = o
    demand, left = usage(data)
    np.subtract.at(left, o, demand[h])
    score = data.score
    allowed = data.eligible
    current = np.zeros(n_h)
    current[h] = score[h, o]
    # Each offer's column of scores and eligibility as one row: every household's swap gain with `a` is then a few
    # operations over rows (gathering a column of the (H, O) arrays took a third of the moves' time at 10,000).
    score_at, allowed_at = np.ascontiguousarray(score.T), np.ascontiguousarray(allowed.T)
    looked = np.ones(n_h, dtype=bool)  # households to look at in this pass
    ended = "work_limit"
    for _ in range(sweeps):
        changed = np.zeros(n_o, dtype=bool)
        moved = 0
        for i, a in enumerate(np.nonzero(looked & (at >= 0))[0]):
            if i % 1000 == 0 and time.perf_counter() >= deadline:
                ended = "time_limit"
                break
            here = at[a]
            better = allowed[a] & (score[a] > current[a] + GAIN)
            if not better.any():
                continue
            to = _best_fit(int(a), left, demand, better, score)
            if to >= 0:
                left[here] += demand[a]
                left[to] -= demand[a]
                at[a] = to
                current[a] = score[a, to]
                changed[[here, to]] = True
                moved += 1
                continue
            gain = score[a][at] - current[a] + score_at[here] - current
            others = np.nonzero((at >= 0) & better[at] & (gain > GAIN) & allowed_at[here])[0]
            if len(others) == 0:
                continue
            there = at[others]
            gain = gain[others]
            shift = demand[others] - demand[a]  # what `here` gives up and `there` gets back by the swap
            ok = fits(shift, left[here]) & fits(-shift, left[there])
            if not ok.any():
                continue
            k = int(np.argmax(np.where(ok, gain, -np.inf)))
            b, to = int(others[k]), int(there[k])
            left[here] -= shift[k]
            left[to] += shift[k]
            at[a], at[b] = to, here
            current[a], current[b] = score[a, to], score[b, here]
            changed[[here, to]] = True
            moved += 1
        if ended == "time_limit":
            break
        moved += _fill(at, left, demand, allowed, score, data.hh.persons, changed, current)
        if moved == 0:
            ended = "heuristic"
            break
        placed = at >= 0
        looked = placed & (changed[np.maximum(at, 0)]
                           | (allowed & changed[None, :] & (score > current[:, None] + GAIN)).any(axis=1))
    chosen = np.nonzero(at >= 0)[0]
    return chosen, at[chosen], ended


def _fill(at: np.ndarray, left: np.ndarray, demand: np.ndarray, allowed: np.ndarray, score: np.ndarray,
          persons: np.ndarray, changed: np.ndarray, current: np.ndarray) -> int:
    """Households left out that fit somewhere they are eligible, placed there (most persons first, each at the
    offer it scores highest); how many joined."""
    out = np.nonzero(at < 0)[0]
    if len(out) == 0:
        return 0
    joined = 0
    for u in out[np.argsort(-persons[out], kind="stable")]:
        to = _best_fit(u, left, demand, allowed[u], score)
        if to < 0:
            continue
        left[to] -= demand[u]
        at[u] = to
        current[u] = score[u, to]
        changed[to] = True
        joined += 1
    return joined
