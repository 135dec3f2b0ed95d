"""The `rematch` command line: demo, scenarios, ingest, rounds, offers and decisions, packets, audit, retention."""

from __future__ import annotations

import argparse
import builtins
import json
import logging
import os
import sys
from contextlib import AbstractContextManager, ExitStack, nullcontext
from datetime import date
from pathlib import Path
from typing import Any

from rematch_pipeline.config import HOME_SETTINGS, Settings, configure_logging, load_policy, load_settings


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {value!r}") from exc


def _at_least_one(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {value!r}")
    return int(value)


def print(*values: Any, sep: str = " ", end: str = "\n", file: Any = None, flush: bool = False) -> None:  # noqa: A001
    """Every line this command prints, with control characters escaped: file names, ids and messages come from
    senders' files, and a terminal must only show them, never obey them (`progress.visible`)."""
    from rematch_pipeline.progress import visible

    builtins.print(*(visible(str(v)) for v in values), sep=sep, end=end, file=file, flush=flush)


def _print(obj: Any, as_json: bool, text: str) -> None:
    print(json.dumps(obj, indent=2, default=str, ensure_ascii=False) if as_json else text)


def cmd_scenario_generate(args: argparse.Namespace, settings: Settings) -> int:
    from rematch_pipeline.scenario import generate_scenario

    files = generate_scenario(Path(args.out), households=args.households, municipalities=args.municipalities,
                              seed=args.seed, **({"round_date": args.round_date} if args.round_date else {}))
    print(f"households: {files.households_xlsx}\ncapacity:   {files.capacity_xlsx}")
    return 0


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from rematch_pipeline.ingest.service import ingest_file

    reports = [ingest_file(Path(f), settings) for f in args.files]
    _print([r.to_json() for r in reports], args.json, "\n".join(
        f"{r.status:12} {r.message}" + "".join(f"\n  validation report ({t}): {p}" for t, p in r.reports.items())
        + (f"\n  Data Docs: {r.data_docs}" if r.data_docs else "")
        for r in reports))
    return 1 if any(r.status in ("unrecognised", "held", "refused", "failed") for r in reports) else 0


def round_summary_lines(s: Any) -> list[str]:
    """A round for people, one statement a line; every number says whether it counts persons or households."""
    from rematch_pipeline.reports.charts import count, counted, fraction, number, percent
    from rematch_pipeline.reports.round_report import look_ahead_line, persons_proof

    def both(households: int, persons: int) -> str:
        return f"{counted(households, 'household')} ({counted(persons, 'person')})"

    st = s.stats
    solver = f" (solver: {st['status']})" if st.get("status") else ""
    lines = [f"Round {s.round_id} of {s.round_date} " + ("failed" if s.status == "failed" else f"is {s.status}")
             + solver + ("; it was solved before, nothing changed." if s.already_existed else ".")]
    if s.status == "failed" or not s.households_placed:
        lines.append(f"  {s.message}")  # why nobody was placed: an empty pool, no capacity, a solver failure
    lines.append(f"  In the pool: {both(s.households, s.persons_in_pool)}.")
    o = s.offers
    # "Placed" is the round's decision; a place is taken only when its household accepts (the simulation's sense).
    lines.append(f"  Placed by the round: {both(s.households_placed, s.persons_placed)}; not placed: "
                 f"{both(s.households - s.households_placed, s.persons_in_pool - s.persons_placed)}."
                 + (" A placed household is offered its place and takes it by accepting." if o.get("offered") else ""))
    if o.get("offered"):
        lines.append(f"  Offers: {counted(o['offered'], 'household')} offered a place; of them {count(o['accepted'])} "
                     f"accepted ({counted(o.get('persons_accepted', 0), 'person')}), {count(o['declined'])} declined,"
                     f" {count(o['expired'])} expired"
                     + (f", {count(o['withdrawn'])} withdrawn (erased on request)" if o.get("withdrawn") else "")
                     + f" and {count(o['pending'])} wait for an answer.")
    bound, gap = st.get("lp_bound_persons"), st.get("gap_to_lp")
    if bound is not None and gap is not None:
        if st.get("persons_proven_maximal"):
            lines.append(f"  {counted(s.persons_placed, 'person')} placed by the round: the most possible (proven: "
                         f"{persons_proof(s.persons_placed, bound)}).")
        else:
            lines.append(f"  {counted(s.persons_placed, 'person')} placed by the round, maybe not the most possible: "
                         f"the persons bound, an LP over every eligible pair, is {fraction(bound)} persons "
                         f"(gap {percent(gap)}).")
    if st.get("quality") is not None and st.get("quality_bound") is not None and st.get("quality_gap") is not None:
        lines.append(f"  Match quality: {number(st['quality'], 1)} points, bound {number(st['quality_bound'], 1)} "
                     f"(gap {percent(st['quality_gap'])}).")
    if st.get("look_ahead"):  # the prices moved households between places: say from what
        lines.append(f"  Look-ahead: {look_ahead_line(st['look_ahead'])}.")
    if s.fill:
        lines.append("  Fill per municipality (persons placed by the round, of its places for persons):")
    width = max((len(f["municipality"]) for f in s.fill), default=0)
    placed_w = max((len(count(f["persons_placed"])) for f in s.fill), default=0)
    places_w = max((len(count(f["places_persons"])) for f in s.fill), default=0)
    for f in s.fill:
        lines.append(f"    {f['ags']} {f['municipality']:<{width}}  {count(f['persons_placed']):>{placed_w}} persons "
                     f"placed of {count(f['places_persons']):>{places_w}} places ({percent(f['fill'])})"
                     + (f", {counted(f['persons_accepted'], 'person')} accepted" if o.get("offered") else ""))
    lines += [f"  Warning: {w}" for w in s.warnings]
    return lines


def cmd_round_run(args: argparse.Namespace, settings: Settings) -> int:
    from rematch_pipeline.rounds import run_round

    summary = run_round(settings, load_policy(args.policy), args.date or settings.clock.today(),
                        allow_future=args.allow_future)
    _print(summary.to_json(), args.json, "\n".join(round_summary_lines(summary)))
    return 0 if summary.status != "failed" else 2


def cmd_round_status(args: argparse.Namespace, settings: Settings) -> int:
    from rematch_pipeline.rounds import latest_round_id, summarize

    summary = summarize(settings, args.round_id or latest_round_id(settings))
    _print(summary.to_json(), args.json, "\n".join(round_summary_lines(summary)))
    return 0


def cmd_round_offer(args: argparse.Namespace, settings: Settings) -> int:
    from rematch_pipeline.rounds import offer_round

    made = offer_round(settings, args.round_id)
    print(f"{made} offers made" if made else f"round {args.round_id} had its offers already; nothing changed")
    return 0


def cmd_round_settle(args: argparse.Namespace, settings: Settings) -> int:
    from rematch_pipeline.rounds import settle_offers

    expired = settle_offers(settings, args.today or settings.clock.today(), allow_future=args.allow_future)
    print(f"{expired} unanswered offers expired; those households are back in the pool")
    return 0


def cmd_round_replay(args: argparse.Namespace, settings: Settings) -> int:
    from rematch_pipeline.rounds import replay_round

    report = replay_round(settings, args.round_id)
    text = (f"round {report.round_id}: replay {'IDENTICAL' if report.identical else 'DIFFERENT'} "
            f"({report.stored_assignments} stored, {report.replayed_assignments} replayed assignments)"
            + "".join(f"\n  {d['case_id']}: stored {d['stored'] or '-'}, replayed {d['replayed'] or '-'}"
                      for d in report.differences) + (f"\n  note: {report.note}" if report.note else ""))
    _print(report.to_json(), args.json, text)
    return 0 if report.identical else 1


def cmd_decide(args: argparse.Namespace, settings: Settings) -> int:
    from rematch_pipeline.offers import DecisionError
    from rematch_pipeline.rounds import decide

    try:
        decide(settings, args.case_id, args.round_id, args.decision, reason=args.reason)
    except DecisionError as exc:
        print(f"error: not applied ({exc.rule}): {exc} The attempt is kept in the quarantine.", file=sys.stderr)
        return 2
    print(f"{args.decision} recorded for {args.case_id} in {args.round_id}")
    return 0


def cmd_audit_export(args: argparse.Namespace, settings: Settings) -> int:
    from rematch_pipeline.audit import export_audit

    print(export_audit(settings, args.round, Path(args.out)))
    return 0


def cmd_purge(args: argparse.Namespace, settings: Settings) -> int:
    from rematch_pipeline.retention import purge

    report = purge(settings, args.before, allow_future=args.allow_future)
    if report.nothing_left:
        text = (f"nothing left to purge: no household whose case closed before {args.before} still holds personal "
                "details (nothing was changed)")
    else:
        text = (f"{report.households} closed households purged (contact data, free text, health details); "
                f"{report.archived_files} archived exports deleted" + _documents_deleted(report))
    _print(report.to_json(), args.json, text)
    return 0


def _scenario_size(parser: argparse.ArgumentParser, *, households: int, municipalities: int) -> None:
    """The size and seed of a generated scenario, as every bench takes them."""
    parser.add_argument("--households", type=int, default=households, metavar="N",
                        help="households to generate (default: %(default)s)")
    parser.add_argument("--municipalities", type=int, default=municipalities, metavar="M",
                        help="municipalities to generate (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1, metavar="S",
                        help="seed of the generated scenario (default: %(default)s)")


def _documents_deleted(report: Any) -> str:
    """What an erasure or purge deleted from the outbox, and how the other households' packets come back."""
    if not (report.packet_files or report.letter_files):
        return ""
    return (f"; {report.packet_files} packet and {report.letter_files} letter files deleted from the outbox (render "
            "the round again: the packets come back without these households)")


def cmd_erase(args: argparse.Namespace, settings: Settings) -> int:
    from rematch_pipeline.retention import erase

    report = erase(settings, args.case_id)
    if report.nothing_left:
        text = (f"nothing left to erase: household {report.pseudonyms[0]} was erased on {report.erased_at} "
                "(nothing was changed)")
    else:
        text = (f"household {report.pseudonyms[0]} erased: it left the pool and its contact data, free text and "
                "health details are gone" + _documents_deleted(report))
    _print(report.to_json(), args.json, text)
    return 0


def cmd_round_export(args: argparse.Namespace, settings: Settings) -> int:
    from rematch_pipeline.rounds import export_round

    csv_path, json_path = export_round(settings, args.round_id, Path(args.out))
    print(f"{csv_path}\n{json_path}")
    return 0


def cmd_packets_render(args: argparse.Namespace, settings: Settings) -> int:
    from rematch_pipeline import progress
    from rematch_pipeline.packets.letters import LETTER_STATUSES, render_round_letters
    from rematch_pipeline.packets.service import render_round_packets, render_sample
    from rematch_pipeline.reports.charts import counted
    from rematch_pipeline.repository import reading

    policy = load_policy()
    if args.sample is not None:
        out = Path(args.out or f"rematch-sample-{args.round_id}-{args.sample}")
        for path in render_sample(settings, policy, args.round_id, args.sample, out):
            print(path)
        print(f"note: the packet holds the personal data of the households of round {args.round_id} placed there, "
              "as the municipality sees them (the letters are of a household that does not exist); delete it once "
              "looked at")
        return 0
    if args.out is not None:
        raise ValueError("--out is where --sample writes; without --sample the documents go to the outbox")
    workers = min(args.workers or os.cpu_count() or 1, os.cpu_count() or 1)  # more processes than CPUs only wait
    packets = render_round_packets(settings, policy, args.round_id, workers=workers)
    for r in packets:
        if r["new"]:
            print(f"packet {r['ags']} v{r['version']} new{' (final)' if r.get('final') else ''}: {r['pdf_path']}")
    with progress.step("rendering the offer letters"):
        letters = render_round_letters(settings, policy, args.round_id, workers=workers)
    for r in letters:
        if r["new"]:
            print(f"letter {r['pseudonym']} [{r['language']}] v{r['version']} new: {r['pdf_path']}")
    # A round of 10,000 letters rendered again names only what changed; the rest is counted.
    for noun, done in (("packet", packets), ("letter", letters)):
        same = [Path(r["pdf_path"]) for r in done if not r["new"]]
        if same:
            where = os.path.commonpath([p.parent for p in same])
            print(f"{counted(len(same), noun)} unchanged (under {where})")
    with reading(settings) as uow:
        unlettered = sum(o.status not in LETTER_STATUSES for o in uow.offers.of_round(args.round_id))
    if unlettered:  # so a letter missing from the count is not taken for a lost one
        print(f"{counted(unlettered, 'offer')} declined, expired or withdrawn: no letter")
    if not packets and not letters:
        print(f"round {args.round_id} has no packet or letter to render")
    return 0


def cmd_packets_deliver(args: argparse.Namespace, settings: Settings) -> int:
    from rematch_pipeline.packets.delivery import STATUS, deliver_round
    from rematch_pipeline.reports.charts import counted

    results = deliver_round(settings, args.round_id)
    lines = []
    for r in results:  # named one by one only when something happened to them now
        if r["delivered"] or r["attempt"] == "refused":
            lines.append(f"{r['document']} {r['recipient']} v{r['version']} via {r['channel']}: "
                         + ("delivered" if r["delivered"] else f"NOT delivered: {r['reason']}"))
    before = [r for r in results if r["delivered_before"]]
    if before:
        gone = sum(r.get("files") == "missing" for r in before)
        times = [r["delivered_at"] for r in before if r["delivered_at"]]  # ISO in UTC: they sort as times do
        lines.append(f"{counted(len(before), 'document')} already delivered"
                     + (f", the last on {max(times)[:16].replace('T', ' ')} UTC" if times else "")
                     + (f" ({gone} of them without their files now: render the round again to restore them)"
                        if gone else ""))
    busy = sum(r["attempt"] == "busy" for r in results)
    if busy:
        lines.append(f"{counted(busy, 'document')} {STATUS['busy']}")
    _print(results, args.json, "\n".join(lines) or "nothing rendered to deliver")
    return 2 if any(r["attempt"] == "refused" for r in results) else 0


def cmd_round_report(args: argparse.Namespace, settings: Settings) -> int:
    from rematch_pipeline import progress
    from rematch_pipeline.reports.round_report import write_round_report

    with progress.step(f"writing the report of round {args.round_id}"):
        path = write_round_report(settings, args.round_id, Path(args.out) if args.out else None)
    print(path)
    return 0


def cmd_quarantine_list(args: argparse.Namespace, settings: Settings) -> int:
    from rematch_pipeline.quarantine import list_quarantine

    rows = list_quarantine(settings, include_resolved=args.all)
    _print(rows, args.json, _quarantine_text(rows, args.all))
    return 0


def _quarantine_text(rows: list[dict[str, Any]], include_resolved: bool) -> str:
    from rematch_pipeline.quarantine import COMMAND_LINE, describe
    from rematch_pipeline.reports.charts import counted

    open_rows = [r for r in rows if not r.get("resolved_at")]
    waiting = len(open_rows)
    if not rows:
        return "The quarantine is empty: no rejected file or row waits for a correction."
    head = (f"In the quarantine: {counted(waiting, 'entry', 'entries')} waiting for a correction"
            + (f", {counted(len(rows) - waiting, 'entry', 'entries')} resolved:" if include_resolved else ":"))
    tail = []
    if any(r["file"] != COMMAND_LINE for r in open_rows):
        tail.append("Correct the file and send it with `rematch quarantine resubmit ID --file CORRECTED`.")
    if any(r["file"] == COMMAND_LINE for r in open_rows):  # no file to correct: the answer itself is given again
        tail.append("A decision refused on the command line is not resubmitted: give it again, corrected, with "
                    "`rematch decide`.")
    return "\n".join([head, *(describe(r) for r in rows), *tail])


def cmd_quarantine_resubmit(args: argparse.Namespace, settings: Settings) -> int:
    from rematch_pipeline.quarantine import resubmit

    result = resubmit(settings, args.id, Path(args.file))
    _print(result, args.json, result["message"] + f"\n  ingest: {result['ingest']['message']}")
    return 0 if result["resolved"] else 1


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from rematch_pipeline.demo import run_demo

    return run_demo(settings, households=args.households, municipalities=args.municipalities,
                    seed=args.seed, round_date=args.date or settings.clock.today())


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    from rematch_pipeline.bench import bench_match, match_lines

    result = bench_match(households=args.households, municipalities=args.municipalities, seed=args.seed,
                         time_limit_s=args.time_limit, balanced_fill_weight=args.balanced_fill_weight,
                         repeat=args.repeat)
    _print(result, args.json, "\n".join(match_lines(result)))
    return 0


def cmd_forms_export(args: argparse.Namespace, settings: Settings) -> int:
    from rematch_pipeline.forms import export_forms

    form, template = export_forms(Path(args.dir))
    print(f"XLSForm (KoboToolbox / ODK): {form}\ncapacity template:          {template}")
    return 0


def cmd_bench_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from rematch_pipeline.ingest.bench import bench_ingest

    result = bench_ingest(households=args.households, seed=args.seed, database_url=args.database_url)
    _print(result, args.json, "\n".join(f"{k:>22}: {v}" for k, v in result.items()))
    return 0 if result["status"] == "ingested" else 1


def cmd_bench_packets(args: argparse.Namespace, settings: Settings) -> int:
    from rematch_pipeline.packets.bench import bench_packets, packets_lines

    result = bench_packets(households=args.households, municipalities=args.municipalities, seed=args.seed,
                           workers=args.workers, letters=args.letters)
    _print(result, args.json, "\n".join(packets_lines(result)))
    return 0


def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from rematch_pipeline.db.engine import migrate

    migrate(settings.database_url)
    print("database schema is up to date")
    return 0


def cmd_access_sync(args: argparse.Namespace, settings: Settings) -> int:
    from rematch_pipeline.access import LOGIN_VARIABLES, sync
    from rematch_pipeline.config import environment

    sync(environment(LOGIN_VARIABLES), require_passwords=args.require_passwords)
    return 0


def cmd_config_show(args: argparse.Namespace, settings: Settings) -> int:
    from rematch_pipeline.config import setting_sources

    sources = setting_sources(settings.home)
    shown = {name: {"value": getattr(settings, name), "from": sources[name]} for name in HOME_SETTINGS}
    _print(shown, args.json, "\n".join(f"{name} = {v['value']!r}  (from {v['from']})" for name, v in shown.items()))
    return 0


def cmd_config_set(args: argparse.Namespace, settings: Settings) -> int:
    from rematch_pipeline.config import contact_problem, save_home_setting, setting_sources

    problem = contact_problem(args.value) if args.name == "coordination_contact" else None
    if problem:
        raise ValueError(f"not kept: {problem}")
    path = save_home_setting(settings.home, args.name, args.value)
    print(f"{args.name} kept in {path}")
    if args.name == "coordination_contact":
        print("note: the packets and offer letters of rounds still open carry the contact, so their next render "
              "issues them again with the new one (and delivers them again)")
    if setting_sources(settings.home)[args.name] == HOME_SETTINGS[args.name]:
        print(f"note: {HOME_SETTINGS[args.name]} is set in the environment and wins over the file")
    return 0


JSON_HELP = "print the result as JSON (for scripts) instead of lines for people"
ROUND_ID_HELP = "the round, e.g. R-2026-11-23 (see `rematch round status`)"
EPILOG = ("Where things are kept: REMATCH_HOME (default: ./var) holds the inbox, archive, outbox, exports and the "
          "SQLite database; REMATCH_DATABASE_URL names another database. `rematch config show` lists the settings "
          "kept with the home. Long steps show their progress on stderr.")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rematch-pipeline")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _command(sub: Any, name: str, help: str) -> argparse.ArgumentParser:
    """A command whose line in its group's list is also the first line of its own --help."""
    return sub.add_parser(name, help=help, description=help[:1].upper() + help[1:] + ".")


def _group(sub: Any, name: str, help: str) -> Any:
    return _command(sub, name, help).add_subparsers(dest="sub", required=True, metavar="COMMAND",
                                                    help="one of these; `COMMAND --help` tells more")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rematch", description=__doc__, epilog=EPILOG)
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="log what each step does on stderr (pseudonymous ids only)")
    p.add_argument("--no-progress", action="store_true",
                   help="do not show the progress of long steps (it goes to stderr, never into the output)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND",
                           help="one of these; `rematch COMMAND --help` tells more")

    d = _command(sub, "demo", "generate a scenario, ingest, validate, solve and offer one round, render and deliver "
                              "packets and letters, write the round report (1-3 minutes)")
    d.add_argument("--households", type=int, default=50, metavar="N", help="households to generate (default: "
                                                                               "%(default)s)")
    d.add_argument("--municipalities", type=int, default=8, metavar="M",
                   help="municipalities to generate (default: %(default)s)")
    d.add_argument("--seed", type=int, default=2023, metavar="S",
                   help="seed of the generated scenario: the same seed gives the same households (default: "
                        "%(default)s)")
    d.add_argument("--date", type=_date, metavar="YYYY-MM-DD", help="round date (default: today)")
    d.set_defaults(func=cmd_demo)

    sc = _group(sub, "scenario", "realistic generated input files, for trying things out")
    g = _command(sc, "generate", "write a KoboToolbox household XLSX and a capacity XLSX")
    g.add_argument("--households", type=int, required=True, metavar="N", help="households to generate")
    g.add_argument("--municipalities", type=int, required=True, metavar="M", help="municipalities to generate")
    g.add_argument("--seed", type=int, default=0, metavar="S",
                   help="seed: the same seed gives the same files (default: %(default)s)")
    g.add_argument("--round-date", type=_date, default=None, metavar="YYYY-MM-DD",
                   help="the round date the interviews and offers are dated for (default: the scenario's)")
    g.add_argument("--out", required=True, metavar="DIR", help="directory to write the two files into")
    g.set_defaults(func=cmd_scenario_generate)

    i = _command(sub, "ingest", "archive, read, validate and store export files; bad rows go to the quarantine")
    i.add_argument("files", nargs="+", metavar="FILE",
                   help="KoboToolbox XLSX/CSV, ODK Central ZIP, capacity XLSX/CSV or decisions CSV")
    i.add_argument("--json", action="store_true", help=JSON_HELP)
    i.set_defaults(func=cmd_ingest)

    r = _group(sub, "round", "matching rounds: solve, offer, settle, status, replay, export, report")
    rr = _command(r, "run", "solve the round of a date (once per date: running it again shows the stored round)")
    rr.add_argument("--date", type=_date, metavar="YYYY-MM-DD", help="round date (default: today)")
    rr.add_argument("--allow-future", action="store_true",
                    help="accept a --date after today's date (it settles the offers as of that day)")
    rr.add_argument("--policy", metavar="FILE",
                    help="policy file (default: REMATCH_POLICY_FILE or the shipped policy.toml)")
    rr.add_argument("--json", action="store_true", help=JSON_HELP)
    rr.set_defaults(func=cmd_round_run)
    rs = _command(r, "status", "state, households and persons placed, offers and fill per municipality of a round")
    rs.add_argument("round_id", nargs="?", metavar="ROUND_ID", help=ROUND_ID_HELP + " (default: the latest round)")
    rs.add_argument("--json", action="store_true", help=JSON_HELP)
    rs.set_defaults(func=cmd_round_status)
    ro = _command(r, "offer", "make the offers of a solved round, one per matched household (idempotent)")
    ro.add_argument("round_id", metavar="ROUND_ID", help=ROUND_ID_HELP)
    ro.set_defaults(func=cmd_round_offer)
    rx = _command(r, "settle", "expire offers not answered by their deadline; those households return to the pool")
    rx.add_argument("--today", type=_date, metavar="YYYY-MM-DD", help="the day to settle as of (default: today)")
    rx.add_argument("--allow-future", action="store_true", help="accept a --today after today's date")
    rx.set_defaults(func=cmd_round_settle)
    rp = _command(r, "replay", "re-solve a round from its stored snapshot and compare the assignments")
    rp.add_argument("round_id", metavar="ROUND_ID", help=ROUND_ID_HELP)
    rp.add_argument("--json", action="store_true", help=JSON_HELP)
    rp.set_defaults(func=cmd_round_replay)
    re_ = _command(r, "export", "write assignments.csv and round.json (data contract, section 4)")
    re_.add_argument("round_id", metavar="ROUND_ID", help=ROUND_ID_HELP)
    re_.add_argument("--out", required=True, metavar="DIR",
                     help="directory to write assignments.csv and round.json into")
    re_.set_defaults(func=cmd_round_export)
    rep = _command(r, "report", "write the round report (HTML) with the round and audit exports beside it")
    rep.add_argument("round_id", metavar="ROUND_ID", help=ROUND_ID_HELP)
    rep.add_argument("--out", metavar="DIR", help="directory (default: REMATCH_HOME/exports/ROUND_ID)")
    rep.set_defaults(func=cmd_round_report)

    dc = _command(sub, "decide", "record a household's answer to its offer")
    dc.add_argument("case_id", metavar="CASE_ID", help="the household's case id")
    dc.add_argument("round_id", metavar="ROUND_ID", help=ROUND_ID_HELP)
    dc.add_argument("decision", choices=["accept", "decline"], help="the household's answer: accept or decline")
    dc.add_argument("--reason", metavar="TEXT",
                    help="the household's reason, if it gave one (free text, purged with the case)")
    dc.set_defaults(func=cmd_decide)

    au = _group(sub, "audit", "the audit trail")
    ae = _command(au, "export", "write a round's audit files (CSV and JSON, readable without this software)")
    ae.add_argument("--round", required=True, metavar="ROUND_ID", help=ROUND_ID_HELP)
    ae.add_argument("--out", required=True, metavar="DIR", help="directory; the files go into DIR/ROUND_ID")
    ae.set_defaults(func=cmd_audit_export)

    pu = _command(sub, "purge", "remove the personal details of households whose case closed before a date")
    pu.add_argument("--before", type=_date, required=True, metavar="YYYY-MM-DD", help="cases closed before this date")
    pu.add_argument("--allow-future", action="store_true",
                    help="allow a date after today (cases closed today lose their details too, packets included)")
    pu.add_argument("--json", action="store_true", help=JSON_HELP)
    pu.set_defaults(func=cmd_purge)
    er = _command(sub, "erase", "erase one household's personal details on request")
    er.add_argument("case_id", metavar="CASE_ID", help="the household's case id")
    er.add_argument("--json", action="store_true", help=JSON_HELP)
    er.set_defaults(func=cmd_erase)

    pk = _group(sub, "packets", "municipality packets and household offer letters")
    pr = _command(pk, "render", "render the packets and offer letters of a round (only what changed is new)")
    pr.add_argument("round_id", metavar="ROUND_ID", help=ROUND_ID_HELP)
    pr.add_argument("--workers", type=int, metavar="W", help="render processes (default: one per CPU)")
    pr.add_argument("--sample", metavar="AGS", help="instead: write this municipality's packet and one offer letter "
                    "per language, as they print now, for a person to look at (not versioned, not delivered)")
    pr.add_argument("--out", metavar="DIR", help="where --sample writes (default: rematch-sample-ROUND_ID-AGS)")
    pr.set_defaults(func=cmd_packets_render)
    pd = _command(pk, "deliver", "deliver the latest packets and letters of a round, once per version")
    pd.add_argument("round_id", metavar="ROUND_ID", help=ROUND_ID_HELP)
    pd.add_argument("--json", action="store_true", help=JSON_HELP)
    pd.set_defaults(func=cmd_packets_deliver)

    q = _group(sub, "quarantine", "rejected files and rows, with what is wrong")
    ql = _command(q, "list", "list the quarantined files and rows with their reasons")
    ql.add_argument("--json", action="store_true", help=JSON_HELP)
    ql.add_argument("--all", action="store_true", help="also list entries already resolved")
    ql.set_defaults(func=cmd_quarantine_list)
    qr = _command(q, "resubmit", "ingest a corrected file and mark the quarantine entry resolved when it is fixed")
    qr.add_argument("id", type=int, metavar="ID", help="the quarantine entry's number (see `rematch quarantine list`)")
    qr.add_argument("--file", required=True, metavar="CORRECTED", help="the corrected export file")
    qr.add_argument("--json", action="store_true", help=JSON_HELP)
    qr.set_defaults(func=cmd_quarantine_resubmit)

    b = _group(sub, "bench", "benchmarks on generated data (nothing is written to REMATCH_HOME)")
    bm = _command(b, "match", "generate a scenario and time one round")
    _scenario_size(bm, households=2000, municipalities=60)
    bm.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                    help="the round's time limit in seconds (default: time_limit_s of the policy)")
    bm.add_argument("--balanced-fill-weight", type=float, default=None, metavar="POINTS",
                    help="points per person within their municipality's share (default: the policy's)")
    bm.add_argument("--repeat", type=_at_least_one, default=1, metavar="K",
                    help="solve the same scenario K times and report whether the assignments agreed (default: "
                         "%(default)s)")
    bm.add_argument("--json", action="store_true", help=JSON_HELP)
    bm.set_defaults(func=cmd_bench)
    bi = _command(b, "ingest", "generate a KoboToolbox XLSX export and time reading, validating and storing it")
    bi.add_argument("--households", type=int, default=10_000, metavar="N",
                    help="households to generate (default: %(default)s)")
    bi.add_argument("--seed", type=int, default=1, metavar="S", help="seed of the generated export (default: "
                                                                          "%(default)s)")
    bi.add_argument("--database-url", metavar="URL", help="an empty database to store into (default: a new SQLite "
                                                           "file)")
    bi.add_argument("--json", action="store_true", help=JSON_HELP)
    bi.set_defaults(func=cmd_bench_ingest)
    bp = _command(b, "packets", "solve a generated round and time rendering every packet (HTML and PDF), on Typst "
                  "and, for a sample, on WeasyPrint")
    _scenario_size(bp, households=2000, municipalities=80)
    bp.add_argument("--workers", type=int, metavar="W", help="render processes (default: one per CPU)")
    bp.add_argument("--letters", action="store_true", help="every household's offer letter too (default: packets only)")
    bp.add_argument("--json", action="store_true", help=JSON_HELP)
    bp.set_defaults(func=cmd_bench_packets)

    from rematch_pipeline.simulation.command import add_parser as add_simulate  # light: the run imports the rest

    add_simulate(sub, _command, JSON_HELP)

    fo = _group(sub, "forms", "the forms we hand out")
    fe = _command(fo, "export", "write the household XLSForm and the capacity XLSX template")
    fe.add_argument("dir", metavar="DIR", help="directory to write the two files into")
    fe.set_defaults(func=cmd_forms_export)

    cf = _group(sub, "config", "settings kept with the home (REMATCH_HOME/settings.toml)")
    cs = _command(cf, "show", "each kept setting, its value and where it comes from")
    cs.add_argument("--json", action="store_true", help=JSON_HELP)
    cs.set_defaults(func=cmd_config_show)
    ce = _command(cf, "set", "keep a setting for every later command and DAG run of this home")
    ce.add_argument("name", choices=sorted(HOME_SETTINGS), help="the setting: %(choices)s")
    ce.add_argument("value", help='its value, e.g. "Re:Match Koordinationsteam, team@example.org, +49 30 1234567"')
    ce.set_defaults(func=cmd_config_set)

    db = _group(sub, "db", "the project database")
    du = _command(db, "upgrade", "create or migrate the schema: once per install or upgrade")
    du.set_defaults(func=cmd_db_upgrade)

    ac = _group(sub, "access", "Airflow's login roles and accounts (FAB auth manager)")
    asy = _command(ac, "sync", "create or update the project's roles, and the accounts named in the environment")
    asy.add_argument("--require-passwords", action="store_true",
                     help="refuse when a named account has no password set, instead of generating one")
    asy.set_defaults(func=cmd_access_sync)
    return p


def _progress(args: argparse.Namespace) -> AbstractContextManager[Any]:
    """Progress of long steps on stderr: a bar on a terminal, otherwise a line now and then; with -v lines too, as
    the log lines would break a bar."""
    from rematch_pipeline import progress

    if args.no_progress:
        return nullcontext()
    reporter = progress.TerminalReporter(sys.stderr, tty=False if args.verbose else None)
    stack = ExitStack()
    stack.enter_context(reporter)
    stack.enter_context(progress.reporting(reporter))
    return stack


def main(argv: list[str] | None = None, settings: Settings | None = None) -> int:
    """Run one command with `settings` (default: from the environment, on the system clock)."""
    from rematch_pipeline.rounds import FutureDateError

    args = build_parser().parse_args(argv)
    configure_logging(logging.INFO if args.verbose else logging.WARNING)
    try:
        with _progress(args):
            return int(args.func(args, settings or load_settings()))
    except FutureDateError as exc:
        hint = "; give --allow-future if that is meant" if hasattr(args, "allow_future") else ""
        print(f"error: {exc}{hint}", file=sys.stderr)
        return 2
    except (LookupError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # Output piped into `head` and the like: the reader left; say nothing more (Python's own advice).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except RuntimeError as exc:
        from rematch_pipeline.repository import RoundBusy

        if type(exc).__module__ == "typst":  # its message quotes the document's text: never shown
            print("error: a document could not be printed to PDF (the ones before it are recorded). "
                  "Print with REMATCH_PDF_RENDERER=weasyprint meanwhile and report it.", file=sys.stderr)
            return 2
        from rematch_pipeline.simulation.beside import SecondProcessFailed

        if isinstance(exc, SecondProcessFailed):
            print(f"error: {exc}", file=sys.stderr)
            return 1
        if not isinstance(exc, RoundBusy):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except OSError as exc:  # a read-only or full REMATCH_HOME, a file that cannot be read: one line, no traceback
        where = f" {exc.filename}" if exc.filename else ""
        print(f"error: cannot read or write{where}: {exc.strerror or type(exc).__name__}. Check that REMATCH_HOME "
              "is writable and has free space, and that the file can be read.", file=sys.stderr)
        return 2
    except Exception as exc:
        from rematch_pipeline.db.engine import cannot_connect, is_busy

        if cannot_connect(exc):
            # Never the driver's words: they quote the address, and a password with an unencoded @ lies in it.
            print("error: cannot connect to the database that REMATCH_DATABASE_URL names; check that the server "
                  "runs, the address, the database name and the password (percent-encode special characters such "
                  "as @ in it); nothing was changed.", file=sys.stderr)
            return 2
        if not is_busy(exc):
            raise
        print("error: the database is being worked on by another run right now; nothing was changed. Run the "
              "command again when that run has ended.", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
