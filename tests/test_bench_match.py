"""`rematch bench match`: one generated round, timed, with the gap to the bound over all pairs and the baselines."""

from __future__ import annotations

import json

import pytest

from rematch_pipeline.cli import main


@pytest.mark.full
def test_bench_match_reports_the_gap_to_the_full_pair_bound_and_both_baselines(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "match", "--households", "300", "--municipalities", "12", "--seed", "2",
                 "--time-limit", "20", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["time_limit_s"] == 20.0 and result["municipalities"] == 12
    for key in ("build_s", "solve_s", "wall_s", "peak_rss_mb", "objective"):
        assert result[key] is not None
    placed, bound = result["persons_placed"], result["lp_bound_persons"]
    assert 0 < placed <= bound + 1e-6
    assert result["gap_to_lp"] == pytest.approx(max(0.0, (bound - placed) / bound), abs=1e-6)
    assert set(result["comparison"]) == {"rematch", "state_quota", "greedy_by_score"}
    assert result["comparison"]["rematch"]["hard_need_violations"] == 0
    assert placed >= result["comparison"]["greedy_by_score"]["persons_placed"]


def test_bench_match_runs_with_the_balanced_fill_weight_it_is_given(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "match", "--households", "60", "--municipalities", "4", "--seed", "3",
                 "--time-limit", "10", "--balanced-fill-weight", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["balanced_fill"]["weight"] == 2.0
    assert result["comparison"]["rematch"]["persons_beyond_share"] == pytest.approx(
        result["persons_placed"] - result["balanced_fill"]["persons_within_share"], abs=1e-2)


def test_bench_match_repeat_reports_whether_every_run_placed_everyone_alike(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "match", "--households", "60", "--municipalities", "4", "--seed", "3",
                 "--time-limit", "10", "--repeat", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["repeat"] == 2 and result["hashes_agree"] is True  # a small round is solved to optimality
    assert len(result["assignments_sha256"]) == 64


def test_the_assignments_fingerprint_changes_when_one_household_moves() -> None:
    from rematch_pipeline.domain import Assignment
    from rematch_pipeline.matching.engine import MatchResult

    def result(*pairs: tuple[str, str]) -> MatchResult:
        placed = [Assignment("R", c, "09162000", 1, 1.0, {}, 1, offer_id=o) for c, o in pairs]
        return MatchResult("optimal", "", placed, [])

    same = result(("RM-A", "OF-1"), ("RM-B", "OF-2"))
    assert same.assignments_sha256 == result(("RM-B", "OF-2"), ("RM-A", "OF-1")).assignments_sha256  # order-free
    assert same.assignments_sha256 != result(("RM-A", "OF-2"), ("RM-B", "OF-1")).assignments_sha256


def test_bench_match_for_people_prints_words_units_and_baselines_by_name_never_python_text_or_keys(
        capsys: pytest.CaptureFixture[str]) -> None:
    # Rule: the bench's lines are for people (the figures by name, with units; `--json` keeps the keys).
    assert main(["--no-progress", "bench", "match", "--households", "140", "--municipalities", "8", "--seed", "1",
                 "--time-limit", "60"]) == 0
    out = capsys.readouterr().out
    assert "{" not in out and "[" not in out and "None" not in out and "True" not in out
    assert "time_limit_s" not in out and "hashes_agree" not in out and "greedy_by_score" not in out
    assert "solver outcome: optimal (safety-net time limit 60 s)" in out
    assert "phase lp_persons: LP relaxation of persons placed: optimal, objective " in out
    assert " (counting persons, plus a tie-break for quality of at most 0.5 (without it, the persons bound)), " in out
    assert "baseline greedy by score: " in out and "baseline state quota (Königstein key): " in out
    # The households left out of the pool are counted, with why (the pilot-sized scenario of seed 1 has four).
    assert "scenario: 140 households generated, 136 in the pool (4 did not consent to matching), " in out
    assert "\nours: " in out
