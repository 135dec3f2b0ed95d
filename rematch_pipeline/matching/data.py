"""Matching data: the pool's demands, the offers' remaining capacity, and every eligible pair with its score."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from rematch_pipeline.domain import (
    CAPACITY_DIMENSIONS,
    ROOM_CLASSES,
    CapacityOffer,
    Demand,
    Household,
    Policy,
    demand_of,
    pseudonym,
)
from rematch_pipeline.matching.eligibility import exclusion_reason
from rematch_pipeline.matching.scoring import household_score, score_terms


@dataclass(frozen=True)
class Consumption:
    """What earlier accepted matches took from one offer: per capacity dimension, and households per room need."""

    dimensions: Mapping[str, int] = field(default_factory=dict)
    rooms_needed: Sequence[int] = ()


@dataclass
class MatchingData:
    round_date: date
    policy: Policy
    households: list[Household]
    pseudonyms: list[str]
    demands: list[Demand]
    offers: list[CapacityOffer]
    remaining: list[dict[str, int]]
    pair_household: list[int] = field(default_factory=list)
    pair_offer: list[int] = field(default_factory=list)
    pair_terms: list[dict[str, float]] = field(default_factory=list)
    pair_score: list[float] = field(default_factory=list)  # objective score (household + municipality terms)
    pair_rank: list[int] = field(default_factory=list)  # rank among the household's eligible offers, own score
    exclusions: list[Counter[str]] = field(default_factory=list)  # per household: reason -> offers excluded

    @property
    def n_pairs(self) -> int:
        return len(self.pair_household)

    def pairs_of_household(self) -> list[list[int]]:
        out: list[list[int]] = [[] for _ in self.households]
        for p, h in enumerate(self.pair_household):
            out[h].append(p)
        return out

    def pairs_of_offer(self) -> list[list[int]]:
        out: list[list[int]] = [[] for _ in self.offers]
        for p, o in enumerate(self.pair_offer):
            out[o].append(p)
        return out


def remaining_capacity(offer: CapacityOffer, consumed: Consumption | None) -> dict[str, int]:
    consumed = consumed or Consumption()
    rem = {d: offer.capacity(d) - int(consumed.dimensions.get(d, 0)) for d in CAPACITY_DIMENSIONS}
    for k in ROOM_CLASSES:
        # Hall's condition on nested room classes: households already needing >= k rooms hold units >= k.
        rem[f"units_ge_{k}"] = offer.units_with_at_least(k) - sum(1 for r in consumed.rooms_needed if r >= k)
    return rem


def build_data(
    households: Sequence[Household],
    offers: Sequence[CapacityOffer],
    round_date: date,
    policy: Policy,
    declined: Mapping[str, set[str]] | None = None,
    consumed: Mapping[str, Consumption] | None = None,
) -> MatchingData:
    """Pure: order inputs canonically (so results are deterministic), derive demands, enumerate eligible pairs."""
    declined = declined or {}
    consumed = consumed or {}
    hh = sorted(households, key=lambda h: h.case_id)
    of = sorted(offers, key=lambda o: (o.ags, o.offer_id))
    data = MatchingData(
        round_date=round_date,
        policy=policy,
        households=hh,
        pseudonyms=[pseudonym(h.case_id, policy.pseudonym_salt) for h in hh],
        demands=[demand_of(h, round_date, policy) for h in hh],
        offers=of,
        remaining=[remaining_capacity(o, consumed.get(o.offer_id)) for o in of],
    )
    for hi, (h, dem) in enumerate(zip(data.households, data.demands, strict=True)):
        reasons: Counter[str] = Counter()
        own: list[tuple[float, int]] = []
        for oi, (o, rem) in enumerate(zip(data.offers, data.remaining, strict=True)):
            reason = exclusion_reason(h, dem, o, rem, round_date, declined.get(h.case_id, set()))
            if reason is not None:
                reasons[reason] += 1
                continue
            terms = score_terms(h, dem, o, round_date, policy)
            data.pair_household.append(hi)
            data.pair_offer.append(oi)
            data.pair_terms.append(terms)
            data.pair_score.append(round(sum(terms.values()), 6))
            own.append((household_score(terms), len(data.pair_household) - 1))
        # Rank 1 = the eligible offer the household itself would score highest; ties broken by offer order.
        ranks = {p: r for r, (_, p) in enumerate(sorted(own, key=lambda t: (-t[0], t[1])), start=1)}
        data.pair_rank.extend(ranks[p] for _, p in own)
        data.exclusions.append(reasons)
    return data
