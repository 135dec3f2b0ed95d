"""`rematch audit export`: everything an auditor needs about one round, as CSV and JSON, readable without us."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from rematch_pipeline.clock import as_utc
from rematch_pipeline.config import Settings, exported_policy
from rematch_pipeline.db.engine import require_schema
from rematch_pipeline.forms import safe_text
from rematch_pipeline.repository import StoredPaths, reading, require_round
from rematch_pipeline.rounds import export_round

README = """Audit export of matching round {round_id}

assignments.csv     the round export of the data contract (section 4): one row per household of the pool, with
                    its municipality (AGS) or the reason it was left unmatched.
round.json          the same export's summary: the solver's status, objective, bound, gap, wall time and the
                    input checksums.
round_lifecycle.json the round: date, state (planned, solved, offered, closed or failed), when each state was
                    reached, the policy used, the solver's statistics and the sha256 of every input snapshot.
events.csv/.json    the audit trail of the round, in order: planned, solved, every offer made, every decision
                    recorded or rejected, offers expired, packets rendered, the round closed; plus every input
                    file received up to the solve (file_ingested / file_rejected with its sha256).
input_files.csv     every file received before the round was solved: name, sha256, status, detected format.
validation_runs.csv every validation of those files: table, rows evaluated, rows invalid, path of the report
                    (relative to the pipeline's home folder).
assignment_details.csv the solver's result per matched household: municipality (AGS), offer, persons, score,
                    preference rank and the score by term.
unmatched.csv       households of the pool left unmatched, with the reason in words.
offers.csv          one offer per matched household: deadline, status (pending, accepted, declined, expired,
                    withdrawn).
decisions.csv       the households' answers: accept or decline, when, and whether entered from a file or by hand.
                    Free-text reasons are not exported (personal data); reason_given says whether one exists.

Times are UTC (ISO 8601). Case ids are the programme's ids; no contact data or health details are exported.
"""


def _write_csv(path: Path, fields: Sequence[str], rows: list[dict[str, Any]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(fields))
        w.writeheader()
        # A cell starting with = + - @ must never run as a spreadsheet formula in the auditor's program.
        w.writerows({k: safe_text("" if row.get(k) is None else row.get(k)) for k in fields} for row in rows)


def _iso(value: Any) -> Any:
    """A date as an ISO date; a moment as ISO 8601 in UTC with its offset (every moment is stored in UTC, and SQLite
    gives it back without one)."""
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    return value.isoformat() if isinstance(value, date) else value


def export_audit(settings: Settings, round_id: str, out_dir: Path) -> Path:
    """Write the round's audit files into out_dir/round_id; returns that directory."""
    require_schema(settings.database_url)
    with reading(settings) as uow:
        r = require_round(uow, round_id)
        # Files and validations up to the solve: what the round could have seen, not what came after.
        record = uow.audit_trail.round_record(round_id, r.solved_at or r.created_at)
    events = record.events
    out = out_dir / round_id
    out.mkdir(parents=True, exist_ok=True)
    (out / "README.txt").write_text(README.format(round_id=round_id), encoding="utf-8")
    stats = dict(r.solver_stats or {})
    doc = {"round_id": r.round_id, "round_date": _iso(r.round_date), "state": r.status,
           "created_at": _iso(r.created_at), "solved_at": _iso(r.solved_at), "offered_at": _iso(r.offered_at),
           "closed_at": _iso(r.closed_at), "policy": exported_policy(r.policy), "input_checksums": r.input_checksums,
           "solver_stats": stats}
    # Named apart from the contract's round.json and assignments.csv (written below by `export_round`), which an
    # auditor may be handed with the same names and expect in the contract's layout.
    (out / "round_lifecycle.json").write_text(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n",
                                              encoding="utf-8")
    event_rows = [{"id": e["id"], "at": _iso(e["at"]), "actor": e["actor"], "event": e["event"],
                   "subject": e["subject"], "details": json.dumps(e["details"] or {}, sort_keys=True, default=str)}
                  for e in events]
    _write_csv(out / "events.csv", ["id", "at", "actor", "event", "subject", "details"], event_rows)
    (out / "events.json").write_text(json.dumps(
        [{**row, "details": e["details"] or {}} for row, e in zip(event_rows, events, strict=True)],
        indent=2, default=str) + "\n", encoding="utf-8")
    _write_csv(out / "input_files.csv", ["id", "received_at", "original_name", "sha256", "size_bytes", "status",
                                         "kind", "format"],
               [{**f, "received_at": _iso(f["received_at"])} for f in record.files])
    paths = StoredPaths(settings.home)
    _write_csv(out / "validation_runs.csv", ["id", "raw_file_id", "table_name", "success", "evaluated_rows",
                                             "invalid_rows", "report_path", "created_at"],
               [{**v, "created_at": _iso(v["created_at"]), "report_path": paths.shown(v["report_path"])}
                for v in record.validation_runs])
    _write_csv(out / "assignment_details.csv", ["case_id", "ags", "offer_id", "persons", "score", "preference_rank",
                                                "score_terms"],
               [{**a, "score": f"{a['score']:.6f}", "score_terms": json.dumps(a["score_terms"], sort_keys=True)}
                for a in record.assignments])
    _write_csv(out / "unmatched.csv", ["case_id", "persons", "reason"], record.unmatched)
    _write_csv(out / "offers.csv", ["case_id", "ags", "offer_id", "persons", "respond_by", "status", "offered_at",
                                    "resolved_at"],
               [{**o, "respond_by": _iso(o["respond_by"]), "offered_at": _iso(o["offered_at"]),
                 "resolved_at": _iso(o["resolved_at"])} for o in record.offers])
    _write_csv(out / "decisions.csv", ["case_id", "decision", "decided_at", "source", "reason_given", "recorded_at"],
               [{"case_id": d["case_id"], "decision": d["decision"], "decided_at": d["decided_at"],
                 "source": d["source"], "reason_given": "yes" if d["reason"] else "no",
                 "recorded_at": _iso(d["created_at"])} for d in record.decisions])
    export_round(settings, round_id, out)
    return out
