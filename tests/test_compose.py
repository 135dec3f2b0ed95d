"""docker-compose.yml describes the production topology: every Airflow service, Celery, separate databases."""

from __future__ import annotations

from pathlib import Path

import yaml

from rematch_pipeline import access
from rematch_pipeline.clock import SystemClock
from rematch_pipeline.config import Settings

REPO = Path(__file__).resolve().parent.parent
SERVICES = {"postgres", "redis", "airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
            "airflow-triggerer", "airflow-worker"}


def _compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_compose_has_every_service_of_the_celery_topology() -> None:
    assert set(_compose()["services"]) == SERVICES


def test_airflow_services_share_executor_api_url_and_project_database() -> None:
    for name, svc in _compose()["services"].items():
        if not name.startswith("airflow-"):
            continue
        env = svc["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].startswith("http://airflow-apiserver:8080/"), name
        # The project database and Airflow's metadata database are separate databases on one server.
        assert env["REMATCH_DATABASE_URL"].endswith("/${REMATCH_DB}"), name
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("/${AIRFLOW_DB}"), name
        assert svc["env_file"] == ".env", name


def test_secrets_come_from_an_uncommitted_env_file() -> None:
    text = (REPO / "docker-compose.yml").read_text()
    assert "change-me" not in text
    assert ".env" in (REPO / ".gitignore").read_text().split()
    example = (REPO / ".env.example").read_text()
    for key in ("POSTGRES_PASSWORD", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY", "REMATCH_DB",
                "AIRFLOW_DB", *(a.password_var for a in access.ACCOUNTS)):
        assert f"{key}=" in example


def test_long_running_services_have_health_checks() -> None:
    for name, svc in _compose()["services"].items():
        if name != "airflow-init":
            assert "healthcheck" in svc, name


def test_async_metadata_connection_uses_the_installed_psycopg_driver() -> None:
    # Left unset, Airflow derives an asyncpg URL, and asyncpg is not in the lock: every service would crash at start.
    for name, svc in _compose()["services"].items():
        if name.startswith("airflow-"):
            env = svc["environment"]
            assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"].startswith("postgresql+psycopg_async://"), name
            assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"].endswith("/${AIRFLOW_DB}"), name


def test_every_directory_a_task_writes_is_a_volume_all_workers_share() -> None:
    # A task may run on any worker, and the next task on another: what one writes, all must see.
    home = Path("/opt/rematch")
    s = Settings(home=home, database_url="", clock=SystemClock())
    shared = {s.inbox, s.archive, s.outbox, s.exports, s.data_docs, s.gx_root, Path("/opt/airflow/logs")}
    for name, svc in _compose()["services"].items():
        if name.startswith("airflow-"):
            mounted = {Path(v.split(":")[1]) for v in svc["volumes"]}
            assert shared <= mounted, (name, shared - mounted)


def test_health_check_tools_are_installed_in_the_image() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    for name, svc in _compose()["services"].items():
        test = " ".join(svc.get("healthcheck", {}).get("test", []))
        if name.startswith("airflow-") and "curl" in test:
            assert " curl" in dockerfile.split("apt-get install", 1)[1].split("&& rm", 1)[0], name


def test_every_airflow_service_logs_in_with_the_fab_auth_manager_and_init_applies_the_roles() -> None:
    services = _compose()["services"]
    for name, svc in services.items():
        if name.startswith("airflow-"):
            assert svc["environment"]["AIRFLOW__CORE__AUTH_MANAGER"] == access.AUTH_MANAGER, name
    assert "SIMPLE_AUTH_MANAGER" not in (REPO / "docker-compose.yml").read_text()
    # Containers keep no generated password file: init must refuse a login without its password in .env.
    assert "rematch access sync --require-passwords" in services["airflow-init"]["command"][1]
