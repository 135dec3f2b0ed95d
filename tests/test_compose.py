"""docker-compose.yml describes the production topology: every Airflow service, Celery, separate databases."""

from __future__ import annotations

from pathlib import Path

import yaml

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
    for key in ("POSTGRES_PASSWORD", "AIRFLOW__API_AUTH__JWT_SECRET", "REMATCH_DB", "AIRFLOW_DB"):
        assert f"{key}=" in example


def test_long_running_services_have_health_checks() -> None:
    for name, svc in _compose()["services"].items():
        if name != "airflow-init":
            assert "healthcheck" in svc, name
