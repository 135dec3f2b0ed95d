"""Extract assignments with their explanation, and a reason in words for every household left unmatched."""

from __future__ import annotations

from collections import Counter

import numpy as np

from rematch_pipeline.domain import CAPACITY_DIMENSIONS, ROOM_CLASSES, Assignment, Unmatched
from rematch_pipeline.matching.data import MatchingData
from rematch_pipeline.matching.eligibility import NO_ACCESSIBLE, NO_MEDICAL, REASON_WORDS, missing_services
from rematch_pipeline.matching.scoring import term_arrays

# In place of a health or disability detail of a household that did not consent to share such details.
WITHHELD_NEED = "a health or disability need not met (which one only with the household's consent)"
WITHHELD_UNITS = "units for a health or disability need"

DIMENSION_WORDS = {
    "places_persons": "places for persons",
    "units_wheelchair": "wheelchair-accessible units",
    "units_pets_allowed": "pet-allowed units",
    "kita_u3": "Kita U3 places",
    "kita_ue3": "Kita Ü3 places",
    "school_primary": "primary-school places",
    "school_secondary": "secondary-school places",
    "language_course_seats": "language-course seats",
}


def used_capacity(data: MatchingData, h: np.ndarray, o: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What the round assigns per offer: (O, dims) and units per room class (O, 4)."""
    n_off = len(data.offers)
    used = np.zeros((n_off, len(CAPACITY_DIMENSIONS)), dtype=np.int64)
    np.add.at(used, o, data.hh.demand[h])
    rooms = np.zeros((n_off, len(ROOM_CLASSES)), dtype=np.int64)
    np.add.at(rooms, o, (data.hh.rooms[h][:, None] >= np.array(ROOM_CLASSES)[None, :]).astype(np.int64))
    return used, rooms


def _no_eligible_reason(data: MatchingData, hi: int) -> str:
    n_offers = len(data.offers)
    if n_offers == 0:
        return "no eligible municipality: no capacity offer is valid on the round date"
    codes = data.codes[hi]
    consented = data.households[hi].consent_health_share
    if not consented:
        # Which service or that it is about accessibility are health and disability details: they leave the
        # pipeline (exports, audit, report) only with the household's consent, so they are not even worded here.
        codes = np.where(np.isin(codes, (NO_ACCESSIBLE, NO_MEDICAL)), NO_MEDICAL, codes)
    counts = Counter(int(c) for c in codes)
    parts = []
    for code, n in sorted(counts.items(), key=lambda t: (-t[1], t[0])):
        words = REASON_WORDS[code] if consented or code != NO_MEDICAL else WITHHELD_NEED
        if code == NO_MEDICAL and consented:
            missing = {s for j in np.nonzero(data.codes[hi] == NO_MEDICAL)[0]
                       for s in missing_services(int(data.hh.need_medical[hi]), int(data.of.medical[j]))}
            words += ": " + ", ".join(sorted(missing))
        parts.append(f"{words} ({n} of {n_offers})")
    return "no eligible municipality: " + "; ".join(parts)


def _capacity_reason(data: MatchingData, hi: int, used: np.ndarray, used_rooms: np.ndarray) -> str:
    offers = np.nonzero(data.eligible[hi])[0]
    dem = data.hh.demand[hi]
    left = data.of.remaining[offers] - used[offers]  # (n, dims)
    short: Counter[str] = Counter()
    consented = data.households[hi].consent_health_share
    for d, name in enumerate(CAPACITY_DIMENSIONS):
        if dem[d]:
            words = WITHHELD_UNITS if name == "units_wheelchair" and not consented else DIMENSION_WORDS[name]
            short[words] += int((left[:, d] < dem[d]).sum())
    r = int(data.hh.rooms[hi])
    # Free units for an r-room need: the tightest of the classes 1..r (nested classes, Hall's condition).
    rooms_left = np.minimum.accumulate(data.of.units_ge_left[offers] - used_rooms[offers], axis=1)[:, r - 1]
    short[f"units with {r}+ rooms"] += int((rooms_left < 1).sum())
    short = Counter({k: v for k, v in short.items() if v})
    if not short:
        # Each dimension fits alone, but not together with the persons-maximal placement of the others.
        return f"capacity exhausted: placing it would displace more persons elsewhere ({len(offers)} eligible)"
    parts = ", ".join(f"{w} ({n})" for w, n in sorted(short.items(), key=lambda t: (-t[1], t[0])))
    return f"capacity exhausted at all {len(offers)} eligible municipalities: {parts}"


def extract(data: MatchingData, chosen: np.ndarray, round_id: str) -> tuple[list[Assignment], list[Unmatched]]:
    h, o = data.pair_h[chosen], data.pair_o[chosen]
    terms = term_arrays(data.hh, data.of, h, o, data.policy)
    ranks = data.preference_rank(h, o) if len(h) else np.zeros(0, dtype=np.int64)
    score = data.score[h, o]
    placed = {int(hi): i for i, hi in enumerate(h)}
    used, used_rooms = used_capacity(data, h, o)
    has_eligible = np.asarray(data.eligible.any(axis=1)) if data.offers else np.zeros(len(data.households), bool)
    assignments: list[Assignment] = []
    unmatched: list[Unmatched] = []
    for hi, household in enumerate(data.households):
        persons = int(data.hh.persons[hi])
        if hi in placed:
            i = placed[hi]
            offer = data.offers[int(o[i])]
            assignments.append(Assignment(
                round_id=round_id, case_id=household.case_id, ags=offer.ags, persons=persons,
                score=round(float(score[i]), 6), score_terms={k: float(v[i]) for k, v in terms.items()},
                preference_rank=int(ranks[i]), offer_id=offer.offer_id,
            ))
        elif not has_eligible[hi]:
            unmatched.append(Unmatched(round_id, household.case_id, persons, _no_eligible_reason(data, hi)))
        else:
            unmatched.append(Unmatched(round_id, household.case_id, persons,
                                       _capacity_reason(data, hi, used, used_rooms)))
    return assignments, unmatched
