"""The round's solver budget in one place: the fixed work that stops each phase, and the clock's phase shares."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SearchWork:
    """The fixed work of one neighbourhood search: numbers of neighbourhoods and nodes, never seconds."""

    offers: int  # municipalities per neighbourhood
    rounds: int  # neighbourhoods solved at most
    nodes: int  # branch-and-bound nodes per neighbourhood
    stop_after: int | None  # neighbourhoods in a row without a gain that end the search (None: it runs its rounds)
    # Neighbourhoods in a row without a gain after which the next ones take twice the municipalities, up to
    # `max_offers` (None: they keep their size).
    grow_after: int | None = None
    max_offers: int = 0
    # Households placed elsewhere that a neighbourhood lets move in, the largest gains first (None: all). A
    # neighbourhood stopped at its node limit halves it for the next one, down to `min_movers`; one solved to
    # optimality adds `movers_step` back, up to `movers`.
    movers: int | None = None
    min_movers: int = 0
    movers_step: int = 10


@dataclass(frozen=True)
class WorkBudget:
    """What stops a round's solve: the same work on every machine. The time limit is only a safety net, shared
    out among the phases by the shares below; a phase the clock cuts reports `time_limit`."""

    pricing_rounds: int = 20  # persons LPs over the type model, each adding priced columns
    # Iterations per persons LP, far more than interior point and simplex need on these LPs; an LP beyond them is
    # given up alike on every machine and the bound comes from Lagrangian relaxation.
    lp_ipm_iterations: int = 1000
    lp_simplex_iterations: int = 1_000_000
    subgradient_steps: int = 500  # of that Lagrangian relaxation
    type_mip_nodes: int = 5000  # branch and bound over types; neighbourhoods take over if it stops short
    # Branch and bound of a small round's exact persons and quality MIPs (the Pyomo path), which used to stop only at
    # the clock: pilot-size rounds solve within 20 nodes, a hard 500 x 100 round takes about a second a node
    # (docs/solver-tuning.md).
    exact_mip_nodes: int = 100
    # Branch-and-bound nodes of a type neighbourhood's first try near its LP relaxation, with the tie-break by quality
    # (`TypeNeighbourhoods`); persons alone come next, with the neighbourhood's nodes.
    near_tie_nodes: int = 50
    # Neighbourhoods over household types: two municipalities at first, doubled whenever 50 in a row found nothing.
    types: SearchWork = field(default_factory=lambda: SearchWork(
        offers=2, rounds=400, nodes=2000, stop_after=None, grow_after=50, max_offers=16))
    # Then neighbourhoods over types guided by the persons LP (`GuidedTypeNeighbourhoods`): municipalities where the
    # LP places persons of a type the allocation has elsewhere or unplaced, chained to where it has those types.
    guided_types: SearchWork = field(default_factory=lambda: SearchWork(
        offers=16, rounds=200, nodes=2000, stop_after=None))
    persons: SearchWork = field(default_factory=lambda: SearchWork(offers=4, rounds=100, nodes=2000, stop_after=100))
    # The persons searches may stop once persons are within this many millionths of the bound (a count reached, so
    # the same everywhere). 0: they run their work. At 200 (0.02 %) 10,000 x 400 saves about a third of its type phase
    # but places 2 to 4 persons fewer (docs/solver-tuning.md): persons come first, so it is off.
    persons_gap_ppm: int = 0
    quality: SearchWork = field(default_factory=lambda: SearchWork(
        offers=2, rounds=100, nodes=500, stop_after=100, movers=150, min_movers=20))
    # Passes of single moves and swaps over every eligible pair after the quality neighbourhoods (`moves`): at
    # 10,000 x 400 the first four give 1.49 % more quality of the 1.51 % that passes until none is left give.
    move_sweeps: int = 4
    # Every other quality neighbourhood keeps each household it holds placed; those solve faster, so take more.
    kept_offers: int = 4
    lp_guided_every: int = 2  # neighbourhoods of the other kinds after each one guided by the quality LP (0: none)
    guided_offers: int = 4  # municipalities per guided neighbourhood
    # Quality neighbourhoods of all kinds when some are guided (instead of `quality.rounds`): the guided ones are
    # larger, and this many take about the time of `quality.rounds` without them.
    guided_rounds: int = 45
    # The quality bound: LPs over candidate pairs, each followed by pricing in the eligible pairs it lacks, up to a
    # number of columns; a round whose first LP already exceeds them solves none (subgradient steps bound it). The
    # first LP's candidates: the placement found and each household's best offers by score (the
    # whole candidate set is too large for one LP at national scale).
    quality_bound_lps: int = 6
    quality_bound_columns: int = 30_000
    quality_bound_candidates: int = 3
    quality_bound_ipm_iterations: int = 400  # per LP
    quality_bound_crossover_iterations: int = 200_000  # simplex iterations of the crossover, per LP
    # Subgradient steps on the quality bound's prices where its LPs stopped short of every eligible pair, or never
    # ran (over their column budget): at 10,000 x 400 100 steps take the bound from 16.4 % above the quality found
    # to 7.5 %, 3-13 s by load (docs/solver-tuning.md).
    quality_bound_subgradient_steps: int = 100
    # Shares of the time limit (the safety net, not the work).
    wrap_up_share: float = 0.05  # kept for extracting assignments and the baselines after the solve
    lp_share: float = 0.5  # the persons LP bound with pricing
    quality_reserve: float = 0.2  # kept for the quality phase after the persons search over types
    persons_share: float = 0.6  # without an LP: of the time left, for the persons search; quality gets the rest
    subgradient_share: float = 0.1  # the Lagrangian bound when no LP finished in time
    deadline_margin_s: float = 1.0  # no neighbourhood starts this close to its deadline

    def report(self) -> dict[str, int]:
        """The work amounts by name, as a round reports them (`deterministic_work`)."""
        return {"pricing_rounds": self.pricing_rounds, "lp_ipm_iterations": self.lp_ipm_iterations,
                "lp_simplex_iterations": self.lp_simplex_iterations, "subgradient_steps": self.subgradient_steps,
                "type_mip_nodes": self.type_mip_nodes, "exact_mip_nodes": self.exact_mip_nodes,
                "persons_gap_ppm": self.persons_gap_ppm,
                "type_neighbourhoods": self.types.rounds, "type_neighbourhood_nodes": self.types.nodes,
                "near_relaxation_tie_break_nodes": self.near_tie_nodes,
                "guided_type_neighbourhoods": self.guided_types.rounds,
                "guided_type_offers": self.guided_types.offers, "guided_type_nodes": self.guided_types.nodes,
                "persons_neighbourhoods": self.persons.rounds, "persons_neighbourhood_nodes": self.persons.nodes,
                "move_sweeps": self.move_sweeps, "quality_neighbourhoods": self.quality.rounds,
                "quality_neighbourhood_nodes": self.quality.nodes,
                "neighbourhoods_without_gain": self.persons.stop_after or 0,
                "quality_bound_lps": self.quality_bound_lps, "quality_bound_columns": self.quality_bound_columns,
                "quality_bound_candidates": self.quality_bound_candidates,
                "quality_bound_ipm_iterations": self.quality_bound_ipm_iterations,
                "quality_bound_crossover_iterations": self.quality_bound_crossover_iterations,
                "quality_bound_subgradient_steps": self.quality_bound_subgradient_steps,
                "lp_guided_every": self.lp_guided_every, "guided_offers": self.guided_offers,
                "guided_neighbourhoods": self.guided_rounds}


BUDGET = WorkBudget()
