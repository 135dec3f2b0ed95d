"""`rematch simulate`: weekly rounds through the real pipeline on a throwaway home, against the hindsight optimum."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rematch_pipeline.config import MAX_LOOK_AHEAD_ROUNDS

# The look-ahead run's weight unless told otherwise (measured in README and docs/solver-tuning.md).
LOOK_AHEAD_WEIGHT = 10.0
WITHOUT_CHANGES = "without changes"  # the what-if row of the simulation as its options ran it
# From this many households over the horizon the command runs the myopic rounds in a second process beside the
# look-ahead's (`runner.default_processes`): a process starts in about 3 s (its imports), which a smaller simulation
# would not win back.
SECOND_PROCESS_FROM = 2_000


@dataclass(frozen=True)
class Plan:
    """A simulation parameter a planner varies: `rematch simulate --KEY VALUE`, and KEY=VALUE in a what-if variant."""

    key: str
    field: str  # of `runner.SimulationParameters`
    read: Callable[[str], Any]
    default: Any  # None: the command works it out (`--look-ahead-weight`)
    metavar: str
    help: str


# One list for the options and the what-if keys, so a variant is named as the option it changes.
PLANS = (
    Plan("accept-share", "accept_share", float, 0.8, "P", "share of offers accepted (default: %(default)s)"),
    Plan("decline-share", "decline_share", float, 0.1, "P",
         "share of offers declined; the rest go unanswered and expire (default: %(default)s)"),
    Plan("response-days", "response_days", int, 2, "D",
         "days after the round the answers come back, 0-6 (default: %(default)s)"),
    Plan("capacity-share", "capacity_share", float, 1.0, "P",
         "initial capacity sized for this share of all the horizon's arrivals (default: %(default)s)"),
    Plan("renew-every", "renew_every_weeks", int, 0, "K",
         "every K weeks the municipalities offer places again; 0: never (default: %(default)s)"),
    Plan("renew-share", "renew_share", float, 0.0, "P",
         "a renewal's size as a share of the municipality's initial offer (default: %(default)s)"),
    Plan("round-every", "round_every_weeks", int, 1, "K",
         "a round every K weeks, each taking the arrivals of its K weeks; K divides the weeks; waits are still "
         "counted in weeks (default: %(default)s)"),
    Plan("look-ahead-weight", "look_ahead_weight", float, None, "W",
         "also run the same weeks with rounds that look ahead, at this look_ahead_weight (points per person placed "
         "off the plan over the coming rounds, by the policy's look_ahead_method); 0: only the myopic rounds "
         f"(default: the policy file's look_ahead_weight when above 0, else {LOOK_AHEAD_WEIGHT:g})"),
    Plan("look-ahead-rounds", "look_ahead_rounds", int, None, "R",
         f"the rounds that look ahead plan R rounds ahead, 1-{MAX_LOOK_AHEAD_ROUNDS} (default: the policy file's "
         "look_ahead_rounds)"),
)
DEFAULTS = {plan.field: plan.default for plan in PLANS if plan.default is not None}
