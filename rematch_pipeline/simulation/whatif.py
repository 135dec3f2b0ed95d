"""Planning questions: variants of one simulation (round interval, added capacity, answers) run side by side."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from rematch_pipeline.domain import Policy
from rematch_pipeline.reports.charts import listed
from rematch_pipeline.simulation import PLANS, WITHOUT_CHANGES
from rematch_pipeline.simulation.arrivals import ADDABLE, municipality_ags
from rematch_pipeline.simulation.runner import SimulationParameters, default_processes, run_simulation

# What a variant may change, named as `rematch simulate`'s options: the parameter and how its value is read.
CHANGES: dict[str, tuple[str, Callable[[str], Any]]] = {plan.key: (plan.field, plan.read) for plan in PLANS}
ADD = "add"  # add=AGS:column=N adds N of a capacity column to that municipality's first offer
UNANSWERED = "no-answer share"  # 1 - accept share - decline share: named in notes, not a change a planner writes
NAMES = {**{plan.field: plan.key for plan in PLANS}, "added_capacity": ADD}  # parameter -> what a planner writes


def variant_parameters(base: SimulationParameters, spec: str) -> SimulationParameters:
    """The base parameters with a variant's changes: `KEY=VALUE` parts separated by `;`, for example
    `round-every=2` or `add=01002000:units_3_rooms=5;add=01002000:places_persons=20`."""
    changes: dict[str, Any] = {}
    added = list(base.added_capacity)
    for part in spec.split(";"):
        key, sep, value = (s.strip() for s in part.partition("="))
        if not sep or not value:
            raise ValueError(f"what-if {spec!r}: each change is KEY=VALUE, KEY one of "
                             f"{', '.join([*CHANGES, ADD])}")
        if key in CHANGES and CHANGES[key][0] in changes:
            raise ValueError(f"what-if {spec!r}: {key} is named twice; give it once")
        if key == ADD:
            ags, _, rest = value.partition(":")
            column, _, amount = rest.partition("=")
            if not ags or column not in ADDABLE or not amount.lstrip("-").isdigit():
                raise ValueError(f"what-if {spec!r}: add=AGS:COLUMN=N, COLUMN one of {', '.join(ADDABLE)}, N a "
                                 "whole number")
            added.append((ags, column, int(amount)))
        elif key in CHANGES:
            name, read = CHANGES[key]
            try:
                changes[name] = read(value)
            except ValueError as exc:
                kind = "a whole number" if read is int else "a number"
                raise ValueError(f"what-if {spec!r}: {key} takes {kind}, not {value!r}") from exc
        else:
            raise ValueError(f"what-if {spec!r}: unknown change {key!r}; one of {', '.join([*CHANGES, ADD])}")
    # "What if a third declined?": the share that accepts gives way (and the other way round), unless both are named.
    for named, other in (("decline_share", "accept_share"), ("accept_share", "decline_share")):
        if named in changes and other not in changes and isinstance(changes[named], float):
            changes[other] = round(max(0.0, min(getattr(base, other), 1 - changes[named])), 6)
    if changes.get("look_ahead_weight") == 0 and "look_ahead_rounds" not in changes:
        changes["look_ahead_rounds"] = None  # "what if no look-ahead?": the base's rounds ahead have nothing to plan
    params = dataclasses.replace(base, **changes, added_capacity=tuple(added))
    known = set(municipality_ags(params.seed, params.municipalities))
    for ags, _, _ in added:
        if ags not in known:
            raise ValueError(f"what-if {spec!r}: AGS {ags} is not one of the simulation's municipalities "
                             f"({listed(sorted(known))}; its summary's fill_by_municipality lists them all)")
    return params


def gave_way(row: dict[str, Any]) -> dict[str, Any]:
    """The changes of a what-if row its name does not say (the accept share under more declines): the report names
    these beside the variant, not again the ones the planner wrote, nor a setting the change left unused (the
    rounds ahead of a run without look-ahead)."""
    return _knock_on(row)[0]


def _knock_on(row: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """`gave_way`'s changes, and the old value of those the row's `was` does not hold (the unanswered share)."""
    named = _named(row)
    so = {k: v for k, v in (row.get("changed") or {}).items() if k not in named and v is not None}
    before: dict[str, Any] = {}
    shares = _unanswered(row)
    if shares:
        before[UNANSWERED], so[UNANSWERED] = shares
    return so, before


def _unanswered(row: dict[str, Any]) -> tuple[float, float] | None:
    """The share of offers left unanswered before and after a variant's changes, when they changed it: it is what
    the accept and decline shares leave, not a parameter, yet it changes with them."""
    params, was = row.get("parameters") or {}, row.get("was") or {}
    if not {"accept-share", "decline-share"} & set(row.get("changed") or {}) or "accept_share" not in params:
        return None

    def left(accept: float, decline: float) -> float:
        return round(max(0.0, 1.0 - accept - decline), 6)
    before = left(was.get("accept-share", params["accept_share"]), was.get("decline-share", params["decline_share"]))
    after = left(params["accept_share"], params["decline_share"])
    return None if after == before else (before, after)


def change_note(row: dict[str, Any]) -> str:
    """Beside a variant's name, for people: each change with the value it replaced ("round-every 1 → 2"), in the
    order the planner wrote them, then those its name does not say ("and so accept-share 0.8 → 0.6"); added capacity
    only as the name says it, a setting the change left unused not at all. Empty for the simulation without changes;
    a variant that changed nothing says so."""
    if row["variant"] == WITHOUT_CHANGES:
        return ""
    so, before = _knock_on(row)
    was, named = {**(row.get("was") or {}), **before}, _named(row)
    changed = row.get("changed") or {}
    said = [_change(k, was.get(k), changed[k]) for k in named if k in changed and k != ADD and changed[k] is not None]
    text = ", ".join(said)
    if so:
        text += ("; " if text else "") + "and so " + ", ".join(_change(k, was.get(k), v) for k, v in so.items())
    if not changed:
        text = "the same as without changes"
    return f"({text})" if text else ""


def _named(row: dict[str, Any]) -> list[str]:
    """The keys of a variant's changes, in the order written."""
    return list(dict.fromkeys(part.partition("=")[0].strip() for part in str(row["variant"]).split(";")))


def _change(key: str, before: Any, after: Any) -> str:
    def shown(value: Any) -> str:
        if isinstance(value, float):  # as written: 0.3333333 stays, 10.0 is 10 (no rounding, no exponent)
            text = repr(value)
            return text[:-2] if text.endswith(".0") else text
        return "the policy's" if value is None else str(value)
    return f"{key} {shown(before)} → {shown(after)}"


def key_figures(name: str, summary: dict[str, Any]) -> dict[str, Any]:
    """What a planner compares between variants: persons placed per policy, how long households waited."""
    ahead = summary.get("look_ahead")
    return {
        "variant": name, "parameters": summary["parameters"],
        "persons_placed": summary["persons_placed"], "ratio_to_hindsight": summary["ratio_to_hindsight"],
        "households_waiting_at_end": {"myopic": summary["totals"]["households_waiting_at_end"],
                                      "look_ahead": ahead["totals"]["households_waiting_at_end"] if ahead else None},
        "wait_weeks": {"myopic": summary["totals"]["wait_weeks"],
                       "look_ahead": ahead["totals"]["wait_weeks"] if ahead else None},
        "max_wait_weeks_with_free_place_by_policy": summary["max_wait_weeks_with_free_place_by_policy"],
        "absent": summary.get("absent") or {},  # a policy the variant did not run, and why
    }


def _base_value(summary: dict[str, Any], name: str) -> Any:
    """A parameter of the base run; one it left to the policy (the rounds ahead) as the policy ran it."""
    value = summary["parameters"].get(name)
    if value is None:
        ran = (summary.get("look_ahead") or {}).get("policy") or summary.get("policy") or {}
        value = ran.get(name)
    return value


def what_if(base_summary: dict[str, Any], variants: Sequence[tuple[str, SimulationParameters]],
            policy: Policy | None = None, processes: int | None = None) -> list[dict[str, Any]]:
    """The base run's key figures, then each variant's: every variant a whole simulation of its own, on the same seed,
    so the same households arrive. Read the variants (`variant_parameters`) before the base runs: a typo then costs
    no time. `processes`: as `run_simulation`'s; None: each variant's `default_processes`."""
    rows = [key_figures(WITHOUT_CHANGES, base_summary)]
    base = base_summary["parameters"]
    for spec, params in variants:
        ran = run_simulation(params, policy, processes=default_processes(params, processes))
        row = key_figures(spec, ran.summary)
        # Every parameter the variant changed, including those that gave way (accept share under more declines),
        # named as the planner named it (the option, or `add`).
        row["changed"] = {NAMES.get(k, k): v for k, v in row["parameters"].items() if v != base.get(k)}
        row["was"] = {NAMES.get(k, k): _base_value(base_summary, k) for k, v in row["parameters"].items()
                      if v != base.get(k)}
        row["persons_placed_change"] = {
            k: None if v is None or rows[0]["persons_placed"].get(k) is None else v - rows[0]["persons_placed"][k]
            for k, v in row["persons_placed"].items()}
        rows.append(row)
    return rows
