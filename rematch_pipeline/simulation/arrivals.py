"""A simulation's weekly exports: each week's Kobo household export and capacity files, from one seed."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from rematch_pipeline.contract import MIN_PLACES_PERSONS
from rematch_pipeline.scenario import (
    CAPACITY_FILE,
    HOUSEHOLDS_FILE,
    capacity_rows,
    capacity_workbook,
    draw_household,
    draw_municipalities,
    kobo_sheets,
    save_reproducibly,
    write_xlsx,
)

# The scenario generator's own draws (households, municipalities, capacity sized in the solver's terms) are reused
# as they are; only the cut into weeks and the renewals are this module's.
_SCALED = ("places_persons", "units_1_room", "units_2_rooms", "units_3_rooms", "units_4plus_rooms",
           "units_wheelchair", "units_pets_allowed", "kita_u3", "kita_ue3", "school_primary", "school_secondary",
           "language_course_seats")
RENEWAL_VALID_DAYS = 180
ADDABLE = _SCALED  # the capacity columns a "what if" may add to a municipality's first offer


@dataclass(frozen=True)
class WeekFiles:
    """What arrives in one week, in the order it is dropped into the inbox (capacity before households)."""

    week: int
    round_date: date
    files: tuple[Path, ...] = field(default_factory=tuple)


def week_dates(start: date, weeks: int, interval_days: int = 7) -> list[date]:
    return [start + timedelta(days=interval_days * w) for w in range(weeks)]


def generate_weeks(out_dir: Path, *, weeks: int, arrivals_per_week: int, municipalities: int, seed: int,
                   start: date, capacity_share: float = 1.0, renew_every_weeks: int = 0,
                   renew_share: float = 0.0, interval_days: int = 7,
                   added: Sequence[tuple[str, str, int]] = ()) -> list[WeekFiles]:
    """Write week_NN/ folders with that week's exports; the same arguments give byte-identical files.

    Households are numbered across the horizon (case ids never repeat) and interviewed in the weeks before they
    arrive. The initial capacity (week 0) is sized, as the scenario generator sizes it, to `capacity_share` of all
    the horizon's arrivals; every `renew_every_weeks` weeks each municipality offers `renew_share` of its initial
    offer again, as a new offer valid from that week. `weeks` and `arrivals_per_week` count rounds and arrivals per
    round when rounds are `interval_days` apart. `added`: (AGS, capacity column, amount) added to that municipality's
    initial offer after every draw, so the rest of the scenario stays as it was.
    """
    if weeks < 1 or arrivals_per_week < 1 or municipalities < 1:
        raise ValueError("a simulation needs at least one week, one arrival a week and one municipality")
    rng = random.Random(seed)
    dates = week_dates(start, weeks, interval_days)
    munis, neighbours = draw_municipalities(rng, municipalities, True)
    tie_weights = list(itertools.accumulate(math.sqrt(m.population) for m in munis))
    arrivals = [[draw_household(rng, w * arrivals_per_week + i + 1, dates[w], munis, tie_weights, neighbours)
                 for i in range(arrivals_per_week)] for w in range(weeks)]
    everyone = [h for week in arrivals for h in week]
    sized_for = rng.sample(everyone, max(1, min(len(everyone), round(capacity_share * len(everyone)))))
    initial = capacity_rows(rng, munis, sized_for, start)
    _add_capacity(initial, added)
    out: list[WeekFiles] = []
    for w, day in enumerate(dates):
        folder = Path(out_dir) / f"week_{w:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        files: list[Path] = []
        rows = initial if w == 0 else (
            _renewal(initial, w, day, renew_share) if renew_every_weeks and renew_share > 0
            and w % renew_every_weeks == 0 else [])
        if rows:
            path = folder / CAPACITY_FILE
            save_reproducibly(capacity_workbook(rows), path)
            files.append(path)
        path = folder / HOUSEHOLDS_FILE
        write_xlsx(path, kobo_sheets(rng, arrivals[w], day, False))
        files.append(path)
        out.append(WeekFiles(w, day, tuple(files)))
    return out


def municipality_ags(seed: int, municipalities: int) -> list[str]:
    """The AGS of a simulation's municipalities: the first draw of `generate_weeks`, the same for the same seed."""
    munis, _ = draw_municipalities(random.Random(seed), municipalities, True)
    return [m.ags for m in munis]


def _add_capacity(rows: list[dict[str, object]], added: Sequence[tuple[str, str, int]]) -> None:
    by_ags = {str(r["ags"]): r for r in rows}
    for ags, column, amount in added:
        if column not in ADDABLE:
            raise ValueError(f"capacity can be added in the columns {', '.join(ADDABLE)}, not {column!r}")
        if ags not in by_ags:
            raise ValueError(f"AGS {ags} is not one of the simulation's municipalities (the summary's "
                             "fill_by_municipality lists them)")
        row = by_ags[ags]
        row[column] = int(str(row[column])) + amount


def _renewal(initial: list[dict[str, object]], week: int, day: date, share: float) -> list[dict[str, object]]:
    """Each municipality's offer again at `share` of its initial size, valid from `day`: a new offer id."""
    rows = []
    for row in initial:
        new = dict(row)
        for col in _SCALED:
            new[col] = int(round(int(str(row[col])) * share))
        new["places_persons"] = max(MIN_PLACES_PERSONS, int(str(new["places_persons"])))
        units = sum(int(str(new[c])) for c in _SCALED[1:5])
        if units == 0:
            new["units_2_rooms"] = units = 1
        for c in ("units_wheelchair", "units_pets_allowed"):
            new[c] = min(units, int(str(new[c])))
        new.update(offer_id=f"{row['offer_id']}-R{week:02d}", valid_from=day,
                   valid_until=day + timedelta(days=RENEWAL_VALID_DAYS))
        rows.append(new)
    return rows
