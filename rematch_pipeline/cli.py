"""The `rematch` command line: demo, scenarios, ingest, rounds, offers and decisions, packets, audit, retention."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from datetime import date
from pathlib import Path
from typing import Any

from rematch_pipeline.config import HOME_SETTINGS, Settings, load_policy, load_settings


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {value!r}") from exc


def _at_least_one(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {value!r}")
    return int(value)


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


def _summary_text(s: Any) -> str:
    lines = [f"round {s.round_id} ({s.round_date}): {s.status}" + (" (already solved; unchanged)"
                                                                  if s.already_existed else ""),
             f"  {s.message}",
             f"  households in pool: {s.households}, placed: {s.households_placed}",
             f"  persons in pool: {s.persons_in_pool}, placed: {s.persons_placed}"]
    st = s.stats
    if st.get("lp_bound_persons") is not None and st.get("gap_to_lp") is not None:
        lines.append(f"  persons bound (LP, every eligible pair): {st['lp_bound_persons']:,.2f}, gap "
                     f"{st['gap_to_lp']:.3%}" + (", proven maximal" if st.get("persons_proven_maximal") else ""))
    if st.get("quality_bound") is not None and st.get("quality_gap") is not None:
        lines.append(f"  match quality: {st['quality']:,.1f}, bound {st['quality_bound']:,.1f}, gap "
                     f"{st['quality_gap']:.2%}")
    if s.fill:
        lines.append("  per municipality: persons placed / places offered (fill)"
                     + (", persons accepted" if s.offers.get("offered") else ""))
    for f in s.fill:
        lines.append(f"  {f['ags']} {f['municipality']:<24} {f['persons_placed']:>5} / {f['places_persons']:<5}"
                     f" ({f['fill']:.0%})" + (f", {f['persons_accepted']} accepted" if s.offers.get("offered") else ""))
    lines += [f"  warning: {w}" for w in s.warnings]
    if s.offers.get("offered"):
        o = s.offers
        lines.insert(2, f"  offers to households: {o['offered']} made, {o['accepted']} accepted, "
                        f"{o['declined']} declined, {o['expired']} expired, {o['pending']} pending")
    return "\n".join(lines)


def cmd_round_run(args: argparse.Namespace, settings: Settings) -> int:
    from rematch_pipeline.rounds import run_round

    summary = run_round(settings, load_policy(args.policy), args.date or settings.clock.today(),
                        allow_future=args.allow_future)
    _print(summary.to_json(), args.json, _summary_text(summary))
    return 0 if summary.status != "failed" else 2


def cmd_round_status(args: argparse.Namespace, settings: Settings) -> int:
    from rematch_pipeline.rounds import latest_round_id, summarize

    summary = summarize(settings, args.round_id or latest_round_id(settings))
    _print(summary.to_json(), args.json, _summary_text(summary))
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

    report = purge(settings, args.before)
    _print(report.to_json(), args.json, f"{report.households} closed households purged (contact data, free text, "
                                        f"health details); {report.archived_files} archived exports deleted")
    return 0


def cmd_erase(args: argparse.Namespace, settings: Settings) -> int:
    from rematch_pipeline.retention import erase

    report = erase(settings, args.case_id)
    _print(report.to_json(), args.json, f"household {report.pseudonyms[0]} erased: it left the pool and its contact "
                                        "data, free text and health details are gone")
    return 0


def cmd_round_export(args: argparse.Namespace, settings: Settings) -> int:
    from rematch_pipeline.rounds import export_round

    csv_path, json_path = export_round(settings, args.round_id, Path(args.out))
    print(f"{csv_path}\n{json_path}")
    return 0


def cmd_packets_render(args: argparse.Namespace, settings: Settings) -> int:
    from rematch_pipeline.packets.letters import render_round_letters
    from rematch_pipeline.packets.service import render_round_packets

    policy = load_policy()
    for r in render_round_packets(settings, policy, args.round_id):
        print(f"packet {r['ags']} v{r['version']} {'new' if r['new'] else 'unchanged'}"
              f"{' (final)' if r.get('final') else ''}: {r['pdf_path']}")
    for r in render_round_letters(settings, policy, args.round_id):
        print(f"letter {r['pseudonym']} [{r['language']}] v{r['version']} {'new' if r['new'] else 'unchanged'}: "
              f"{r['pdf_path']}")
    return 0


def cmd_packets_deliver(args: argparse.Namespace, settings: Settings) -> int:
    from rematch_pipeline.packets.delivery import deliver_round

    results = deliver_round(settings, args.round_id)
    _print(results, args.json, "\n".join(
        f"{r['document']} {r['recipient']} v{r['version']} via {r['channel']}: "
        + ("delivered" if r["delivered"] else f"NOT delivered: {r['reason']}" if r["attempt"] == "refused"
           else "already delivered") for r in results) or "nothing rendered to deliver")
    return 2 if any(r["attempt"] == "refused" for r in results) else 0


def cmd_round_report(args: argparse.Namespace, settings: Settings) -> int:
    from rematch_pipeline.reports.round_report import write_round_report

    print(write_round_report(settings, args.round_id, Path(args.out) if args.out else None))
    return 0


def cmd_quarantine_list(args: argparse.Namespace, settings: Settings) -> int:
    from rematch_pipeline.quarantine import list_quarantine

    rows = list_quarantine(settings, include_resolved=args.all)
    _print(rows, args.json, "\n".join(_quarantine_line(r) for r in rows) or "quarantine is empty")
    return 0


def _quarantine_line(r: dict[str, Any]) -> str:
    """One quarantined row for people: which file, where in it, what is wrong; the rule's name for reference."""
    where = ", ".join(part for part in (
        f"sheet {r['sheet']}" if r["sheet"] and r["sheet"] != r["file"] else "",  # a CSV's sheet is the file
        f"row {r['source_row']}" if r["source_row"] else "the whole file",
        f"field {r['field']}" if r["field"] else "") if part)
    return (f"#{r['id']} {r['file']} ({where}): {r['message']} [rule {r['rule']}]"
            + (" (resolved)" if r["resolved_at"] else ""))


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
    from rematch_pipeline.bench import bench_match

    result = bench_match(households=args.households, municipalities=args.municipalities, seed=args.seed,
                         time_limit_s=args.time_limit, balanced_fill_weight=args.balanced_fill_weight,
                         repeat=args.repeat)
    _print(result, args.json, "\n".join(f"{k:>22}: {v}" for k, v in result.items()))
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
    from rematch_pipeline.packets.bench import bench_packets

    result = bench_packets(households=args.households, municipalities=args.municipalities, seed=args.seed,
                           workers=args.workers)
    _print(result, args.json, "\n".join(f"{k:>22}: {v}" for k, v in result.items()))
    return 0


def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from rematch_pipeline.db.engine import migrate

    migrate(settings.database_url)
    print("database schema is up to date")
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


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rematch-pipeline")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rematch", description=__doc__)
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress (pseudonymous ids only)")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="generate a scenario, ingest, validate, solve one round, render packets")
    d.add_argument("--households", type=int, default=50, help="households to generate (default: 50)")
    d.add_argument("--municipalities", type=int, default=8, help="municipalities to generate (default: 8)")
    d.add_argument("--seed", type=int, default=2023, help="seed of the generated scenario (default: 2023)")
    d.add_argument("--date", type=_date, help="round date (default: today)")
    d.set_defaults(func=cmd_demo)

    sc = sub.add_parser("scenario", help="realistic generated input files").add_subparsers(dest="sub", required=True)
    g = sc.add_parser("generate", help="write a KoboToolbox XLSX and a capacity XLSX")
    g.add_argument("--households", type=int, required=True, help="households to generate")
    g.add_argument("--municipalities", type=int, required=True, help="municipalities to generate")
    g.add_argument("--seed", type=int, default=0, help="seed: the same seed gives the same files (default: 0)")
    g.add_argument("--round-date", type=_date, default=None,
                   help="the round date the interviews and offers are dated for, YYYY-MM-DD (default: the scenario's)")
    g.add_argument("--out", required=True, help="directory to write the two files into")
    g.set_defaults(func=cmd_scenario_generate)

    i = sub.add_parser("ingest", help="archive, read, validate and store export files")
    i.add_argument("files", nargs="+", help="KoboToolbox XLSX/CSV, ODK Central ZIP, capacity XLSX/CSV or decisions CSV")
    i.add_argument("--json", action="store_true", help=JSON_HELP)
    i.set_defaults(func=cmd_ingest)

    r = sub.add_parser("round", help="matching rounds").add_subparsers(dest="sub", required=True)
    rr = r.add_parser("run", help="solve the round of a date (idempotent)")
    rr.add_argument("--date", type=_date, help="round date, YYYY-MM-DD (default: today)")
    rr.add_argument("--allow-future", action="store_true",
                    help="accept a --date after today's date (it settles the offers as of that day)")
    rr.add_argument("--policy", help="policy file (default: REMATCH_POLICY_FILE or the shipped policy.toml)")
    rr.add_argument("--json", action="store_true", help=JSON_HELP)
    rr.set_defaults(func=cmd_round_run)
    rs = r.add_parser("status", help="state, offer counts and fill per municipality of a round")
    rs.add_argument("round_id", nargs="?", help="default: the latest round")
    rs.add_argument("--json", action="store_true", help=JSON_HELP)
    rs.set_defaults(func=cmd_round_status)
    ro = r.add_parser("offer", help="make the offers of a solved round (idempotent)")
    ro.add_argument("round_id", help=ROUND_ID_HELP)
    ro.set_defaults(func=cmd_round_offer)
    rx = r.add_parser("settle", help="expire offers not answered by their deadline")
    rx.add_argument("--today", type=_date, help="default: today")
    rx.add_argument("--allow-future", action="store_true", help="accept a --today after today's date")
    rx.set_defaults(func=cmd_round_settle)
    rp = r.add_parser("replay", help="re-solve a round from its stored snapshot and compare the assignments")
    rp.add_argument("round_id", help=ROUND_ID_HELP)
    rp.add_argument("--json", action="store_true", help=JSON_HELP)
    rp.set_defaults(func=cmd_round_replay)

    dc = sub.add_parser("decide", help="record a household's answer to its offer")
    dc.add_argument("case_id", help="the household's case id")
    dc.add_argument("round_id", help=ROUND_ID_HELP)
    dc.add_argument("decision", choices=["accept", "decline"], help="the household's answer")
    dc.add_argument("--reason", help="the household's reason, if it gave one (free text, purged with the case)")
    dc.set_defaults(func=cmd_decide)

    au = sub.add_parser("audit", help="audit trail").add_subparsers(dest="sub", required=True)
    ae = au.add_parser("export", help="write a round's audit files (CSV and JSON)")
    ae.add_argument("--round", required=True, help=ROUND_ID_HELP)
    ae.add_argument("--out", required=True, help="directory; the files go into OUT/ROUND_ID")
    ae.set_defaults(func=cmd_audit_export)

    pu = sub.add_parser("purge", help="remove personal details of households whose case closed before a date")
    pu.add_argument("--before", type=_date, required=True, help="cases closed before this date, YYYY-MM-DD")
    pu.add_argument("--json", action="store_true", help=JSON_HELP)
    pu.set_defaults(func=cmd_purge)
    er = sub.add_parser("erase", help="erase one household's personal details on request")
    er.add_argument("case_id", help="the household's case id")
    er.add_argument("--json", action="store_true", help=JSON_HELP)
    er.set_defaults(func=cmd_erase)
    re_ = r.add_parser("export", help="write assignments.csv and round.json")
    re_.add_argument("round_id", help=ROUND_ID_HELP)
    re_.add_argument("--out", required=True, help="directory to write assignments.csv and round.json into")
    re_.set_defaults(func=cmd_round_export)

    pk = sub.add_parser("packets", help="municipality packets and household letters").add_subparsers(
        dest="sub", required=True)
    pr = pk.add_parser("render", help="render the packets and offer letters of a round (idempotent)")
    pr.add_argument("round_id", help=ROUND_ID_HELP)
    pr.set_defaults(func=cmd_packets_render)
    pd = pk.add_parser("deliver", help="deliver the latest packets and letters of a round, once per version")
    pd.add_argument("round_id", help=ROUND_ID_HELP)
    pd.add_argument("--json", action="store_true", help=JSON_HELP)
    pd.set_defaults(func=cmd_packets_deliver)
    rep = r.add_parser("report", help="write the round report (HTML) with the round and audit exports beside it")
    rep.add_argument("round_id", help=ROUND_ID_HELP)
    rep.add_argument("--out", help="directory (default: $REMATCH_HOME/exports/ROUND_ID)")
    rep.set_defaults(func=cmd_round_report)

    q = sub.add_parser("quarantine", help="rejected rows").add_subparsers(dest="sub", required=True)
    ql = q.add_parser("list", help="list quarantined rows with their reasons")
    ql.add_argument("--json", action="store_true", help=JSON_HELP)
    ql.add_argument("--all", action="store_true", help="also list rows already resolved")
    ql.set_defaults(func=cmd_quarantine_list)
    qr = q.add_parser("resubmit", help="ingest a corrected file and mark the quarantine row resolved when fixed")
    qr.add_argument("id", type=int, help="quarantine row id (see `rematch quarantine list`)")
    qr.add_argument("--file", required=True, help="the corrected export file")
    qr.add_argument("--json", action="store_true", help=JSON_HELP)
    qr.set_defaults(func=cmd_quarantine_resubmit)

    b = sub.add_parser("bench", help="benchmarks").add_subparsers(dest="sub", required=True)
    bm = b.add_parser("match", help="generate a scenario and time one round")
    bm.add_argument("--households", type=int, default=2000, help="households to generate (default: 2000)")
    bm.add_argument("--municipalities", type=int, default=60, help="municipalities to generate (default: 60)")
    bm.add_argument("--seed", type=int, default=1, help="seed of the generated scenario (default: 1)")
    bm.add_argument("--time-limit", type=float, default=None,
                    help="the round's time limit in seconds (default: time_limit_s of the policy)")
    bm.add_argument("--balanced-fill-weight", type=float, default=None,
                    help="points per person within their municipality's share (default: the policy's)")
    bm.add_argument("--repeat", type=_at_least_one, default=1,
                    help="solve the same scenario K times and report whether the assignments agreed (default: 1)")
    bm.add_argument("--json", action="store_true", help=JSON_HELP)
    bm.set_defaults(func=cmd_bench)
    bi = b.add_parser("ingest", help="generate a Kobo XLSX export and time parse, validate and store")
    bi.add_argument("--households", type=int, default=10_000, help="households to generate (default: 10000)")
    bi.add_argument("--seed", type=int, default=1, help="seed of the generated export (default: 1)")
    bi.add_argument("--database-url", help="an empty database to store into (default: a new SQLite file)")
    bi.add_argument("--json", action="store_true", help=JSON_HELP)
    bi.set_defaults(func=cmd_bench_ingest)
    bp = b.add_parser("packets", help="solve a generated round and time rendering every packet (HTML + PDF)")
    bp.add_argument("--households", type=int, default=2000, help="households to generate (default: 2000)")
    bp.add_argument("--municipalities", type=int, default=80, help="municipalities to generate (default: 80)")
    bp.add_argument("--seed", type=int, default=1, help="seed of the generated scenario (default: 1)")
    bp.add_argument("--workers", type=int, help="render processes (default: one per CPU)")
    bp.add_argument("--json", action="store_true", help=JSON_HELP)
    bp.set_defaults(func=cmd_bench_packets)

    fo = sub.add_parser("forms", help="the forms we hand out").add_subparsers(dest="sub", required=True)
    fe = fo.add_parser("export", help="write the household XLSForm and the capacity XLSX template")
    fe.add_argument("dir", help="directory to write the two files into")
    fe.set_defaults(func=cmd_forms_export)

    cf = sub.add_parser("config", help="settings kept with the home (REMATCH_HOME/settings.toml)").add_subparsers(
        dest="sub", required=True)
    cs = cf.add_parser("show", help="each kept setting, its value and where it comes from")
    cs.add_argument("--json", action="store_true", help=JSON_HELP)
    cs.set_defaults(func=cmd_config_show)
    ce = cf.add_parser("set", help="keep a setting for every later command and DAG run of this home")
    ce.add_argument("name", choices=sorted(HOME_SETTINGS), help="the setting")
    ce.add_argument("value", help='its value, e.g. "Re:Match Koordinationsteam, team@example.org, +49 30 1234567"')
    ce.set_defaults(func=cmd_config_set)

    db = sub.add_parser("db", help="database").add_subparsers(dest="sub", required=True)
    du = db.add_parser("upgrade", help="apply the schema migrations")
    du.set_defaults(func=cmd_db_upgrade)
    return p


def main(argv: list[str] | None = None, settings: Settings | None = None) -> int:
    """Run one command with `settings` (default: from the environment, on the system clock)."""
    from rematch_pipeline.rounds import FutureDateError

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
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
        from rematch_pipeline.rounds import RoundBusy

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
