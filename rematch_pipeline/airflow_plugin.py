"""The Airflow plugin (entry point `airflow.plugins`): the reports app under /rematch and its link in the UI."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from rematch_pipeline.config import load_settings
from rematch_pipeline.web import create_app


class RematchReports(AirflowPlugin):
    name = "rematch_reports"
    fastapi_apps = [{"app": create_app(load_settings()), "url_prefix": "/rematch", "name": "Re:Match reports"}]
    # Relative, so it follows the API server's base URL; shown framed in the UI, behind the same login.
    external_views = [{"name": "Re:Match reports", "href": "rematch/", "url_route": "rematch", "destination": "nav",
                       "category": "browse"}]
