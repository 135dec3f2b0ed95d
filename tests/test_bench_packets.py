"""`rematch bench packets`: a generated round's documents rendered and timed, with figures for people."""

from __future__ import annotations

import pytest

from rematch_pipeline.cli import main
from rematch_pipeline.packets.bench import GOAL_SIZE


@pytest.mark.full
def test_bench_packets_speaks_of_the_goal_only_at_the_national_size_and_prints_no_python_text(
        capsys: pytest.CaptureFixture[str]) -> None:
    # Rule: the 3-minute goal is of 10,000 households x 400 municipalities; a smaller round neither meets nor
    # misses it. People read words and units, never a dict.
    assert (20, 3) != GOAL_SIZE
    assert main(["--no-progress", "bench", "packets", "--households", "20", "--municipalities", "3"]) == 0
    out = capsys.readouterr().out
    assert "goal" not in out and "{" not in out and "_s:" not in out
    assert out.startswith("round: 20 households generated, 3 municipalities, seed 1; solved and prepared in ")
    assert "Typst in 2 processes: " in out or "Typst in 1 process: " in out
    assert "sample on WeasyPrint, one process: " in out and " ms a page, " in out
