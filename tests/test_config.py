"""One configuration: every setting is read from the environment once, by `config.load_settings`, and passed on."""

from __future__ import annotations

from dataclasses import MISSING, asdict, fields, replace
from pathlib import Path

import pytest

from rematch_pipeline.clock import ManualClock
from rematch_pipeline.config import (
    DEFAULT_COORDINATION_CONTACT,
    DEFAULT_EXPECTATIONS_DIR,
    DEFAULT_POLICY_FILE,
    DEFAULT_PSEUDONYM_SALT,
    Settings,
    exported_policy,
    load_policy,
    load_settings,
    policy_from_dict,
    shipped_policy,
)
from rematch_pipeline.domain import Policy
from rematch_pipeline.ingest.safety import Limits
from tests.conftest import TEST_NOW
from tests.source_names import names_used

REPO = Path(__file__).resolve().parent.parent
_ENVIRONMENT = {"os.environ", "os.environb", "os.getenv", "os.getenvb", "os.putenv", "os.unsetenv"}


def _environment_reads(path: Path) -> list[str]:
    return sorted({f"{path.relative_to(REPO)}:{node.lineno} {name}" for node, name in names_used(path)
                   if name in _ENVIRONMENT or any(name.startswith(f"{e}.") for e in _ENVIRONMENT)})


def test_only_the_config_module_reads_the_environment() -> None:
    files = sorted((REPO / "rematch_pipeline").rglob("*.py")) + sorted((REPO / "dags").glob("*.py"))
    config = REPO / "rematch_pipeline" / "config.py"
    reads = [r for f in files if f != config for r in _environment_reads(f)]
    assert reads == [], "add the setting to config.Settings and pass settings in:\n" + "\n".join(reads)
    assert _environment_reads(config)  # the check sees a read where there is one


def test_every_setting_comes_from_its_environment_variable(tmp_path: Path) -> None:
    clock = ManualClock(TEST_NOW)
    s = load_settings({
        "REMATCH_HOME": str(tmp_path / "home"), "REMATCH_DATABASE_URL": "postgresql://db/rematch",
        "REMATCH_COORDINATION_CONTACT": "  Team, team@rematch.example ", "REMATCH_INBOX_URL": "s3://bucket/inbox",
        "REMATCH_SMTP_CONN_ID": "mail", "REMATCH_MAX_FILE_MB": "0.5", "REMATCH_MAX_ZIP_RATIO": "50",
        "REMATCH_MAX_UNZIPPED_MB": "10", "REMATCH_MAX_ZIP_ENTRIES": "7", "REMATCH_MAX_INVALID_SHARE": "0.25",
        "REMATCH_SQLITE_BUSY_TIMEOUT_S": "2.5", "REMATCH_EXPECTATIONS_DIR": str(tmp_path / "suites"),
        "REMATCH_POLICY_FILE": str(tmp_path / "policy.toml"), "REMATCH_INGEST_SCHEDULE": "@hourly",
        "REMATCH_ROUND_SCHEDULE": "@daily", "REMATCH_PSEUDONYM_SALT": "s3cret-salt",
    }, clock=clock)
    assert (s.home, s.database_url, s.clock) == (tmp_path / "home", "postgresql://db/rematch", clock)
    assert s.coordination_contact == "Team, team@rematch.example"
    assert (s.inbox_url, s.smtp_conn_id) == ("s3://bucket/inbox", "mail")
    assert s.limits == Limits(max_file_bytes=2**19, max_zip_ratio=50.0, max_unzipped_bytes=10 * 2**20,
                              max_zip_entries=7)
    assert (s.max_invalid_share, s.sqlite_busy_timeout_s) == (0.25, 2.5)
    assert (s.expectations_dir, s.policy_file) == (tmp_path / "suites", tmp_path / "policy.toml")
    assert (s.ingest_schedule, s.round_schedule) == ("@hourly", "@daily")
    assert s.pseudonym_salt == "s3cret-salt" and "s3cret-salt" not in repr(s)


def test_an_empty_environment_gives_the_documented_defaults(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    s = load_settings({})
    assert s.home == tmp_path / "var" and s.database_url == f"sqlite:///{tmp_path / 'var' / 'rematch.sqlite'}"
    assert s.coordination_contact == DEFAULT_COORDINATION_CONTACT and s.inbox_url == "" and s.smtp_conn_id is None
    assert s.limits == Limits() and s.max_invalid_share == 0.5 and s.sqlite_busy_timeout_s == 30.0
    assert (s.expectations_dir, s.policy_file) == (DEFAULT_EXPECTATIONS_DIR, DEFAULT_POLICY_FILE)
    assert (s.ingest_schedule, s.round_schedule) == ("*/15 * * * *", "0 6 * * 1")
    assert s.pseudonym_salt == DEFAULT_PSEUDONYM_SALT
    # Airflow's own connection variable for the default SMTP connection switches delivery to mail.
    assert load_settings({"AIRFLOW_CONN_REMATCH_SMTP": "smtp://mail:25"}).smtp_conn_id == "rematch_smtp"


@pytest.mark.parametrize(("name", "value"), [
    ("REMATCH_MAX_INVALID_SHARE", "abc"), ("REMATCH_MAX_INVALID_SHARE", "1.5"), ("REMATCH_MAX_INVALID_SHARE", "nan"),
    ("REMATCH_SQLITE_BUSY_TIMEOUT_S", "-1"), ("REMATCH_MAX_FILE_MB", "0"), ("REMATCH_MAX_ZIP_RATIO", "inf x"),
    ("REMATCH_MAX_UNZIPPED_MB", "1,5"), ("REMATCH_MAX_ZIP_ENTRIES", "0"),
])
def test_a_setting_that_is_not_a_number_in_range_is_refused_by_name(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=f"^{name} must be a number of at least"):
        load_settings({name: value})


def test_a_bad_setting_stops_a_command_with_one_plain_line(capsys: pytest.CaptureFixture[str], monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from rematch_pipeline.cli import main

    monkeypatch.setenv("REMATCH_MAX_INVALID_SHARE", "half")
    assert main(["round", "status"]) == 2
    err = capsys.readouterr().err
    assert err == "error: REMATCH_MAX_INVALID_SHARE must be a number of at least 0 and at most 1, not 'half'\n"


def test_policy_toml_is_the_one_home_of_every_policy_default(tmp_path: Path) -> None:
    # The dataclass has no defaults to disagree with the file (mip_rel_gap once said 1e-4 there, 0.005 here).
    assert all(f.default is MISSING and f.default_factory is MISSING for f in fields(Policy))
    shipped = shipped_policy()
    assert load_policy(DEFAULT_POLICY_FILE) == shipped and shipped.solver.mip_rel_gap == 0.005
    # A team's file sets only what it changes; a round stored before a setting existed reads with the shipped value.
    own = tmp_path / "policy.toml"
    own.write_text("[offers]\noffer_response_days = 10\n", encoding="utf-8")
    assert load_policy(own) == replace(shipped, offer_response_days=10)
    stored = {k: v for k, v in asdict(shipped).items() if k != "balanced_fill_weight"}
    assert policy_from_dict(stored) == shipped


def test_the_pseudonym_salt_is_a_secret_of_the_deployment_never_part_of_a_policy(tmp_path: Path) -> None:
    # A round stores and exports its policy (round.json, the audit export): the salt must not travel with it.
    assert "pseudonym_salt" not in asdict(load_policy())
    stored_before = {**asdict(shipped_policy()), "pseudonym_salt": "rematch"}
    assert policy_from_dict(stored_before) == shipped_policy()  # a round stored with it still reads
    assert "pseudonym_salt" not in exported_policy(stored_before)  # and its exports leave the salt out
    own = tmp_path / "policy.toml"
    own.write_text('[offers]\npseudonym_salt = "ours"\n', encoding="utf-8")
    with pytest.raises(ValueError, match="REMATCH_PSEUDONYM_SALT"):
        load_policy(own)


def test_the_coordination_contact_kept_with_the_home_is_what_every_later_command_reads(tmp_path: Path) -> None:
    from rematch_pipeline.config import save_home_setting, setting_sources

    home = tmp_path / "home"
    env = {"REMATCH_HOME": str(home)}
    assert setting_sources(home, env) == {"coordination_contact": "default"}
    save_home_setting(home, "coordination_contact", 'Team "Nord", team@rematch.example')
    assert load_settings(env).coordination_contact == 'Team "Nord", team@rematch.example'
    assert setting_sources(home, env) == {"coordination_contact": "settings.toml"}
    # The environment variable wins over the file, as for every other setting.
    both = {**env, "REMATCH_COORDINATION_CONTACT": "Team Süd, +49 30 1234567"}
    assert load_settings(both).coordination_contact == "Team Süd, +49 30 1234567"
    assert setting_sources(home, both) == {"coordination_contact": "REMATCH_COORDINATION_CONTACT"}


@pytest.mark.parametrize(("content", "message"), [
    ("coordination_contact = ", "is not valid TOML"),
    ("pseudonym_salt = 'x'", "may only hold text values for coordination_contact, not pseudonym_salt"),
    ("coordination_contact = 7", "may only hold text values"),
])
def test_a_broken_home_settings_file_is_named_with_what_to_do(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "settings.toml").write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_settings({"REMATCH_HOME": str(tmp_path)})


def test_config_set_refuses_a_contact_households_could_not_reach(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rematch_pipeline.cli import main

    settings = Settings(home=tmp_path, database_url="sqlite://", clock=ManualClock(TEST_NOW))
    assert main(["config", "set", "coordination_contact", "Re:Match Koordinationsteam"], settings=settings) == 2
    assert "not kept: the coordination contact gives no e-mail address or phone number" in capsys.readouterr().err
    assert not (tmp_path / "settings.toml").exists()
    assert main(["config", "set", "coordination_contact", "Team, team@rematch.example"], settings=settings) == 0
    assert load_settings({"REMATCH_HOME": str(tmp_path)}).coordination_contact == "Team, team@rematch.example"
    for bad in ("t@rematch.example\nx = 1", "Team \u202e moc.elpmaxe@a.de", "t@rematch.example " + "x" * 200, "@",
                "Team (since 2023-01-01)", "Postfach 10 20 30"):
        assert main(["config", "set", "coordination_contact", bad], settings=settings) == 2, bad
    assert "Team, team@rematch.example" in (tmp_path / "settings.toml").read_text(encoding="utf-8")


def test_what_a_good_match_is_and_how_hard_to_search_are_separate_settings_stored_flat() -> None:
    from rematch_pipeline.config import POLICY_SETTINGS, SOLVER_SETTINGS, policy_to_dict, policy_with
    from rematch_pipeline.domain import SolverSettings

    shipped = shipped_policy()
    assert isinstance(shipped.solver, SolverSettings)
    assert SOLVER_SETTINGS == {"time_limit_s", "mip_rel_gap", "threads", "random_seed", "candidates_per_household",
                               "pyomo_max_pairs"}
    assert not POLICY_SETTINGS & SOLVER_SETTINGS and "solver" not in POLICY_SETTINGS
    # Stored with every round (and exported) flat, as policy.toml names them: rounds stored before read the same.
    flat = policy_to_dict(shipped)
    assert set(flat) == POLICY_SETTINGS | SOLVER_SETTINGS
    assert policy_from_dict(flat) == shipped
    changed = policy_with(shipped, time_limit_s=12.0, balanced_fill_weight=0.5)
    assert (changed.solver.time_limit_s, changed.balanced_fill_weight) == (12.0, 0.5)
    assert changed.solver.random_seed == shipped.solver.random_seed
    with pytest.raises(ValueError, match="unknown setting"):
        policy_with(shipped, time_limit=12.0)


def test_a_home_settings_file_saved_with_a_byte_order_mark_reads_as_written(tmp_path: Path) -> None:
    (tmp_path / "settings.toml").write_bytes('\ufeffcoordination_contact = "Team, t@rematch.example"\r\n'.encode())
    assert load_settings({"REMATCH_HOME": str(tmp_path)}).coordination_contact == "Team, t@rematch.example"


def test_make_clean_removes_only_the_checkouts_own_var_never_an_exported_rematch_home(tmp_path: Path) -> None:
    # Rule: REMATCH_HOME may be a deployment's data; `make clean` (a developer's reset) must never remove it.
    import os
    import subprocess

    repo = Path(__file__).resolve().parent.parent
    deployment = tmp_path / "deployment"
    out = subprocess.run(["make", "-n", "clean"], cwd=repo, capture_output=True, text=True, check=True,
                         env={**os.environ, "REMATCH_HOME": str(deployment)}).stdout
    removals = [line for line in out.splitlines() if line.startswith("rm ")]
    assert removals == [f"rm -rf {repo}/var"]
