# syntax=docker/dockerfile:1
# The controller image: the control API (with its ClickHouse sink) and the stream worker.
#   docker build -f docker/controller.Dockerfile -t shibuya-controller:0.1.0 .
#   API:    shibuya api serve       (the default command)
#   worker: shibuya worker run

ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY streams ./streams
COPY control ./control
COPY engine_sidecar ./engine_sidecar
COPY shibuya ./shibuya
# The API's and the worker's dependencies at the versions the tests ran with; not the embedded
# ClickHouse engine (chdb, 0.5 GB): in a cluster the API talks to a ClickHouse server.
# tests/integration/test_deploy_files.py keeps this list complete.
ARG CONTROLLER_DEPS="aiokafka==0.14.0 alembic==1.20.1 clickhouse-connect==1.12.0 \
    cramjam==2.14.0 defusedxml==0.7.1 fastapi==0.165.0 faust-streaming==0.15.3 httpx==0.28.1 \
    kubernetes==37.0.2 msgspec==0.22.0 numpy==2.4.6 prometheus-client==0.26.0 \
    psycopg[binary]==3.3.9 pyarrow==26.0.1 pydantic==2.14.4 pydantic-settings==2.15.0 \
    python-multipart==0.0.34 pyyaml==6.0.4 rich==15.0.0 sqlalchemy==2.1.9 starlette==1.10.0 \
    typer==0.29.2 uvicorn[standard]==0.54.0"
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir $CONTROLLER_DEPS \
    && /opt/venv/bin/pip install --no-cache-dir --no-deps .

FROM ${PYTHON_IMAGE}
RUN useradd --uid 10001 --create-home --shell /usr/sbin/nologin shibuya
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    SHIBUYA_API_HOST=0.0.0.0 \
    SHIBUYA_API_DATA_DIR=/data \
    SHIBUYA_WORKER_DATA_DIR=/data
WORKDIR /data
RUN chown 10001:10001 /data
USER 10001
EXPOSE 8080 9464
ENTRYPOINT ["shibuya"]
CMD ["api", "serve"]
