"""Hard needs as arrays: which (household, offer) pairs may be matched at all, and why the others are excluded."""

from __future__ import annotations

import numpy as np

from rematch_pipeline.contract import MEDICAL_SERVICES
from rematch_pipeline.matching.units import units_for

# Exclusion codes in the order they are checked; the first that applies explains the exclusion.
ELIGIBLE = 0
NOT_VALID, DECLINED, NO_ACCESSIBLE, NO_MEDICAL, NO_PETS, TOO_SMALL, NO_ROOMS = range(1, 8)
# Their names in stored reasons (`domain.UnmatchedReason`; the words are in `matching.reasons`).
EXCLUSION_KEYS = {NOT_VALID: "not_valid", DECLINED: "declined", NO_ACCESSIBLE: "no_accessible",
                  NO_MEDICAL: "no_medical", NO_PETS: "no_pets", TOO_SMALL: "too_small", NO_ROOMS: "no_rooms"}


def medical_mask(services: frozenset[str] | tuple[str, ...]) -> int:
    """Bit mask of medical services (each need or service one bit)."""
    return sum(1 << i for i, s in enumerate(MEDICAL_SERVICES) if s in services)


def exclusion_codes(
    need_accessible: np.ndarray,  # (H,) bool
    need_pets: np.ndarray,  # (H,) bool
    need_medical: np.ndarray,  # (H,) int mask
    persons: np.ndarray,  # (H,) int
    rooms: np.ndarray,  # (H,) int 1..4
    declined: np.ndarray,  # (H, O) bool
    valid: np.ndarray,  # (O,) bool
    wheelchair_left: np.ndarray,  # (O,) int
    pets_left: np.ndarray,  # (O,) int
    medical_offered: np.ndarray,  # (O,) int mask
    places_left: np.ndarray,  # (O,) int
    units_ge_left: np.ndarray,  # (O, 4) int: units with >= k rooms left, k = 1..4
) -> np.ndarray:
    """(H, O) int8 matrix: 0 where the pair is eligible, else the first exclusion code that applies."""
    codes = np.zeros(declined.shape, dtype=np.int8)
    checks = (
        (NOT_VALID, ~valid[None, :]),
        (DECLINED, declined),
        (NO_ACCESSIBLE, need_accessible[:, None] & (wheelchair_left[None, :] <= 0)),
        (NO_MEDICAL, (need_medical[:, None] & ~medical_offered[None, :]) != 0),
        (NO_PETS, need_pets[:, None] & (pets_left[None, :] <= 0)),
        (TOO_SMALL, places_left[None, :] < persons[:, None]),
        (NO_ROOMS, units_for(units_ge_left, rooms) <= 0),
    )
    # Apply in reverse so the earliest check wins where several apply.
    for code, mask in reversed(checks):
        codes[np.broadcast_to(mask, codes.shape)] = code
    return codes


def missing_services(need_mask: int, offered_mask: int) -> list[str]:
    missing = need_mask & ~offered_mask
    return [s for i, s in enumerate(MEDICAL_SERVICES) if missing & (1 << i)]
