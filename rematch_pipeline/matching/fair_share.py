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
    (`rows`), and local to each offer, so a neighbourhood of a few municipalities carries it as well.
    """

    weight: float
    share: np.ndarray  # (O,) persons

    @classmethod
    def of(cls, data: MatchingData, persons_placed: float, weight: float) -> FairShare:
        return cls(weight, proportional_share(data, persons_placed))

    @property
    def offers(self) -> np.ndarray:
        """The offers with a share: only they get a column (a share of 0 earns nothing)."""
        return np.nonzero(self.share > 0)[0]

    def within(self, placed: np.ndarray) -> np.ndarray:
        """Per offer: persons placed there within its share."""
        return np.minimum(placed, self.share)

    def points(self, pair_o: np.ndarray, persons: np.ndarray, x: np.ndarray) -> float:
        return self.weight * float(self.within(persons_by_offer(len(self.share), pair_o, persons, x)).sum())

    def start(self, pair_o: np.ndarray, persons: np.ndarray, x: np.ndarray, fixed: np.ndarray | None = None
              ) -> np.ndarray:
        """The values of the share columns (`offers` order) that go with placement x (plus persons `fixed`)."""
        placed = persons_by_offer(len(self.share), pair_o, persons, x)
        if fixed is not None:
            placed = placed + fixed
        return self.within(placed)[self.offers]

    def rows(self, pair_o: np.ndarray, persons: np.ndarray) -> sp.csr_matrix:
        """(offers, pairs + offers): within_m - persons placed at m <= persons already there (`fixed`, or 0)."""
        offers = self.offers
        row_of = np.full(len(self.share), -1)
        row_of[offers] = np.arange(len(offers))
        n, k = len(pair_o), len(offers)
        mine = np.nonzero(row_of[pair_o] >= 0)[0]
        rows = np.concatenate([row_of[pair_o[mine]], np.arange(k)])
        cols = np.concatenate([mine, n + np.arange(k)])
        vals = np.concatenate([-persons[mine].astype(np.float64), np.ones(k)])
        return sp.csr_matrix((vals, (rows, cols)), shape=(k, n + k))
