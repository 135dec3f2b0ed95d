"""Balanced fill (optional): points for every person placed within their offer's proportional share of the round."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from rematch_pipeline.domain import CAPACITY_DIMENSIONS
from rematch_pipeline.matching.data import MatchingData

PLACES = CAPACITY_DIMENSIONS.index("places_persons")


def proportional_share(data: MatchingData, persons_placed: float) -> np.ndarray:
    """(O,) persons each offer would receive if the round's persons were spread in proportion to places left.

    Places left, not places offered: a municipality that received many in earlier rounds has few places left and
    so a small share now, which is what evens out its fill over the rounds.
    """
    places = np.where(data.of.valid, np.maximum(data.of.remaining[:, PLACES], 0), 0).astype(np.float64)
    total = float(places.sum())
    return persons_placed * places / total if total > 0 else np.zeros_like(places)


def persons_by_offer(n_offers: int, pair_o: np.ndarray, persons: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.bincount(pair_o, weights=persons * x, minlength=n_offers)[:n_offers]


@dataclass(frozen=True)
class FairShare:
    """The balanced-fill term of the quality phase: `weight` points per person placed within their offer's share.

    Persons placed are fixed by then, so the persons within shares plus the persons beyond them is a constant:
    maximising the points minimises the persons placed beyond their offer's share, which is half the L1 distance
    between the round's placement and a perfectly proportional one. Linear with one bounded column per offer
    (`room`, `ShareColumns.rows`), and local to each offer, so a neighbourhood of a few municipalities carries it
    as well.
    """

    weight: float
    share: np.ndarray  # (O,) persons

    @classmethod
    def of(cls, data: MatchingData, persons_placed: float, weight: float) -> FairShare:
        return cls(weight, proportional_share(data, persons_placed))

    def within(self, placed: np.ndarray) -> np.ndarray:
        """Per offer: persons placed there within its share."""
        return np.minimum(placed, self.share)

    def points(self, pair_o: np.ndarray, persons: np.ndarray, x: np.ndarray) -> float:
        return self.weight * float(self.within(persons_by_offer(len(self.share), pair_o, persons, x)).sum())

    def room(self, pair_o: np.ndarray, fixed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(offers, persons): the offers the columns `pair_o` reach whose share the persons `fixed` there (a
        neighbourhood's fixed part) leave room in, and that room. Only these get a share column: the points of the
        rest cannot change, and leaving them out keeps the model's objective free of constants, which would
        otherwise loosen its relative gap.
        """
        left = self.share - (0.0 if fixed is None else fixed)
        reached = np.zeros(len(self.share), dtype=bool)
        reached[pair_o] = True
        offers = np.nonzero(reached & (left > 0))[0]
        return offers, left[offers]

    def columns(self, pair_o: np.ndarray, persons: np.ndarray, fixed: np.ndarray | None = None) -> ShareColumns:
        """The share columns of a model whose columns go to offers `pair_o` and place `persons` each."""
        offers, room = self.room(pair_o, fixed)
        return ShareColumns(self, pair_o, persons, offers, room)


@dataclass(frozen=True)
class ShareColumns:
    """A model's share columns, one per offer with room (`FairShare.room`), as both solver interfaces add them."""

    fair: FairShare
    pair_o: np.ndarray  # the offer of each model column
    persons: np.ndarray  # the persons each model column places
    offers: np.ndarray
    room: np.ndarray

    @property
    def rows(self) -> sp.csr_matrix:
        """(offers, pairs + offers): within_m - persons the model's columns place at m <= 0."""
        pair_o, persons, offers = self.pair_o, self.persons, self.offers
        row_of = np.full(int(max(pair_o.max(initial=-1), offers.max(initial=-1))) + 1, -1)
        row_of[offers] = np.arange(len(offers))
        n, k = len(pair_o), len(offers)
        mine = np.nonzero(row_of[pair_o] >= 0)[0]
        rows = np.concatenate([row_of[pair_o[mine]], np.arange(k)])
        cols = np.concatenate([mine, n + np.arange(k)])
        vals = np.concatenate([-persons[mine].astype(np.float64), np.ones(k)])
        return sp.csr_matrix((vals, (rows, cols)), shape=(k, n + k))

    def start(self, x: np.ndarray) -> np.ndarray:
        """The share columns' values (`room` order) that go with placement x of the model's columns."""
        return np.minimum(persons_by_offer(len(self.fair.share), self.pair_o, self.persons, x)[self.offers], self.room)
