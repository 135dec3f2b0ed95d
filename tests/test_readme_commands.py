"""Every command in the README's shell blocks runs as written on a fresh REMATCH_HOME, and does what it says."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from rematch_pipeline.db import tables as t

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent
CI_RUNS = {"make test", "make test-all"}  # the test tiers themselves: `.ci/run` runs them


def readme_commands() -> list[str]:
    """The command lines of the README's ```bash blocks, in order, without their comments."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return [cmd for block in re.findall(r"```bash\n(.*?)```", text, re.DOTALL)
            for cmd in (line.split("#", 1)[0].strip() for line in block.splitlines()) if cmd]


def test_the_readme_starts_with_the_two_commands_of_a_fresh_machine() -> None:
    assert readme_commands()[:2] == ["make demo", "make test"]


def _counts(home: Path) -> dict[str, int]:
    engine = create_engine(f"sqlite:///{home / 'rematch.sqlite'}")
    try:
        with engine.connect() as conn:
            return {table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                    for table in (t.raw_files, t.rounds, t.match_offers, t.packets, t.letters, t.deliveries)}
    finally:
        engine.dispose()


def test_every_readme_command_runs_as_written_on_a_fresh_home(tmp_path: Path) -> None:
    home = tmp_path / "var"
    # Nothing of this machine's or the test run's configuration leaks in: the Makefile's defaults apply.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REMATCH_", "AIRFLOW"))}
    env["REMATCH_HOME"] = str(home)
    commands = [c for c in readme_commands() if c not in CI_RUNS]
    assert "make demo" in commands and any(c.startswith("make dag ") for c in commands)
    after: dict[str, dict[str, int]] = {}
    for cmd in commands:
        proc = subprocess.run(cmd, shell=True, cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)
        assert proc.returncode == 0, f"`{cmd}` exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        if (home / "rematch.sqlite").exists():
            after[cmd] = _counts(home)
    demo = after["make demo"]
    assert demo["rounds"] == 1 and demo["match_offers"] > 0 and demo["packets"] > 0 and demo["letters"] > 0
    assert demo["deliveries"] == demo["packets"] + demo["letters"]
    assert (home / "settings.toml").is_file()  # the demo's coordination contact, kept for the DAG runs
    assert (home / "airflow" / "airflow.db").is_file()
    # The DAGs run on the demo's home find nothing new: no file ingested twice, today's round not solved again, no
    # packet or letter issued again (their content for their readers did not change), nothing delivered twice.
    assert after[commands[-1]] == demo
