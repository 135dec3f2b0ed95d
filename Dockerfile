# Re:Match image: Airflow 3 with the project package installed from the same lock file as CI.
FROM python:3.11-slim-bookworm

ENV PIP_NO_CACHE_DIR=1 \
    AIRFLOW_HOME=/opt/airflow \
    REMATCH_HOME=/opt/rematch \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/rematch-src/dags \
    AIRFLOW__CORE__LOAD_EXAMPLES=False

# WeasyPrint renders the PDF packets with Pango and HarfBuzz; curl runs the compose health checks.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core \
    curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 50000 airflow

WORKDIR /opt/rematch-src
COPY constraints.txt pyproject.toml README.md ./
COPY rematch_pipeline ./rematch_pipeline
COPY dags ./dags
COPY expectations ./expectations
COPY sql ./sql
# The volume mount points exist owned by airflow, so fresh named volumes start out writable for the services.
RUN pip install -c constraints.txt "apache-airflow[celery]==3.3.2" . \
 && mkdir -p "$AIRFLOW_HOME/logs" "$AIRFLOW_HOME/config" "$REMATCH_HOME/inbox" "$REMATCH_HOME/archive" \
    "$REMATCH_HOME/outbox" "$REMATCH_HOME/exports" "$REMATCH_HOME/data_docs" "$REMATCH_HOME/gx" \
 && chown -R airflow "$AIRFLOW_HOME" "$REMATCH_HOME"
ENV REMATCH_EXPECTATIONS_DIR=/opt/rematch-src/expectations

USER airflow
ENTRYPOINT ["airflow"]
