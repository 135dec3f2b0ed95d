"""Bad-input catalogue: each case is one small export file with the exact rows accepted and quarantined by rule."""

from __future__ import annotations

import csv
import hashlib
import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, insert, select

from rematch_pipeline.clock import ManualClock
from rematch_pipeline.config import Settings, load_settings
from rematch_pipeline.db import tables as t
from rematch_pipeline.db.engine import get_engine, migrate
from rematch_pipeline.ingest.readers import read_file
from rematch_pipeline.ingest.service import IngestReport, ingest_file
from tests import exports as x

TODAY = date(2026, 11, 23)
A, B = x.household("RM-A"), x.household("RM-B")
AB_MEMBERS = {"uuid-RM-A": x.family("head", "child"), "uuid-RM-B": x.family("head")}
# Kobo XLSX: header row 1, households from row 2; members sheet rows 2-3 belong to A, row 4 to B.


def kobo(*households: dict[str, Any], members: dict[str, list[dict[str, Any]]] | None = None, **sheets: Any) -> bytes:
    return x.kobo_xlsx(households, AB_MEMBERS if members is None else members, **sheets)


@dataclass
class Case:
    name: str
    file: tuple[str, bytes]
    status: str = "ingested"
    accepted: dict[str, list[int]] = field(default_factory=dict)  # table -> source rows stored
    quarantined: dict[tuple[str, int], set[str]] = field(default_factory=dict)  # (table, row) -> rules
    file_rule: str | None = None  # for a file refused or not recognised as a whole
    before: list[tuple[str, bytes]] = field(default_factory=list)  # files ingested first
    setup: Callable[[Connection], None] | None = None  # runs after `before`
    after_setup: list[tuple[str, bytes]] = field(default_factory=list)  # files ingested after `setup`
    env: dict[str, str] = field(default_factory=dict)
    replaced: int = 0
    check: Callable[[Connection, IngestReport], None] | None = None
    archived: bool = True  # False for a file refused before it is copied into the archive
    not_read: int = 0  # rows of sheets that hold no table of the contract


def _offered_round(conn: Connection, respond_by: date = date(2026, 11, 30), offered_at: date = TODAY) -> None:
    conn.execute(insert(t.rounds).values(round_id="R-2026-11-23", round_date=date(2026, 11, 23), status="offered",
                                         policy={}, created_at=TODAY))
    conn.execute(insert(t.assignments), [
        {"round_id": "R-2026-11-23", "case_id": c, "ags": "09162000", "offer_id": "OF-1", "persons": 1, "score": 1.0,
         "score_terms": {}, "preference_rank": 1} for c in ("RM-A", "RM-B")])
    conn.execute(insert(t.match_offers), [
        {"round_id": "R-2026-11-23", "case_id": c, "ags": "09162000", "offer_id": "OF-1", "persons": 1,
         "demand": {"places_persons": 1, "rooms_needed": 1}, "respond_by": respond_by, "status": "pending",
         "offered_at": offered_at} for c in ("RM-A", "RM-B")])


def _notes_kept(conn: Connection, _: IngestReport) -> None:
    notes = conn.execute(select(t.households.c.notes).where(t.households.c.case_id == "RM-A")).scalar()
    assert notes == "<script>alert('x')</script> =HYPERLINK(\"http://evil\") +1 -2 @SUM(A1)"


def _stored(table: str, column: str, key: str, value: Any) -> Callable[[Connection, IngestReport], None]:
    """A check that the stored row `key` of `table` holds `value` in `column` (the canonical value validated)."""
    tbl = t.metadata.tables[table]
    key_column = tbl.c.case_id if "case_id" in tbl.c else tbl.c.offer_id

    def check(conn: Connection, _: IngestReport) -> None:
        assert conn.execute(select(tbl.c[column]).where(key_column == key)).scalar_one() == value

    return check


def _ags_repaired(conn: Connection, _: IngestReport) -> None:
    assert conn.execute(select(t.capacity_offers.c.ags)).scalars().all() == ["01002000"]


def _offer_replaced(conn: Connection, report: IngestReport) -> None:
    assert conn.execute(select(t.capacity_offers.c.places_persons)).scalars().all() == [40]
    event = conn.execute(select(t.audit_events.c.details).where(t.audit_events.c.event == "offer_replaced")).scalar()
    assert event["raw_file_id"] == report.raw_file_id and event["previous_raw_file_id"] == report.raw_file_id - 1


def _offer_kept_by_its_owner(conn: Connection, report: IngestReport) -> None:
    offers = t.capacity_offers.c
    rows = conn.execute(select(offers.offer_id, offers.ags, offers.places_persons).order_by(offers.offer_id)).all()
    assert [tuple(r) for r in rows if r.offer_id == "OF-1"] == [("OF-1", "09162000", 12)]  # München's, unchanged
    refused = conn.execute(select(t.audit_events.c.details).where(t.audit_events.c.event == "offer_refused")).scalar()
    assert refused["raw_file_id"] == report.raw_file_id


def _household_replaced(conn: Connection, report: IngestReport) -> None:
    row = conn.execute(select(t.households).where(t.households.c.case_id == "RM-A")).one()
    assert row.german_level == "b2_plus" and row.raw_file_id == report.raw_file_id
    members = conn.execute(select(t.members.c.relation).where(t.members.c.case_id == "RM-A")).scalars().all()
    assert members == ["head", "child"]  # a CSV without member rows keeps the known members
    event = conn.execute(select(t.audit_events.c.details)
                         .where(t.audit_events.c.event == "household_replaced")).scalars().all()[-1]
    assert event["previous_submission_time"] == "2026-11-02T10:15:00+00:00"  # stored with its offset (UTC)
    assert event["submission_time"] == "2026-11-10T08:00:00+00:00"


def _older_kept(conn: Connection, _: IngestReport) -> None:
    row = conn.execute(select(t.households.c.german_level).where(t.households.c.case_id == "RM-A")).scalar()
    assert row == "b2_plus"


def _decision_stored(conn: Connection, _: IngestReport) -> None:
    rows = conn.execute(select(t.decisions.c.case_id, t.decisions.c.decision, t.decisions.c.reason)).all()
    assert sorted(map(tuple, rows)) == [("RM-A", "accept", None), ("RM-B", "decline", "Wants to stay near family")]


def _bomb() -> bytes:
    return x.zip_bytes({"rematch_household.csv": b"case_id\n" + b"0" * (8 * 1024 * 1024)})


def _with_entry(xlsx: bytes, name: str, data: bytes) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(xlsx)) as src, zipfile.ZipFile(buf, "w") as out:
        for info in src.infolist():
            out.writestr(info, src.read(info.filename))
        out.writestr(name, data)
    return buf.getvalue()


NEWER_A = x.household("RM-A", german_level="b2_plus", _submission_time="2026-11-10T08:00:00")
HH_OK = {"households": [2, 3], "members": [2, 3, 4]}
HH_B_ONLY = {"households": [3], "members": [4]}
A_BAD = {("members", 2): {"member_of_invalid_household"}, ("members", 3): {"member_of_invalid_household"}}
A_UNAPPLIED = {("members", 2): {"member_of_unapplied_household"}, ("members", 3): {"member_of_unapplied_household"}}

def _rows_moved(xlsx: bytes, old: bytes, new: bytes) -> bytes:
    """The workbook with one row's number changed in its sheet XML, as a crafted file would have it."""
    with zipfile.ZipFile(io.BytesIO(xlsx)) as zf:
        entries = {n: zf.read(n) for n in zf.namelist()}
    sheets = [n for n in entries if n.startswith("xl/worksheets/") and old in entries[n]]
    entries[sheets[0]] = entries[sheets[0]].replace(old, new, 1)
    return x.zip_bytes(entries)


def _repeated_column(households: list[dict[str, Any]], name: str, second: list[Any]) -> list[list[Any]]:
    """The Kobo main sheet with the column `name` written a second time at the end, holding `second`."""
    rows = x.kobo_main_rows(households)
    header = rows[0]
    at = next(i for i, h in enumerate(header) if h == name or str(h).endswith("/" + name))
    return [row + [header[at] if n == 0 else second[n - 1]] for n, row in enumerate(rows)]


def _capacity_with_repeated_column(offers: list[dict[str, Any]], name: str, second: list[str]) -> bytes:
    """A capacity CSV with the column `name` written a second time at the end, holding `second`."""
    rows = list(csv.reader(io.StringIO(x.capacity_csv(offers).decode("utf-8-sig")), delimiter=";"))
    out = io.StringIO()
    csv.writer(out, delimiter=";", lineterminator="\r\n").writerows(
        [row + [name if n == 0 else second[n - 1]] for n, row in enumerate(rows)])
    return out.getvalue().encode()


def _zip_flagged_encrypted(entries: dict[str, bytes]) -> bytes:
    """An archive whose entries declare themselves encrypted, as a password-protected export does."""
    data = bytearray(x.zip_bytes(entries))
    for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # local and central headers
        at = data.find(signature)
        while at >= 0:
            data[at + flags_at] |= 0x1
            at = data.find(signature, at + 4)
    return bytes(data)


def _zip_packed_with(method: int, entries: dict[str, bytes]) -> bytes:
    """An archive whose entries declare another tool's compression method (9: Deflate64)."""
    data = bytearray(x.zip_bytes(entries))
    for signature, method_at in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):  # local and central headers
        at = data.find(signature)
        while at >= 0:
            data[at + method_at:at + method_at + 2] = method.to_bytes(2, "little")
            at = data.find(signature, at + 4)
    return bytes(data)


def _damaged(archive: bytes) -> bytes:
    """The archive with the compressed bytes of its first entry overwritten (a transfer cut or garbled)."""
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        info = zf.infolist()[0]
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data = bytearray(archive)
    data[start + 8:start + 40] = b"\xff" * 32
    return bytes(data)


def _stored_submission(value: str) -> Callable[[Connection, IngestReport], None]:
    return _stored("households", "submission_time", "RM-A", value)


def _kobo_cell(households: list[dict[str, Any]], header: str, row: int, cell: bytes) -> bytes:
    """A Kobo XLSX of `households` (members AB_MEMBERS) whose cell in column `header`, spreadsheet row `row`, is
    replaced by the raw cell XML `cell` (`{ref}` stands for its reference), as another program may write it."""
    from rematch_pipeline.ingest.readers import _column_letter

    names = x.kobo_main_rows(households)[0]
    ref = f"{_column_letter(next(i for i, h in enumerate(names) if str(h).split('/')[-1] == header))}{row}"
    archive = zipfile.ZipFile(io.BytesIO(kobo(*households)))
    entries = {n: archive.read(n) for n in archive.namelist()}
    sheet = "xl/worksheets/sheet1.xml"
    entries[sheet], n = re.subn(rb'<c r="' + ref.encode() + rb'"[^>]*?(?:/>|>.*?</c>)',
                                cell.replace(b"{ref}", ref.encode()), entries[sheet], count=1, flags=re.S)
    assert n == 1
    return x.zip_bytes(entries)


def _quotes_nothing(*values: str) -> Callable[[Connection, IngestReport], None]:
    """A check that neither the report nor any quarantine message quotes `values` (a cell's personal content)."""
    def check(conn: Connection, report: IngestReport) -> None:
        messages = [report.message, *conn.execute(select(t.quarantine.c.message)).scalars()]
        assert not [m for m in messages for v in values if v in m]

    return check


def _odk_with(extra: dict[str, bytes], members_header: bytes | None = None) -> bytes:
    """The ODK ZIP of A and B with `extra` entries; `members_header` replaces the members CSV's header line."""
    archive = zipfile.ZipFile(io.BytesIO(x.odk_zip([A, B], AB_MEMBERS)))
    entries = {n: archive.read(n) for n in archive.namelist()}
    if members_header is not None:
        rest = entries["rematch_household-members.csv"].split(b"\n", 1)[1]
        entries["rematch_household-members.csv"] = members_header + b"\n" + rest
    return x.zip_bytes({**entries, **extra})


def _zip_with_a_name_twice() -> bytes:
    buf = io.BytesIO()
    archive = zipfile.ZipFile(io.BytesIO(x.odk_zip([A, B], AB_MEMBERS)))
    with zipfile.ZipFile(buf, "w") as out, pytest.warns(UserWarning):  # zipfile warns of the duplicate name
        for name in archive.namelist():
            out.writestr(name, archive.read(name))
        out.writestr("rematch_household-members.csv", b"members-relation,PARENT_KEY,KEY\nhead,uuid:x,uuid:x/m[1]\n")
    return buf.getvalue()


def _late_offer(conn: Connection) -> None:
    _offered_round(conn, respond_by=date(2026, 11, 21), offered_at=date(2026, 11, 20))


CASES = [
    Case("kobo_xlsx_two_valid_households", ("ok.xlsx", kobo(A, B)), accepted=HH_OK),
    Case("kobo_xlsx_with_hxl_row", ("hxl.xlsx", x.kobo_xlsx([A, B], AB_MEMBERS, hxl=True)),
         accepted={"households": [3, 4], "members": [2, 3, 4]}),
    Case("interview_date_in_future", ("future.xlsx", kobo(x.household("RM-A", interview_date="2026-12-24"), B)),
         accepted=HH_B_ONLY, quarantined={("households", 2): {"interview_date_not_in_future"}, **A_BAD}),
    Case("interview_date_before_2022", ("old.xlsx", kobo(x.household("RM-A", interview_date="2021-12-31"), B)),
         accepted=HH_B_ONLY, quarantined={("households", 2): {"interview_date_not_before_2022"}, **A_BAD}),
    Case("interview_date_not_a_calendar_date",
         ("feb30.xlsx", kobo(x.household("RM-A", interview_date="2026-02-30"), B)),
         accepted=HH_B_ONLY, quarantined={("households", 2): {"interview_date_real_date"}, **A_BAD}),
    Case("interview_date_in_german_format_is_read_as_that_date",
         ("de_date.xlsx", kobo(x.household("RM-A", interview_date="01.11.2026"), B)),
         accepted=HH_OK, check=_stored("households", "interview_date", "RM-A", date(2026, 11, 1))),
    Case("consent_in_capitals", ("consent.xlsx", kobo(x.household("RM-A", consent_matching="Yes"), B)),
         accepted=HH_B_ONLY, quarantined={("households", 2): {"consent_matching_allowed_value"}, **A_BAD}),
    Case("language_not_in_the_form", ("lang.xlsx", kobo(x.household("RM-A", languages="uk fr"), B)),
         accepted=HH_B_ONLY, quarantined={("households", 2): {"languages_allowed_values"}, **A_BAD}),
    Case("medical_none_combined_with_a_need",
         ("none.xlsx", kobo(x.household("RM-A", medical_needs="none dialysis"), B)),
         accepted=HH_B_ONLY, quarantined={("households", 2): {"medical_needs_none_excludes_others"}, **A_BAD}),
    Case("weight_above_five", ("w7.xlsx", kobo(x.household("RM-A", weight_work="7"), B)),
         accepted=HH_B_ONLY, quarantined={("households", 2): {"weight_work_0_to_5"}, **A_BAD}),
    Case("weight_with_decimals", ("w35.xlsx", kobo(x.household("RM-A", weight_culture="3.5"), B)),
         accepted=HH_B_ONLY, quarantined={("households", 2): {"weight_culture_whole_number"}, **A_BAD}),
    Case("ties_ags_with_seven_digits", ("ties.xlsx", kobo(x.household("RM-A", ties_ags="1002000"), B)),
         accepted=HH_B_ONLY, quarantined={("households", 2): {"ties_ags_eight_digits"}, **A_BAD}),
    Case("case_id_twice_in_one_export",
         ("dup.xlsx", kobo(A, x.household("RM-A", _uuid="uuid-RM-B"))),
         # Both rows claim RM-A, so RM-A also has all their members: two heads, member number 1 twice.
         quarantined={("households", 2): {"case_id_unique", "household_one_head", "household_has_invalid_members"},
                      ("households", 3): {"case_id_unique", "household_one_head", "household_has_invalid_members"},
                      ("members", 2): {"household_one_head", "member_no_unique_in_household",
                                       "member_of_invalid_household"},
                      ("members", 3): {"household_one_head", "member_of_invalid_household"},
                      ("members", 4): {"household_one_head", "member_no_unique_in_household",
                                       "member_of_invalid_household"}}),
    Case("case_id_that_a_spreadsheet_would_run_as_a_formula",
         ("formula_id.xlsx", kobo(x.household("=HYPERLINK(\"x\")", _uuid="uuid-RM-A"), B)),
         accepted=HH_B_ONLY, quarantined={("households", 2): {"case_id_not_formula_like"}, **A_BAD}),
    Case("offer_id_that_a_spreadsheet_would_run_as_a_formula",
         ("formula_offer.csv", x.capacity_csv([x.offer("@SUM(A1)"), x.offer("OF-2")])),
         accepted={"capacity_offers": [3]}, quarantined={("capacity_offers", 2): {"offer_id_not_formula_like"}}),
    Case("case_id_empty", ("noid.xlsx", kobo(x.household(None, _uuid="uuid-RM-A"), B)),
         # Its members are linked, not lost: they are told their household row lacks the case_id, nothing else.
         accepted=HH_B_ONLY, quarantined={("households", 2): {"case_id_required"},
                                          ("members", 2): {"household_without_case_id"},
                                          ("members", 3): {"household_without_case_id"}}),
    Case("two_heads_in_one_household",
         ("heads.xlsx", kobo(A, B, members={"uuid-RM-A": x.family("head", "head", "child"),
                                            "uuid-RM-B": x.family("head")})),
         accepted={"households": [3], "members": [5]},
         quarantined={("households", 2): {"household_one_head", "household_has_invalid_members"},
                      ("members", 2): {"household_one_head", "member_of_invalid_household"},
                      ("members", 3): {"household_one_head", "member_of_invalid_household"},
                      ("members", 4): {"household_one_head", "member_of_invalid_household"}}),
    Case("household_without_head",
         ("nohead.xlsx", kobo(A, B, members={"uuid-RM-A": x.family("spouse"), "uuid-RM-B": x.family("head")})),
         accepted={"households": [3], "members": [3]},
         quarantined={("households", 2): {"household_one_head", "household_has_invalid_members"},
                      ("members", 2): {"household_one_head", "member_of_invalid_household"}}),
    Case("household_without_members", ("nomembers.xlsx", kobo(A, B, members={"uuid-RM-B": x.family("head")})),
         accepted={"households": [3], "members": [2]}, quarantined={("households", 2): {"household_has_members"}}),
    Case("member_born_before_1900",
         ("old.xlsx", kobo(A, B, members={"uuid-RM-A": [x.member("head", "1850")], "uuid-RM-B": x.family("head")})),
         accepted={"households": [3], "members": [3]},
         quarantined={("households", 2): {"household_has_invalid_members"},
                      ("members", 2): {"birth_year_1900_to_current_year"}}),
    Case("member_born_next_year",
         ("unborn.xlsx", kobo(A, B, members={"uuid-RM-A": [x.member("head", "2027")], "uuid-RM-B": x.family("head")})),
         accepted={"households": [3], "members": [3]},
         quarantined={("households", 2): {"household_has_invalid_members"},
                      ("members", 2): {"birth_year_1900_to_current_year"}}),
    Case("member_relation_not_in_the_form",
         ("cousin.xlsx", kobo(A, B, members={"uuid-RM-A": [x.member("head"), x.member("cousin", "2010")],
                                             "uuid-RM-B": x.family("head")})),
         accepted={"households": [3], "members": [4]},
         quarantined={("households", 2): {"household_has_invalid_members"},
                      ("members", 2): {"member_of_invalid_household"}, ("members", 3): {"relation_allowed_value"}}),
    Case("member_linked_to_no_submission",
         ("orphan.xlsx", kobo(A, B, members={**AB_MEMBERS, "uuid-gone": x.family("head")})),
         accepted=HH_OK, quarantined={("members", 5): {"member_case_id_required"}}),
    Case("html_and_formulas_in_notes_are_kept_as_text",
         ("notes.xlsx", kobo(x.household("RM-A", notes="<script>alert('x')</script> =HYPERLINK(\"http://evil\") "
                                                       "+1 -2 @SUM(A1)"), B)),
         accepted=HH_OK, check=_notes_kept),
    Case("kobo_csv_updates_a_known_household",
         ("update.csv", x.kobo_csv([x.household("RM-A", german_level="b2_plus",
                                                _submission_time="2026-11-10T08:00:00")])),
         before=[("first.xlsx", kobo(A, B))], accepted={"households": [2]}, replaced=1, check=_household_replaced),
    Case("kobo_csv_with_only_option_columns_and_no_bom",
         ("options.csv", x.kobo_csv([NEWER_A], bom=False)),
         before=[("first.xlsx", kobo(A, B))], accepted={"households": [2]}, replaced=1),
    Case("kobo_csv_cannot_add_a_new_household",
         ("new.csv", x.kobo_csv([x.household("RM-C")])), before=[("first.xlsx", kobo(A, B))],
         quarantined={("households", 2): {"household_unknown_without_members"}}),
    Case("older_submission_does_not_replace_a_newer_one",
         ("older.xlsx", kobo(A, B)), before=[("newer.xlsx", kobo(NEWER_A, B))],
         accepted=HH_B_ONLY, check=_older_kept,
         quarantined={("households", 2): {"older_submission_than_stored"}, **A_UNAPPLIED}),
    Case("odk_central_zip_two_valid_households", ("odk.zip", x.odk_zip([A, B], AB_MEMBERS)), accepted=HH_OK),
    Case("odk_central_zip_member_with_unknown_parent",
         ("odk_orphan.zip", x.odk_zip([A, B], {**AB_MEMBERS, "uuid-gone": x.family("head")})),
         accepted=HH_OK, quarantined={("members", 5): {"member_case_id_required"}}),
    Case("capacity_csv_semicolons_and_german_dates", ("cap.csv", x.capacity_csv([x.offer()])),
         accepted={"capacity_offers": [2]}),
    Case("capacity_ags_lost_its_leading_zero_is_repaired",
         ("zero.csv", x.capacity_csv([x.offer(ags="1002000", state="SH")])),
         accepted={"capacity_offers": [2]}, check=_ags_repaired),
    Case("capacity_ags_lost_zero_but_state_disagrees_is_not_repaired",
         ("zero_by.csv", x.capacity_csv([x.offer(ags="1002000", state="BY")])),
         quarantined={("capacity_offers", 2): {"ags_eight_digits"}}),
    Case("capacity_state_does_not_match_ags",
         ("state.csv", x.capacity_csv([x.offer("OF-1"), x.offer("OF-2", state="NW")], sep=",")),
         accepted={"capacity_offers": [2]}, quarantined={("capacity_offers", 3): {"state_matches_ags"}}),
    Case("capacity_below_eight_places", ("small.csv", x.capacity_csv([x.offer(places_persons="7")])),
         quarantined={("capacity_offers", 2): {"places_persons_at_least_8"}}),
    Case("capacity_more_wheelchair_units_than_units",
         ("wheel.csv", x.capacity_csv([x.offer(units_wheelchair="5")])),
         quarantined={("capacity_offers", 2): {"wheelchair_units_within_units"}}),
    Case("capacity_more_pet_units_than_units", ("pets.csv", x.capacity_csv([x.offer(units_pets_allowed="9")])),
         quarantined={("capacity_offers", 2): {"pet_units_within_units"}}),
    Case("capacity_valid_from_after_valid_until",
         ("dates.csv", x.capacity_csv([x.offer(valid_from="01.04.2027")])),
         quarantined={("capacity_offers", 2): {"valid_from_not_after_valid_until"}}),
    Case("capacity_offer_id_twice_in_one_file",
         ("dup_offer.xlsx", x.capacity_xlsx([x.offer("OF-1"), x.offer("OF-1", ags="09162001")])),
         quarantined={("capacity_offers", 2): {"offer_id_unique"}, ("capacity_offers", 3): {"offer_id_unique"}}),
    Case("capacity_resubmission_replaces_the_offer",
         ("again.xlsx", x.capacity_xlsx([x.offer(places_persons="40")])),
         before=[("first.csv", x.capacity_csv([x.offer()]))], accepted={"capacity_offers": [2]}, replaced=1,
         check=_offer_replaced),
    Case("capacity_offer_id_of_another_municipality_is_quarantined",
         ("other.csv", x.capacity_csv([x.offer(ags="05111000", municipality_name="Düsseldorf", state="NW",
                                               places_persons="99")])),
         before=[("first.csv", x.capacity_csv([x.offer()]))],
         quarantined={("capacity_offers", 2): {"offer_id_of_another_municipality"}}, check=_offer_kept_by_its_owner),
    Case("capacity_file_with_a_foreign_and_an_own_offer_id",
         ("mixed.csv", x.capacity_csv([x.offer(ags="05111000", municipality_name="Düsseldorf", state="NW"),
                                       x.offer("OF-9", ags="05111000", municipality_name="Düsseldorf", state="NW")])),
         before=[("first.csv", x.capacity_csv([x.offer()]))], accepted={"capacity_offers": [3]},
         quarantined={("capacity_offers", 2): {"offer_id_of_another_municipality"}}),
    Case("capacity_number_too_large_for_the_database_is_quarantined",
         ("huge.csv", x.capacity_csv([x.offer(places_persons="99999999999999999999"), x.offer("OF-2")])),
         accepted={"capacity_offers": [3]}, quarantined={("capacity_offers", 2): {"places_persons_fits_storage"}}),
    Case("capacity_numbers_in_full_width_digits_read_as_digits_then_checked_by_the_same_range_rules",
         ("fw.csv", x.capacity_csv([x.offer(places_persons="１２"), x.offer("OF-2", units_1_room="-３")])),
         accepted={"capacity_offers": [2]}, quarantined={("capacity_offers", 3): {"units_1_room_not_negative"}},
         check=_stored("capacity_offers", "places_persons", "OF-1", 12)),
    Case("capacity_numbers_in_other_scripts_digits_are_quarantined_not_read_as_numbers",  # Arabic-Indic, Devanagari
         ("digits.csv", x.capacity_csv([x.offer(places_persons="٥"), x.offer("OF-2", units_1_room="३")])),
         quarantined={("capacity_offers", 2): {"places_persons_whole_number"},
                      ("capacity_offers", 3): {"units_1_room_whole_number"}}),
    Case("household_weight_in_full_width_digits_is_checked_as_that_number",
         ("fw.xlsx", kobo(x.household("RM-A", weight_work="９"), B)),
         accepted=HH_B_ONLY, quarantined={("households", 2): {"weight_work_0_to_5"}, **A_BAD}),
    Case("offer_id_with_a_trailing_line_break_is_the_same_offer_id",  # a cell typed with Alt+Enter
         ("newline.csv", x.capacity_csv([x.offer("OF-9"), x.offer("OF-9\n", places_persons="20"), x.offer("OF-10")])),
         accepted={"capacity_offers": [4]},
         quarantined={("capacity_offers", 2): {"offer_id_unique"}, ("capacity_offers", 3): {"offer_id_unique"}}),
    Case("nul_in_free_text_notes_is_quarantined_on_every_database",  # OOXML writes it as _x0000_
         ("nul.xlsx", kobo(x.household("RM-A", notes="hello_x0000_world"), B)),
         accepted=HH_B_ONLY, quarantined={("households", 2): {"notes_fits_storage"}, **A_BAD}),
    Case("submission_time_with_thirty_decimal_places_is_quarantined",
         ("sub.xlsx", kobo({**x.household("RM-A"), "_submission_time": "2026-11-02T10:15:00." + "0" * 30 + "+01:00"},
                           B)),
         accepted=HH_B_ONLY,
         quarantined={("households", 2): {"submission_time_real_timestamp", "_submission_time_fits_storage"}, **A_BAD}),
    Case("file_name_with_a_long_last_dot_segment_is_archived_and_recorded",
         ("kapazitaet." + "Landkreis_Muenchen_Stand_Dezember_" * 6 + "csv", x.capacity_csv([x.offer()])),
         accepted={"capacity_offers": [2]}),
    Case("csv_name_longer_than_a_sheet_name_column_with_a_quarantined_row",
         ("Kapazitaetsmeldung_" + "Landkreis_Muenchen_" * 8 + ".csv",
          x.capacity_csv([x.offer(), x.offer("OF-2", state="XX")])),
         accepted={"capacity_offers": [2]}, quarantined={("capacity_offers", 3): {"state_allowed_value"}}),
    Case("xlsx_row_number_beyond_a_worksheet_is_refused_before_padding",  # 5 KB asking for 30 million rows
         ("rows.xlsx", _rows_moved(x.capacity_xlsx([x.offer()]), b'<row r="2"', b'<row r="30000000"')),
         status="refused", file_rule="xlsx_beyond_sheet_bounds"),
    Case("capacity_offer_id_longer_than_the_database_holds_is_quarantined",
         ("longid.csv", x.capacity_csv([x.offer("OF-" + "9" * 70), x.offer("OF-2")])),
         accepted={"capacity_offers": [3]}, quarantined={("capacity_offers", 2): {"offer_id_fits_storage"}}),
    Case("household_weight_beyond_any_integer_is_quarantined_by_its_range_alone",
         ("weight.xlsx", kobo(x.household("RM-A", weight_work="4294967296"), B)),
         accepted=HH_B_ONLY, quarantined={("households", 2): {"weight_work_0_to_5"}, **A_BAD}),
    # --- one canonical form (class 2) --------------------------------------------------------------------------
    Case("case_id_with_a_zero_width_space_is_quarantined",
         ("zw.xlsx", kobo(x.household("RM-A\u200b", _uuid="uuid-RM-A"), B)),
         accepted=HH_B_ONLY, quarantined={("households", 2): {"case_id_plain_characters"}, **A_BAD}),
    Case("case_id_with_a_direction_override_is_quarantined",
         ("bidi.xlsx", kobo(x.household("RM-\u202eA", _uuid="uuid-RM-A"), B)),
         accepted=HH_B_ONLY, quarantined={("households", 2): {"case_id_plain_characters"}, **A_BAD}),
    Case("case_id_with_a_cyrillic_letter_among_latin_ones_is_quarantined",  # "RM-A" with a Cyrillic A
         ("lookalike.xlsx", kobo(x.household("RM-\u0410", _uuid="uuid-RM-A"), B)),
         accepted=HH_B_ONLY, quarantined={("households", 2): {"case_id_one_script"}, **A_BAD}),
    Case("case_id_in_cyrillic_alone_is_accepted",
         ("cyrillic.xlsx", kobo(x.household("\u0420\u041c-001", _uuid="uuid-RM-A"), B)), accepted=HH_OK,
         check=_stored("households", "interview_date", "\u0420\u041c-001", date(2026, 11, 1))),
    Case("case_id_in_full_width_letters_is_stored_as_the_same_ascii_id",
         ("fullwidth.xlsx", kobo(x.household("\uff32\uff2d\uff0d\uff21", _uuid="uuid-RM-A"), B)), accepted=HH_OK,
         check=_stored("households", "interview_date", "RM-A", date(2026, 11, 1))),
    Case("case_id_with_surrounding_spaces_and_a_line_break_is_stored_trimmed",
         ("trim.xlsx", kobo(x.household(" RM-A\n", _uuid="uuid-RM-A"), B)), accepted=HH_OK,
         check=_stored("households", "interview_date", "RM-A", date(2026, 11, 1))),
    Case("offer_id_with_a_greek_letter_among_latin_ones_is_quarantined",  # "OF-A1" with a Greek Alpha
         ("greek.csv", x.capacity_csv([x.offer("OF-\u03911"), x.offer("OF-2")])),
         accepted={"capacity_offers": [3]}, quarantined={("capacity_offers", 2): {"offer_id_one_script"}}),
    Case("offer_id_with_a_soft_hyphen_is_quarantined",
         ("shy.csv", x.capacity_csv([x.offer("OF\u00ad-1"), x.offer("OF-2")])),
         accepted={"capacity_offers": [3]},
         quarantined={("capacity_offers", 2): {"offer_id_plain_characters"}}),
    Case("capacity_number_with_a_no_break_space_and_a_line_break_is_that_number",
         ("nbsp.csv", x.capacity_csv([x.offer(places_persons="\u00a012\n")])),
         accepted={"capacity_offers": [2]}, check=_stored("capacity_offers", "places_persons", "OF-1", 12)),
    Case("languages_in_full_width_letters_are_read_as_the_choices",
         ("fwlang.csv", x.kobo_csv([x.household("RM-A", languages="\uff55\uff4b de",
                                                _submission_time="2026-11-10T08:00:00")])),
         before=[("first.xlsx", kobo(A, B))], accepted={"households": [2]}, replaced=1,
         check=_stored("households", "languages", "RM-A", "de uk")),
    Case("free_text_notes_keep_their_own_characters",  # NFC only: a ligature or full-width text stays as typed
         ("notes_nfc.xlsx", kobo(x.household("RM-A", notes="Arzt\ufb01ndung \uff08Kiel\uff09"), B)),
         accepted=HH_OK, check=_stored("households", "notes", "RM-A", "Arzt\ufb01ndung \uff08Kiel\uff09")),
    Case("decision_round_id_with_a_zero_width_joiner_is_quarantined",
         ("zwj.csv", x.decisions_csv([x.decision("RM-A", round_id="R-2026-11-23\u200d"), x.decision("RM-B")])),
         before=[("hh.xlsx", kobo(A, B))], setup=_offered_round, accepted={"decisions": [3]},
         quarantined={("decisions", 2): {"round_id_plain_characters"}}),
    # --- the structure of an export (class 4) ------------------------------------------------------------------
    Case("two_sheets_that_both_look_like_the_household_table_are_refused_not_merged",
         ("two_main.xlsx", kobo(A, B, extra={"copy": x.kobo_main_rows([x.household("RM-C")])})),
         status="unrecognised", file_rule="unrecognised_file"),
    Case("two_member_sheets_are_refused_not_merged",
         ("two_members.xlsx", kobo(A, B, extra={"members2": [list(x.MEMBER_FIELDS), ["head", "male", "1970"]]})),
         status="unrecognised", file_rule="unrecognised_file"),
    Case("a_sheet_of_no_known_table_is_counted_and_quarantined_not_ignored",
         ("extra.xlsx", kobo(A, B, extra={"Notizen": [["Familie", "Hinweis"], ["RM-X", "kommt später"],
                                                      ["RM-Y", "Telefon"]]})),
         accepted=HH_OK, not_read=3),
    Case("a_column_named_twice_with_different_values_quarantines_the_row",
         ("twice.xlsx", kobo(A, B, main_rows=_repeated_column([A, B], "german_level", ["b1", "a1"]))),
         accepted=HH_B_ONLY, quarantined={("households", 2): {"repeated_column_disagrees"}, **A_BAD}),
    Case("a_column_named_twice_with_the_same_values_is_read",
         ("twice_same.xlsx", kobo(A, B, main_rows=_repeated_column([A, B], "german_level", ["a1", "a1"]))),
         accepted=HH_OK),
    Case("a_column_named_twice_filled_in_one_copy_only_is_read",
         ("twice_one.xlsx", kobo(A, B, main_rows=_repeated_column([A, B], "ties_ags", ["09162000", None]))),
         accepted=HH_OK, check=_stored("households", "ties_ags", "RM-A", "09162000")),
    Case("a_capacity_column_named_twice_with_different_values_quarantines_the_offer",
         ("twice.csv", _capacity_with_repeated_column([x.offer(), x.offer("OF-2")], "places_persons", ["12", "10"])),
         accepted={"capacity_offers": [2]},
         quarantined={("capacity_offers", 3): {"repeated_column_disagrees"}}),
    Case("a_repeated_uuid_column_with_different_values_quarantines_the_household",
         ("uuid_twice.xlsx", kobo(A, B, main_rows=_repeated_column([A, B], "_uuid", ["uuid-RM-Z", "uuid-RM-B"]))),
         accepted=HH_B_ONLY, quarantined={("households", 2): {"repeated_column_disagrees"}, **A_BAD}),
    Case("two_households_sharing_a_kobo_uuid_are_quarantined_with_their_members",
         ("shared_uuid.xlsx", kobo(A, x.household("RM-B", _uuid="uuid-RM-A"), x.household("RM-C"),
                                   members={"uuid-RM-A": x.family("head", "child"), "uuid-RM-C": x.family("head")})),
         accepted={"households": [4], "members": [4]},
         quarantined={("households", 2): {"submission_key_not_unique", "household_has_invalid_members"},
                      ("households", 3): {"submission_key_not_unique", "household_has_members"},
                      ("members", 2): {"household_link_ambiguous", "member_of_invalid_household"},
                      ("members", 3): {"household_link_ambiguous", "member_of_invalid_household"}}),
    Case("two_households_sharing_an_odk_key_are_quarantined_with_their_members",
         ("shared_key.zip", x.odk_zip([A, x.household("RM-B", _uuid="uuid-RM-A"), x.household("RM-C")],
                                      {"uuid-RM-A": x.family("head"), "uuid-RM-C": x.family("head")})),
         accepted={"households": [4], "members": [3]},
         quarantined={("households", 2): {"submission_key_not_unique", "household_has_invalid_members"},
                      ("households", 3): {"submission_key_not_unique", "household_has_members"},
                      ("members", 2): {"household_link_ambiguous", "member_of_invalid_household"}}),
    # --- times are times (class 6) -----------------------------------------------------------------------------
    Case("submission_time_as_a_german_spreadsheet_writes_it_is_read",
         ("de_time.xlsx", kobo(x.household("RM-A", _submission_time="02.11.2026 10:15"), B)),
         accepted=HH_OK, check=_stored_submission("2026-11-02T10:15:00+00:00")),
    Case("odk_submission_date_with_milliseconds_and_z_is_read",
         ("odk_ms.zip", x.odk_zip([x.household("RM-A", _submission_time="2026-11-02T10:15:00.120Z"), B],
                                  AB_MEMBERS)),
         accepted={"households": [2, 3], "members": [2, 3, 4]},
         check=_stored_submission("2026-11-02T10:15:00.120000+00:00")),
    Case("submission_time_that_is_not_a_time_is_quarantined",
         ("when.xlsx", kobo(x.household("RM-A", _submission_time="gestern"), B)),
         accepted=HH_B_ONLY, quarantined={("households", 2): {"submission_time_real_timestamp"}, **A_BAD}),
    Case("older_submission_written_in_another_offset_does_not_replace_a_newer_one",  # 11:00+02:00 is 09:00 UTC
         ("offset.csv", x.kobo_csv([x.household("RM-A", german_level="b2_plus",
                                                _submission_time="2026-11-02T11:00:00+02:00")])),
         before=[("first.xlsx", kobo(A, B))],
         quarantined={("households", 2): {"older_submission_than_stored"}}),
    Case("decided_at_as_a_german_spreadsheet_writes_it_is_read",
         ("de_decision.csv", x.decisions_csv([x.decision("RM-A", decided_at="23.11.2026 10:05")])),
         before=[("hh.xlsx", kobo(A, B))], setup=_offered_round, accepted={"decisions": [2]}),
    Case("decided_at_that_is_not_a_time_is_quarantined",
         ("bad_when.csv", x.decisions_csv([x.decision("RM-A", decided_at="morgen"), x.decision("RM-B")])),
         before=[("hh.xlsx", kobo(A, B))], setup=_offered_round, accepted={"decisions": [3]},
         quarantined={("decisions", 2): {"decided_at_format"}}),
    # --- resource bounds (class 7) -----------------------------------------------------------------------------
    Case("password_protected_zip_is_refused_with_a_plain_reason",
         ("locked.zip", _zip_flagged_encrypted({"rematch_household.csv": b"case_id\nRM-A\n"})),
         status="refused", file_rule="zip_encrypted"),
    Case("zip_packed_with_a_method_zipfile_cannot_read_is_refused_with_what_to_do",
         ("deflate64.zip", _zip_packed_with(9, {"rematch_household.csv": b"case_id\nRM-A\n"})),
         status="refused", file_rule="zip_compression_method"),
    Case("damaged_zip_is_refused_with_a_plain_reason",
         ("damaged.zip", _damaged(x.odk_zip([A, B], AB_MEMBERS))), status="refused", file_rule="zip_damaged"),
    Case("zip_of_many_small_entries_that_unpacks_far_larger_is_refused",  # each entry under the per-entry floor
         ("many.zip", x.zip_bytes({f"part{i}.csv": b"0" * 900_000 for i in range(8)})),
         status="refused", file_rule="zip_compression_ratio"),
    # --- found by the red team: values quoted, invisible marks, look-alikes, futures, uncounted tables ----------
    Case("xlsx_cell_marked_as_a_date_holding_text_is_judged_by_the_rules_and_quoted_nowhere",
         ("tdate.xlsx", _kobo_cell([A, B], "interview_date", 2, b'<c r="{ref}" t="d"><v>Olena Kovalenko</v></c>')),
         accepted=HH_B_ONLY, quarantined={("households", 2): {"interview_date_format"}, **A_BAD},
         check=_quotes_nothing("Olena")),
    Case("xlsx_number_cell_holding_a_phone_number_is_judged_by_the_rules_and_quoted_nowhere",
         ("tnum.xlsx", _kobo_cell([A, B], "weight_work", 2, b'<c r="{ref}"><v>+380 50 123 4567</v></c>')),
         accepted=HH_B_ONLY, quarantined={("households", 2): {"weight_work_whole_number"}, **A_BAD},
         check=_quotes_nothing("380 50")),
    Case("xlsx_date_serial_beyond_any_calendar_is_quarantined_not_a_failed_file",
         ("serial.xlsx", _kobo_cell([A, B], "interview_date", 2, b'<c r="{ref}" s="1"><v>1000000000000</v></c>')),
         accepted=HH_B_ONLY, quarantined={("households", 2): {"interview_date_format"}, **A_BAD}),
    Case("case_id_with_a_combining_grapheme_joiner_is_quarantined",
         ("cgj.xlsx", kobo(x.household("RM-A\u034f", _uuid="uuid-RM-A"), B)),
         accepted=HH_B_ONLY, quarantined={("households", 2): {"case_id_plain_characters"}, **A_BAD}),
    Case("case_id_with_a_blank_braille_pattern_is_quarantined",
         ("braille.xlsx", kobo(x.household("RM-A\u2800", _uuid="uuid-RM-A"), B)),
         accepted=HH_B_ONLY, quarantined={("households", 2): {"case_id_plain_characters"}, **A_BAD}),
    Case("case_id_ending_in_a_unit_separator_keeps_it_and_is_quarantined",  # str.strip would have dropped it
         ("us.xlsx", kobo(x.household("RM-A_x001F_", _uuid="uuid-RM-A"), B)),
         accepted=HH_B_ONLY, quarantined={("households", 2): {"case_id_plain_characters"}, **A_BAD}),
    Case("case_id_in_cyrillic_drawn_like_a_stored_latin_one_is_not_applied",  # РМ-001 after PM-001
         ("cyr.xlsx", kobo(x.household("\u0420\u041c-001", _uuid="uuid-RM-A"), B)),
         before=[("latin.xlsx", kobo(x.household("PM-001", _uuid="uuid-RM-A"), B))],
         quarantined={("households", 2): {"case_id_looks_like_another"}, **A_UNAPPLIED}, accepted=HH_B_ONLY),
    Case("offer_id_in_greek_drawn_like_a_stored_latin_one_is_not_applied",  # ΟΡ-1 (Greek) after OP-1
         ("greek_offer.csv", x.capacity_csv([x.offer("\u039f\u03a1-1")])),
         before=[("latin.csv", x.capacity_csv([x.offer("OP-1")]))],
         quarantined={("capacity_offers", 2): {"offer_id_looks_like_another"}}),
    Case("submission_time_after_today_is_quarantined",  # it would outrank every real correction
         ("future_sub.xlsx", kobo(x.household("RM-A", _submission_time="9999-12-31T00:00:00"), B)),
         accepted=HH_B_ONLY, quarantined={("households", 2): {"submission_time_not_in_future"}, **A_BAD}),
    Case("odk_zip_with_another_repeat_group_counts_its_rows_as_not_read",
         ("repeat.zip", _odk_with({"rematch_household-documents.csv":
                                   b"documents-doc_no,PARENT_KEY,KEY\nFX1,uuid:uuid-RM-A,k1\nFX2,uuid:uuid-RM-B,k2\n"})),
         accepted=HH_OK, not_read=3),
    Case("odk_members_csv_without_its_header_counts_its_rows_as_not_read",
         ("badmembers.zip", _odk_with({}, members_header=b"members-role,members-sex,members-born,PARENT_KEY,KEY")),
         accepted={"households": []},
         quarantined={("households", 2): {"household_has_members"}, ("households", 3): {"household_has_members"}},
         not_read=4),
    Case("zip_with_two_entries_of_one_name_is_refused",
         ("twice.zip", _zip_with_a_name_twice()), status="refused", file_rule="zip_duplicate_entries"),
    Case("decision_deadline_is_judged_in_utc",  # 23:30 at UTC-12 is the next day; 08:00 at UTC+14 the day before
         ("zones.csv", x.decisions_csv([x.decision("RM-A", decided_at="2026-11-21T23:30:00-12:00"),
                                        x.decision("RM-B", decided_at="2026-11-22T08:00:00+14:00")])),
         before=[("hh.xlsx", kobo(A, B))], setup=_late_offer, accepted={"decisions": [3]},
         quarantined={("decisions", 2): {"decision_after_deadline"}}),
    Case("a_sheet_named_like_the_template_help_holding_data_in_a_household_file_is_counted",
         ("help.xlsx", kobo(A, B, extra={"instructions": [["name", "phone"], ["Olena", "+380 50"], ["Ivan", "+48"]]})),
         accepted=HH_OK, not_read=3),
    Case("header_names_with_a_byte_order_mark_or_in_full_width_are_read",
         ("headers.xlsx", kobo(A, B, main_rows=[["\ufeff" + str(h) if h == "case_id" else
                                                 (str(h).replace("german_level", "\uff47erman_level"))
                                                 for h in x.kobo_main_rows([A, B])[0]],
                                                *x.kobo_main_rows([A, B])[1:]])),
         accepted=HH_OK),
    Case("submission_time_beyond_the_calendar_in_utc_is_quarantined_not_a_failed_file",  # 9999-12-31 at UTC-1
         ("overflow.xlsx", kobo(x.household("RM-A", _submission_time="9999-12-31T23:59:59-01:00"), B)),
         accepted=HH_B_ONLY, quarantined={("households", 2): {"submission_time_real_timestamp"}, **A_BAD}),
    Case("submission_time_later_today_is_quarantined",  # the clock says 09:00 UTC
         ("tonight.xlsx", kobo(x.household("RM-A", _submission_time="2026-11-23T23:59:59Z"), B)),
         accepted=HH_B_ONLY, quarantined={("households", 2): {"submission_time_not_in_future"}, **A_BAD}),
    Case("odk_attachments_under_media_are_not_tables",
         ("media.zip", _odk_with({"media/roster.csv": b"case_id,name\nRM-A,X\n", "media/photo.jpg": b"\xff\xd8"})),
         accepted=HH_OK),
    Case("case_id_of_punctuation_only_is_quarantined",
         ("dots.xlsx", kobo(x.household("...", _uuid="uuid-RM-A"), B)),
         accepted=HH_B_ONLY, quarantined={("households", 2): {"case_id_plain_characters"}, **A_BAD}),
    Case("case_id_in_cherokee_drawn_like_a_stored_latin_one_is_not_applied",  # ᏢᎷ-001 after PM-001
         ("cherokee.xlsx", kobo(x.household("\u13e2\u13b7-001", _uuid="uuid-RM-A"), B)),
         before=[("latin.xlsx", kobo(x.household("PM-001", _uuid="uuid-RM-A"), B))],
         quarantined={("households", 2): {"case_id_looks_like_another"}, **A_UNAPPLIED}, accepted=HH_B_ONLY),
    Case("case_id_with_a_letter_o_for_a_zero_is_not_applied_beside_the_stored_one",  # RM-2026-OOO42
         ("letter_o.xlsx", kobo(x.household("RM-2026-OOO42", _uuid="uuid-RM-A"), B)),
         before=[("first.xlsx", kobo(x.household("RM-2026-00042", _uuid="uuid-RM-A"), B))],
         quarantined={("households", 2): {"case_id_looks_like_another"}, **A_UNAPPLIED}, accepted=HH_B_ONLY),
    Case("decisions_csv_valid", ("decisions.csv", x.decisions_csv([
        x.decision("RM-A"), x.decision("RM-B", decision="decline", reason="Wants to stay near family")])),
         before=[("hh.xlsx", kobo(A, B))], setup=_offered_round, accepted={"decisions": [2, 3]},
         check=_decision_stored),
    Case("decision_neither_accept_nor_decline",
         ("maybe.csv", x.decisions_csv([x.decision("RM-A", decision="maybe")])),
         quarantined={("decisions", 2): {"decision_allowed_value"}}),
    Case("second_decision_for_the_same_case_and_round",
         ("twice.csv", x.decisions_csv([x.decision("RM-A"), x.decision("RM-A", decision="decline")])),
         before=[("hh.xlsx", kobo(A, B))], setup=_offered_round, accepted={"decisions": [2]},
         quarantined={("decisions", 3): {"decision_second_for_case_round"}}),
    Case("decision_already_recorded_in_an_earlier_file",
         ("later.csv", x.decisions_csv([x.decision("RM-A", decision="decline")])),
         before=[("hh.xlsx", kobo(A, B))], setup=_offered_round,
         after_setup=[("first.csv", x.decisions_csv([x.decision("RM-A")]))],
         quarantined={("decisions", 2): {"decision_already_recorded"}}),
    Case("decision_for_a_match_never_offered",
         ("stranger.csv", x.decisions_csv([x.decision("RM-Z")])),
         before=[("hh.xlsx", kobo(A, B))], setup=_offered_round,
         quarantined={("decisions", 2): {"decision_without_offer"}}),
    Case("decision_after_the_response_deadline",
         ("late.csv", x.decisions_csv([x.decision("RM-A", decided_at="2026-11-22T09:00")])),
         before=[("hh.xlsx", kobo(A, B))],
         setup=lambda conn: _offered_round(conn, respond_by=date(2026, 11, 21), offered_at=date(2026, 11, 14)),
         quarantined={("decisions", 2): {"decision_after_deadline"}}),
    Case("decision_dated_before_its_offer_existed",
         ("early.csv", x.decisions_csv([x.decision("RM-A", decided_at="2026-11-22T23:59")])),
         before=[("hh.xlsx", kobo(A, B))], setup=_offered_round,
         quarantined={("decisions", 2): {"decision_before_offer"}}),
    Case("decision_before_its_offer_in_another_time_zone",  # 00:30 in Kyiv is 22:30 the day before in UTC
         ("kyiv.csv", x.decisions_csv([x.decision("RM-A", decided_at="2026-11-23T00:30+02:00")])),
         before=[("hh.xlsx", kobo(A, B))], setup=_offered_round,
         quarantined={("decisions", 2): {"decision_before_offer"}}),
    Case("decision_timestamp_not_real",
         ("stamp.csv", x.decisions_csv([x.decision("RM-A", decided_at="2026-11-31T10:00")])),
         quarantined={("decisions", 2): {"decided_at_real_timestamp"}}),
    Case("batch_held_when_most_rows_are_invalid",
         ("held.csv", x.capacity_csv([x.offer("OF-1", ags="x"), x.offer("OF-2", state="HH"), x.offer("OF-3")])),
         env={"REMATCH_MAX_INVALID_SHARE": "0.5"}, status="held",
         quarantined={("capacity_offers", 2): {"ags_eight_digits"}, ("capacity_offers", 3): {"state_matches_ags"}}),
    Case("csv_with_unknown_columns_is_not_recognised", ("other.csv", b"name,city\nOlena,Kiel\n"),
         status="unrecognised", file_rule="unrecognised_file"),
    Case("csv_in_windows_1251_is_refused",
         ("cyrillic.csv", x.capacity_csv([x.offer(municipality_name="Muenchen", contact_name="Олена Коваленко")],
                                          encoding="cp1251")),
         status="refused", file_rule="encoding_not_supported"),
    Case("csv_in_windows_1252_is_read", ("latin.csv", x.capacity_csv([x.offer(contact_name="Jörg Weiß")],
                                                                     encoding="cp1252")),
         accepted={"capacity_offers": [2]}),
    Case("empty_file_is_refused", ("empty.csv", b""), status="refused", file_rule="file_empty", archived=False),
    Case("file_above_the_size_limit_is_refused_and_never_copied_into_the_archive",
         ("big.csv", x.capacity_csv([x.offer()] * 50)),
         env={"REMATCH_MAX_FILE_MB": "0.001"}, status="refused", file_rule="file_too_large", archived=False),
    Case("zip_with_path_traversal_is_refused",
         ("evil.zip", x.zip_bytes({"../../etc/rematch_household.csv": x.kobo_csv([A])})),
         status="refused", file_rule="zip_path_traversal"),
    Case("zip_with_absolute_path_is_refused",
         ("abs.zip", x.zip_bytes({"/tmp/rematch_household.csv": x.kobo_csv([A])})),
         status="refused", file_rule="zip_path_traversal"),
    Case("zip_bomb_is_refused", ("bomb.zip", _bomb()), status="refused", file_rule="zip_compression_ratio"),
    Case("xlsx_with_macros_is_refused", ("macro.xlsx", _with_entry(kobo(A, B), "xl/vbaProject.bin", b"\x00VBA")),
         status="refused", file_rule="xlsx_macros"),
    Case("xlsx_with_external_links_is_refused",
         ("links.xlsx", _with_entry(kobo(A, B), "xl/externalLinks/externalLink1.xml", b"<externalLink/>")),
         status="refused", file_rule="xlsx_external_links"),
    Case("old_xls_is_not_recognised", ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512),
         status="unrecognised", file_rule="unrecognised_file"),
]


def _rules(conn: Connection, raw_file_id: int) -> dict[tuple[str, int], set[str]]:
    out: dict[tuple[str, int], set[str]] = {}
    q = select(t.quarantine.c.table_name, t.quarantine.c.source_row, t.quarantine.c.rule).where(
        t.quarantine.c.raw_file_id == raw_file_id, t.quarantine.c.source_row.is_not(None))
    for table, row, rule in conn.execute(q):
        out.setdefault((table, row), set()).add(rule)
    return out


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # One working directory (archive, GX project, Data Docs) for the whole catalogue: creating a GX project costs
    # seconds. Each case still gets its own database, so no case sees another's rows.
    return tmp_path_factory.mktemp("catalogue_home")


# The everyday tier (`make test`) runs one case per kind of outcome; `make test-all` runs the whole catalogue.
EVERYDAY = {"kobo_xlsx_two_valid_households", "household_without_head", "decision_after_the_response_deadline",
            "case_id_with_a_cyrillic_letter_among_latin_ones_is_quarantined", "batch_held_when_most_rows_are_invalid",
            "zip_bomb_is_refused"}


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name, marks=() if c.name in EVERYDAY else pytest.mark.full)
                                  for c in CASES])
def test_bad_input_catalogue(case: Case, db_url: str, shared_home: Path, tmp_path: Path) -> None:
    assert EVERYDAY <= {c.name for c in CASES}
    settings = Settings(home=shared_home, database_url=db_url, clock=ManualClock(TODAY))
    migrate(settings.database_url)
    inbox = tmp_path / "in"
    inbox.mkdir()
    for i, (name, data) in enumerate(case.before):
        (inbox / f"{i}_{name}").write_bytes(data)
        assert ingest_file(inbox / f"{i}_{name}", settings).status == "ingested"
    engine = get_engine(settings.database_url)
    if case.setup:
        with engine.begin() as conn:
            case.setup(conn)
    for i, (name, data) in enumerate(case.after_setup):
        (inbox / f"s{i}_{name}").write_bytes(data)
        assert ingest_file(inbox / f"s{i}_{name}", settings).accepted == 1
    # Each case is a tiny file, so one bad row is a large share; only the held case uses a real threshold. The
    # case's environment is read as production reads it.
    settings = load_settings({"REMATCH_HOME": str(shared_home), "REMATCH_DATABASE_URL": db_url,
                              "REMATCH_MAX_INVALID_SHARE": "1", **case.env}, clock=ManualClock(TODAY))
    name, data = case.file
    (inbox / name).write_bytes(data)
    report = ingest_file(inbox / name, settings)
    assert report.status == case.status, report.message

    with engine.connect() as conn:
        raw = conn.execute(select(t.raw_files).where(t.raw_files.c.id == report.raw_file_id)).one()
        archived = settings.home / raw.archived_path
        assert raw.sha256 == hashlib.sha256(data).hexdigest() and raw.size_bytes == len(data)
        if case.archived:  # nothing lost: the archive keeps the exact bytes under their checksum
            assert archived.read_bytes() == data
        else:  # refused before a copy was made
            assert raw.archived_path == "" and not list((settings.home / "archive").rglob(f"{raw.sha256}*"))
        if case.file_rule:
            (rule,) = conn.execute(select(t.quarantine.c.rule).where(
                t.quarantine.c.raw_file_id == report.raw_file_id)).scalars().all()
            assert rule == case.file_rule and name in report.message
            return
        quarantined = _rules(conn, report.raw_file_id)
        assert quarantined == case.quarantined
        whole = conn.execute(select(t.quarantine.c.rule).where(
            t.quarantine.c.raw_file_id == report.raw_file_id, t.quarantine.c.source_row.is_(None))).scalars().all()
        held_rule = [r for r in whole if r != "sheet_not_read"]
        assert (report.not_read > 0) == ("sheet_not_read" in whole)
        if case.check:
            case.check(conn, report)
    # Archive + quarantine account for every input row: each row of the archived file is accepted or quarantined
    # (or, in a held batch, held whole).
    batch = read_file(archived)
    every = {(table, int(r)) for table, df in batch.tables.items() for r in df["source_row"]}
    accepted = {(table, r) for table, rows in case.accepted.items() for r in rows}
    if case.status == "held":
        assert set(held_rule) == {"batch_held"} and report.accepted == 0
        assert report.held == len(every - set(quarantined)) and report.quarantined == len(quarantined)
    else:
        assert held_rule == []
        assert accepted | set(quarantined) == every and not accepted & set(quarantined)
        assert report.accepted == len(accepted) and report.quarantined == len(quarantined)
    assert report.not_read == case.not_read
    assert report.rows_read == len(every) + case.not_read
    assert report.rows_read == report.accepted + report.quarantined + report.held + report.not_read
    assert report.replaced == case.replaced


def test_catalogue_has_at_least_a_hundred_named_cases() -> None:
    names = [c.name for c in CASES]
    assert len(names) >= 100 and len(set(names)) == len(names)


def test_same_file_twice_is_a_duplicate_that_changes_nothing(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "ok.xlsx"
    path.write_bytes(kobo(A, B))
    first = ingest_file(path, settings)
    again = ingest_file(path, settings)
    assert (first.status, first.duplicate) == ("ingested", False)
    assert (again.status, again.duplicate, again.accepted) == ("duplicate", True, 0)
    assert "already ingested" in again.message and again.format == "kobo_xlsx"
    with get_engine(settings.database_url).connect() as conn:
        assert len(conn.execute(select(t.raw_files)).all()) == 1


def test_quarantine_messages_carry_no_personal_data(settings: Settings, tmp_path: Path) -> None:
    settings = replace(settings, max_invalid_share=1.0)
    secret = x.household("RM-A", contact_phone="+48 601 234 567", contact_email="olena@example.org",
                         notes="Diagnosis: secret", interview_date="2030-01-01")
    path = tmp_path / "pii.xlsx"
    path.write_bytes(kobo(secret, B))
    report = ingest_file(path, settings)
    with get_engine(settings.database_url).connect() as conn:
        messages = conn.execute(select(t.quarantine.c.message)).scalars().all()
    assert messages
    for text in [*messages, report.message]:
        for value in ("601 234 567", "olena@example.org", "secret"):
            assert value not in text
