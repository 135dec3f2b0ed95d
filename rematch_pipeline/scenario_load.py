"""Read export files straight into domain objects, without the database (benchmarks and tests)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from rematch_pipeline import store
from rematch_pipeline.config import DEFAULT_PSEUDONYM_SALT
from rematch_pipeline.domain import CapacityOffer, Household, Member


def load_scenario(households_file: Path, capacity_file: Path) -> tuple[list[Household], list[CapacityOffer]]:
    from rematch_pipeline.ingest.readers import read_file

    hb = read_file(households_file)
    members: dict[str, list[Member]] = {}
    for _, rec in hb.tables["members"].iterrows():
        m = store.member_row(rec)
        members.setdefault(m["case_id"], []).append(Member(m["relation"], m["sex"], m["birth_year"],
                                                           m["mobility_impaired"], m["occupation"],
                                                           m["qualification"]))
    households = []
    for _, rec in hb.tables["households"].iterrows():
        row = store.household_row(rec, 0, DEFAULT_PSEUDONYM_SALT)
        if row["consent_matching"] and members.get(row["case_id"]):
            households.append(store.household_from_row(SimpleNamespace(**row), members[row["case_id"]]))
    cb = read_file(capacity_file)
    offers = [store.offer_from_row(SimpleNamespace(**store.offer_row(rec, 0)))
              for _, rec in cb.tables["capacity_offers"].iterrows()]
    return households, offers
