"""Erasure and purge say when nothing was left, and a run that changed nothing is not recorded as a removal."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from rematch_pipeline.cli import main
from rematch_pipeline.config import Settings
from rematch_pipeline.db import tables as t
from rematch_pipeline.db.engine import get_engine
from rematch_pipeline.ingest.service import ingest_file
from rematch_pipeline.repository import unit_of_work
from rematch_pipeline.retention import NOTHING_TO_ERASE, NOTHING_TO_PURGE
from tests import exports as x
from tests.factories import clock_of


@pytest.fixture
def two_households(settings: Settings, tmp_path: Path) -> Settings:
    path = tmp_path / "households.xlsx"
    path.write_bytes(x.kobo_xlsx([x.household("H1"), x.household("H2")],
                                 {"uuid-H1": x.family("head"), "uuid-H2": x.family("head")}))
    assert ingest_file(path, settings).status == "ingested"
    return settings


def _events(settings: Settings) -> list[tuple[str, str | None]]:
    a = t.audit_events.c
    with get_engine(settings.database_url).connect() as conn:
        return [(r.event, r.subject) for r in conn.execute(select(a.event, a.subject).order_by(a.id))
                if r.event.startswith(("data_", "nothing_to_"))]


def _purged_at(settings: Settings, case_id: str) -> object:
    h = t.households.c
    with get_engine(settings.database_url).connect() as conn:
        return conn.execute(select(h.purged_at).where(h.case_id == case_id)).scalar_one()


def test_a_second_erasure_changes_nothing_says_so_and_is_not_recorded_as_an_erasure(
        two_households: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    settings = two_households
    assert main(["erase", "H1"], settings=settings) == 0
    assert "erased: it left the pool" in capsys.readouterr().out
    erased_at = _purged_at(settings, "H1")
    clock_of(settings).advance(timedelta(days=1))
    assert main(["erase", "H1"], settings=settings) == 0
    said = capsys.readouterr().out
    assert said.startswith("nothing left to erase:") and "nothing was changed" in said, said
    assert "erased: it left the pool" not in said
    assert _purged_at(settings, "H1") == erased_at  # the moment of the erasure stays the first one
    events = _events(settings)
    assert [e for e, _ in events] == ["data_erased", NOTHING_TO_ERASE], events
    assert events[0][1] == events[1][1]  # both name the household by its pseudonym


def test_a_second_purge_changes_nothing_says_so_and_is_not_recorded_as_a_purge(
        two_households: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    settings = two_households
    clock = clock_of(settings)
    with unit_of_work(settings) as uow:  # H1's case closed (withdrawn) yesterday, its details still kept
        uow.personal_data.withdraw("H1", clock.now() - timedelta(days=1))
    today = clock.today().isoformat()
    assert main(["purge", "--before", today], settings=settings) == 0
    assert capsys.readouterr().out.startswith("1 closed households purged")
    assert main(["purge", "--before", today], settings=settings) == 0
    said = capsys.readouterr().out
    assert said.startswith("nothing left to purge:") and "nothing was changed" in said, said
    events = _events(settings)
    assert [e for e, _ in events] == ["data_purged", NOTHING_TO_PURGE], events
    assert _purged_at(settings, "H2") is None  # an open case keeps its details


def test_erasure_takes_the_name_with_the_phone_and_e_mail_and_no_round_snapshot_holds_it(
        settings: Settings, tmp_path: Path) -> None:
    # Rule: contact_name is contact data (retention.SCRUBBED_HOUSEHOLD, snapshot.PERSONAL_FIELDS): it goes with them.
    from rematch_pipeline.snapshot import household_json
    from rematch_pipeline.store import load_households

    path = tmp_path / "named.xlsx"
    path.write_bytes(x.kobo_xlsx([x.household("H1", contact_name="Olena Kovalenko"),
                                  x.household("H2", contact_name="Iryna Shevchenko")],
                                 {"uuid-H1": x.family("head"), "uuid-H2": x.family("head")}))
    assert ingest_file(path, settings).status == "ingested"
    with get_engine(settings.database_url).connect() as conn:
        stored = {h.case_id: h for h in load_households(conn)}
    assert stored["H1"].contact_name == "Olena Kovalenko"
    assert "contact_name" not in household_json(stored["H1"])  # what the solver saw never names the household
    assert main(["erase", "H1"], settings=settings) == 0
    h = t.households.c
    with get_engine(settings.database_url).connect() as conn:
        rows = {r.case_id: r for r in conn.execute(select(h.case_id, h.contact_name, h.contact_phone))}
    assert (rows["H1"].contact_name, rows["H1"].contact_phone) == (None, None)
    assert rows["H2"].contact_name == "Iryna Shevchenko"  # an open case keeps its name
