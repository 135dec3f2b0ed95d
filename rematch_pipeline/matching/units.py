"""The room rule as arrays: `domain.units_taken` and `domain.Capacity.units_for`, vectorised."""

from __future__ import annotations

import numpy as np

from rematch_pipeline.domain import ROOM_CLASSES, units_taken

# Row r: the room classes a household needing r rooms takes a unit from (row 0 unused).
ROOM_TABLE = np.array([units_taken(r) for r in range(max(ROOM_CLASSES) + 1)], dtype=np.float64)
ROOM_TABLE.flags.writeable = False


def units_for(units_left: np.ndarray, rooms: int | np.ndarray) -> np.ndarray:
    """Free units for a need of `rooms` rooms at each offer, from the offers' (O, len(ROOM_CLASSES)) units left:
    (O,) for one need, (H, O) for an array of H needs. A household takes from the classes 1..r, so the tightest of
    them is a running minimum over the classes."""
    tightest = np.minimum.accumulate(units_left, axis=1)
    if isinstance(rooms, (int, np.integer)):
        return np.asarray(tightest[:, int(rooms) - 1])
    return np.asarray(tightest.T[np.asarray(rooms) - 1])
