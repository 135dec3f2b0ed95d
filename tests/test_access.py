"""Login with roles on the embedded default: the FAB auth manager, the project's roles, the REST API in-process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rematch_pipeline import access

# The login tests migrate an Airflow database and start the API app: 18 to 30 s here, hence the slow tier.
login = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PACKET = "outbox/09162000/R-2026-11-23/packet_09162000_R-2026-11-23.pdf"

# Runs in a child process: Airflow reads its configuration once per process, and this one may hold another's.
PROBE = """
import json, os
from pathlib import Path
from fastapi.testclient import TestClient
from airflow.api_fastapi.app import create_app
from rematch_pipeline import access

access.sync(dict(os.environ), say=lambda line: None)
generated = access.password_dir(Path(os.environ["AIRFLOW_HOME"])) / "admin"
admin_password = generated.read_text().strip()
client = TestClient(create_app(apps="core"))

def login(user, password):
    r = client.post("/auth/token", json={"username": user, "password": password})
    return {"Authorization": "Bearer " + r.json()["access_token"]} if r.status_code in (200, 201) else None

auditor = login("auditor", "auditor-pw")
team = login("team", "team-pw")
trigger = {"logical_date": None}
report, packet = "/rematch/home/exports/R-2026-11-23/round_report.html", os.environ["PROBE_PACKET"]
print(json.dumps({
    "anonymous_report": client.get(report).status_code,
    "auditor_report": client.get(report, headers=auditor).status_code,
    "auditor_data_docs": client.get("/rematch/home/data_docs/index.html", headers=auditor).status_code,
    "auditor_packet": client.get(packet, headers=auditor).status_code,
    "team_packet": client.get(packet, headers=team).status_code,
    "team_traversal": client.get("/rematch/home/data_docs/%2e%2e/rematch.sqlite", headers=team).status_code,
    "auditor_cookie_report": client.get(report, cookies={"_token": auditor["Authorization"][7:]}).status_code,
    "plugin_views": [v["name"] for v in client.get("/api/v2/plugins", headers=team).json()["plugins"][0]
                     .get("external_views", []) if v],
    "anonymous_list": client.get("/api/v2/dags").status_code,
    "anonymous_trigger": client.post("/api/v2/dags/rematch_round/dagRuns", json=trigger).status_code,
    "auditor_list": client.get("/api/v2/dags", headers=auditor).status_code,
    "auditor_trigger": client.post("/api/v2/dags/rematch_round/dagRuns", headers=auditor, json=trigger).status_code,
    "team_trigger": client.post("/api/v2/dags/rematch_round/dagRuns", headers=team, json=trigger).status_code,
    "admin_generated_login": login("admin", admin_password) is not None,
    "password_mode": oct(generated.stat().st_mode & 0o777),
}))
"""


@pytest.fixture(scope="module")
def answers(tmp_path_factory: pytest.TempPathFactory) -> dict:
    home = tmp_path_factory.mktemp("airflow-login")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "REMATCH"))}
    env.update(AIRFLOW_HOME=str(home / "airflow"), REMATCH_HOME=str(home / "rematch"),
               AIRFLOW__CORE__AUTH_MANAGER=access.AUTH_MANAGER, AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "dags"),
               AIRFLOW__CORE__LOAD_EXAMPLES="False", PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
               AIRFLOW_AUDITOR_USERNAME="auditor", AIRFLOW_AUDITOR_PASSWORD="auditor-pw",
               AIRFLOW_DATA_TEAM_USERNAME="team", AIRFLOW_DATA_TEAM_PASSWORD="team-pw",
               PROBE_PACKET=f"/rematch/home/{PACKET}")
    for rel in ("exports/R-2026-11-23/round_report.html", "data_docs/index.html", PACKET):
        (home / "rematch" / rel).parent.mkdir(parents=True, exist_ok=True)
        (home / "rematch" / rel).write_text("<p>made up</p>")
    subprocess.run([str(BIN / "rematch"), "db", "upgrade"], env=env, check=True, capture_output=True, timeout=300)
    for step in (["airflow", "db", "migrate"], ["airflow", "dags", "reserialize"]):
        subprocess.run([str(BIN / step[0]), *step[1:]], env=env, check=True, capture_output=True, timeout=300)
    probe = subprocess.run([sys.executable, "-c", PROBE], env=env, check=True, capture_output=True, text=True,
                           timeout=300)
    return json.loads(probe.stdout.strip().splitlines()[-1])


@login
def test_rest_api_requires_authentication(answers: dict) -> None:
    assert answers["anonymous_list"] == 401
    assert answers["anonymous_trigger"] == 401


@login
def test_auditor_lists_the_dags(answers: dict) -> None:
    assert answers["auditor_list"] == 200


@login
def test_auditor_cannot_trigger_the_round(answers: dict) -> None:
    assert answers["auditor_trigger"] == 403


@login
def test_data_team_triggers_the_round(answers: dict) -> None:
    assert answers["team_trigger"] == 200


@login
def test_the_reports_app_refuses_an_anonymous_request(answers: dict) -> None:
    assert answers["anonymous_report"] == 401


@login
def test_an_auditor_opens_a_round_report_and_the_data_docs_in_airflow(answers: dict) -> None:
    assert (answers["auditor_report"], answers["auditor_data_docs"], answers["auditor_cookie_report"]) == (200, 200,
                                                                                                           200)


@login
def test_an_auditor_cannot_open_a_packet_in_airflow_but_the_data_team_can(answers: dict) -> None:
    assert (answers["auditor_packet"], answers["team_packet"]) == (403, 200)


@login
def test_the_reports_app_refuses_a_path_out_of_the_reports(answers: dict) -> None:
    assert answers["team_traversal"] == 404


@login
def test_the_reports_are_linked_in_airflows_navigation(answers: dict) -> None:
    assert answers["plugin_views"] == ["Re:Match reports"]


@login
def test_unset_admin_password_is_generated_into_an_owner_only_file(answers: dict) -> None:
    assert answers["admin_generated_login"] is True
    assert answers["password_mode"] == "0o600"


def test_auditor_role_only_reads() -> None:
    assert {action for action, _ in access.ROLES[access.AUDITOR]} == {access.READ}


def test_auditor_reads_nothing_the_data_team_cannot() -> None:
    assert access.ROLES[access.AUDITOR] <= access.ROLES[access.DATA_TEAM]


def test_containers_refuse_a_login_without_its_password() -> None:
    env = {"AIRFLOW_ADMIN_PASSWORD": "x", "AIRFLOW_AUDITOR_USERNAME": "auditor"}
    with pytest.raises(ValueError, match="AIRFLOW_AUDITOR_PASSWORD"):
        access.sync(env, require_passwords=True)


def test_a_generated_password_is_owner_only_even_where_an_earlier_file_was_not(tmp_path: Path) -> None:
    folder = tmp_path / "passwords"
    folder.mkdir(mode=0o755)
    (folder / "admin").write_text("old\n")
    os.chmod(folder, 0o755)
    os.chmod(folder / "admin", 0o644)  # left by an earlier init, before the Airflow database was recreated
    where = access._write_password(folder, "admin", "new-secret", "AIRFLOW_ADMIN_USERNAME")
    assert where.read_text() == "new-secret\n"
    assert (folder.stat().st_mode & 0o777, where.stat().st_mode & 0o777) == (0o700, 0o600)
    for name in ("../admin", ".hidden", "a/b"):
        with pytest.raises(ValueError, match="AIRFLOW_ADMIN_USERNAME must be a plain user name"):
            access._write_password(folder, name, "x", "AIRFLOW_ADMIN_USERNAME")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["passwords"]  # nothing written outside the folder
