# The pipeline image used by docker-compose.yml (the embedded PostgreSQL is not used here:
# WAREHOUSE_URL points at the compose postgres service).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md gridcredit.yaml ./
COPY gridcredit ./gridcredit
COPY ingestion ./ingestion
COPY ml ./ml
COPY dbt_project ./dbt_project
RUN pip install --no-cache-dir -e . && useradd --create-home gridcredit && chown -R gridcredit /app
USER gridcredit
ENTRYPOINT []
