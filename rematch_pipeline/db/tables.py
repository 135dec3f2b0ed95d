"""SQLAlchemy Core tables of the project database; the schema itself is created by the Alembic migrations."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

metadata = MetaData()

raw_files = Table(
    "raw_files", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sha256", String(64), nullable=False, unique=True),
    Column("original_name", Text, nullable=False),
    Column("archived_path", Text, nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("kind", String(32)),
    Column("status", String(32), nullable=False),  # ingested, held, unrecognised, refused
    Column("format", String(32)),  # kobo_xlsx, kobo_csv, odk_central_zip, capacity_xlsx, capacity_csv, decisions_csv
    Column("received_at", DateTime(timezone=True), nullable=False),
)

validation_runs = Table(
    "validation_runs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("raw_file_id", Integer, ForeignKey("raw_files.id"), nullable=False),
    Column("table_name", String(64), nullable=False),
    Column("success", Boolean, nullable=False),
    Column("evaluated_rows", Integer, nullable=False),
    Column("invalid_rows", Integer, nullable=False),
    Column("report_path", Text),
    Column("statistics", JSON),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

quarantine = Table(
    "quarantine", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("raw_file_id", Integer, ForeignKey("raw_files.id")),  # none for a decision entered on the command line
    Column("table_name", String(64), nullable=False),
    Column("sheet", String(128)),
    Column("source_row", Integer),
    Column("field", String(128)),
    Column("rule", String(128), nullable=False),
    Column("message", Text, nullable=False),
    Column("record", JSON),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("resolved_at", DateTime(timezone=True)),
    # the corrected file whose ingest resolved this row (`rematch quarantine resubmit`)
    Column("resolved_by_raw_file_id", Integer, ForeignKey("raw_files.id")),
    # the same problem of the same record again, in a newer file: that row is the one to act on
    Column("superseded_by", Integer, ForeignKey("quarantine.id", name="fk_quarantine_superseded_by")),
)

households = Table(
    "households", metadata,
    Column("case_id", String(64), primary_key=True),
    Column("pseudonym", String(32), nullable=False, unique=True),
    Column("raw_file_id", Integer, ForeignKey("raw_files.id"), nullable=False),
    Column("submission_time", String(40)),
    Column("interview_date", Date, nullable=False),
    Column("interview_location", Text),
    Column("consent_matching", Boolean, nullable=False),
    Column("consent_health_share", Boolean, nullable=False),
    Column("contact_name", Text),  # the name the household wants to be addressed by (optional)
    Column("contact_phone", Text),
    Column("contact_email", Text),
    Column("languages", String(64), nullable=False),
    Column("german_level", String(16), nullable=False),
    Column("wheelchair_access", Boolean, nullable=False),
    Column("medical_needs", String(128), nullable=False),
    Column("pets", String(16), nullable=False),
    Column("pref_settlement", String(16), nullable=False),
    Column("weight_work", Integer, nullable=False),
    Column("weight_education", Integer, nullable=False),
    Column("weight_community", Integer, nullable=False),
    Column("weight_healthcare", Integer, nullable=False),
    Column("weight_housing", Integer, nullable=False),
    Column("weight_culture", Integer, nullable=False),
    Column("ties_ags", String(8)),
    Column("notes", Text),
    Column("status", String(16), nullable=False, server_default="pool"),  # pool, accepted, withdrawn
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("closed_at", DateTime(timezone=True)),  # the case ended (accepted or withdrawn): retention starts
    Column("purged_at", DateTime(timezone=True)),  # contact data, free text and health details removed
)

members = Table(
    "members", metadata,
    Column("case_id", String(64), ForeignKey("households.case_id", ondelete="CASCADE"), primary_key=True),
    Column("member_no", Integer, primary_key=True),
    Column("relation", String(16), nullable=False),
    Column("sex", String(16), nullable=False),
    Column("birth_year", Integer, nullable=False),
    Column("mobility_impaired", Boolean, nullable=False),
    Column("occupation", String(32), nullable=False),
    Column("qualification", String(32), nullable=False),
)

capacity_offers = Table(
    "capacity_offers", metadata,
    Column("offer_id", String(64), primary_key=True),
    Column("raw_file_id", Integer, ForeignKey("raw_files.id"), nullable=False),
    Column("ags", String(8), nullable=False),
    Column("municipality_name", Text, nullable=False),
    Column("state", String(2), nullable=False),
    Column("settlement_type", String(16), nullable=False),
    Column("valid_from", Date, nullable=False),
    Column("valid_until", Date, nullable=False),
    Column("places_persons", Integer, nullable=False),
    Column("units_1_room", Integer, nullable=False),
    Column("units_2_rooms", Integer, nullable=False),
    Column("units_3_rooms", Integer, nullable=False),
    Column("units_4plus_rooms", Integer, nullable=False),
    Column("units_wheelchair", Integer, nullable=False),
    Column("units_pets_allowed", Integer, nullable=False),
    Column("kita_u3", Integer, nullable=False),
    Column("kita_ue3", Integer, nullable=False),
    Column("school_primary", Integer, nullable=False),
    Column("school_secondary", Integer, nullable=False),
    Column("language_course_seats", Integer, nullable=False),
    Column("medical_services", String(128), nullable=False),
    Column("job_sectors_shortage", String(256), nullable=False),
    Column("ukrainian_community", String(16), nullable=False),
    Column("contact_name", Text),
    Column("contact_email", Text),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

decisions = Table(
    "decisions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("raw_file_id", Integer, ForeignKey("raw_files.id")),  # none for a decision entered on the command line
    Column("source", String(16), nullable=False, server_default="file"),  # file, cli
    Column("case_id", String(64), nullable=False),
    Column("round_id", String(32), nullable=False),
    Column("decision", String(16), nullable=False),  # accept, decline
    Column("decided_at", String(40), nullable=False),  # as the household's answer was recorded (ISO 8601)
    Column("reason", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("case_id", "round_id", name="uq_decisions_case_round"),
)

rounds = Table(
    "rounds", metadata,
    Column("round_id", String(32), primary_key=True),
    Column("round_date", Date, nullable=False, unique=True),
    Column("status", String(16), nullable=False),  # planned, solved, offered, closed, failed
    Column("policy", JSON, nullable=False),
    Column("solver_stats", JSON),
    Column("input_checksums", JSON),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("solved_at", DateTime(timezone=True)),
    Column("offered_at", DateTime(timezone=True)),
    Column("closed_at", DateTime(timezone=True)),
)

# What the solver saw (households without contact data, offers, exclusions, consumed capacity, policy): replay input.
round_inputs = Table(
    "round_inputs", metadata,
    Column("round_id", String(32), ForeignKey("rounds.round_id"), primary_key=True),
    Column("snapshot", LargeBinary, nullable=False),  # gzip-compressed canonical JSON
    Column("sha256", String(64), nullable=False),
    Column("purged_cases", Integer, nullable=False, server_default="0"),
)

# One offer per matched household and round: the household answers it by `respond_by`.
match_offers = Table(
    "match_offers", metadata,
    Column("round_id", String(32), ForeignKey("rounds.round_id"), primary_key=True),
    Column("case_id", String(64), ForeignKey("households.case_id"), primary_key=True),
    Column("ags", String(8), nullable=False),
    Column("offer_id", String(64), nullable=False),
    Column("persons", Integer, nullable=False),
    Column("demand", JSON, nullable=False),  # capacity this household takes per dimension, and rooms needed
    Column("respond_by", Date, nullable=False),
    Column("status", String(16), nullable=False),  # pending, accepted, declined, expired
    Column("offered_at", DateTime(timezone=True), nullable=False),
    Column("resolved_at", DateTime(timezone=True)),
)

assignments = Table(
    "assignments", metadata,
    Column("round_id", String(32), ForeignKey("rounds.round_id"), primary_key=True),
    Column("case_id", String(64), ForeignKey("households.case_id"), primary_key=True),
    Column("ags", String(8), nullable=False),
    Column("offer_id", String(64), nullable=False),
    Column("persons", Integer, nullable=False),
    Column("score", Float, nullable=False),
    Column("score_terms", JSON, nullable=False),
    Column("preference_rank", Integer, nullable=False),
)

unmatched = Table(
    "unmatched", metadata,
    Column("round_id", String(32), ForeignKey("rounds.round_id"), primary_key=True),
    Column("case_id", String(64), ForeignKey("households.case_id"), primary_key=True),
    Column("persons", Integer, nullable=False),
    Column("reason", Text, nullable=False),  # in words, as exported
    # The same as codes and counts (domain.UnmatchedReason); NULL for rounds stored before migration 0006.
    Column("reason_detail", JSON(none_as_null=True)),
)

packets = Table(
    "packets", metadata,
    Column("round_id", String(32), ForeignKey("rounds.round_id"), primary_key=True),
    Column("ags", String(8), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("html_path", Text, nullable=False),
    Column("pdf_path", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Final once every household in it has answered or let its offer expire; earlier versions are provisional.
    Column("final", Boolean, nullable=False, server_default=false()),
    UniqueConstraint("round_id", "ags", "sha256", name="uq_packets_content"),
)

letters = Table(
    "letters", metadata,
    Column("round_id", String(32), ForeignKey("rounds.round_id"), primary_key=True),
    Column("case_id", String(64), ForeignKey("households.case_id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("language", String(8), nullable=False),
    Column("html_path", Text, nullable=False),
    Column("pdf_path", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("round_id", "case_id", "sha256", name="uq_letters_content"),
)

# The delivery ledger: one row per document version and channel, so a retry never sends the same content twice.
deliveries = Table(
    "deliveries", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("document", String(16), nullable=False),  # packet, letter
    Column("round_id", String(32), ForeignKey("rounds.round_id"), nullable=False),
    Column("recipient", String(64), nullable=False),  # AGS of a packet, case_id of a letter
    Column("version", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("channel", String(16), nullable=False),  # outbox, smtp
    Column("status", String(16), nullable=False),  # sending, delivered
    Column("message_id", String(255)),
    Column("attempts", Integer, nullable=False, server_default="1"),
    Column("claimed_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True)),
    UniqueConstraint("document", "round_id", "recipient", "sha256", "channel", name="uq_deliveries_once"),
)

audit_events = Table(
    "audit_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("event", String(64), nullable=False),
    Column("subject", String(128)),
    Column("details", JSON),
)
