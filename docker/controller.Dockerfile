# syntax=docker/dockerfile:1
# The controller image: the control API (with its ClickHouse sink) and the stream worker.
#   docker build -f docker/controller.Dockerfile -t shibuya-controller:0.1.0 .
#   API:    shibuya api serve       (the default command)
#   worker: shibuya worker run
# --target embedded: the same with the embedded ClickHouse engine (chdb), for where no ClickHouse
# server runs (docker-compose.local.yml). `shibuya dev images` builds both with podman on Debian
# bases of this machine's (PYTHON_IMAGE, NODE_IMAGE; docs/containers.md).

ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm
ARG NODE_IMAGE=node:20.18.1-bookworm-slim

# The HTML report's chart library, at the version of web/package-lock.json.
FROM ${NODE_IMAGE} AS web
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
# The API's and the worker's dependencies at the versions the tests run with (constraints.txt),
# before the project's code, so that a change of code reuses this layer;
# not the embedded ClickHouse engine (chdb, 0.5 GB): in a container the API talks to a
# ClickHouse server. tests/integration/test_deploy_files.py keeps this list complete.
ARG CONTROLLER_DEPS="aiokafka alembic anyio clickhouse-connect cramjam cryptography defusedxml \
    fastapi faust-streaming httpx joserfc kubernetes msgspec numpy prometheus-client psycopg[binary] \
    pyarrow pydantic pydantic-settings python-multipart pyyaml rich sqlalchemy starlette typer \
    uvicorn[standard]"
COPY constraints.txt ./
RUN --mount=type=cache,target=/root/.cache/pip \
    python -m venv /opt/venv \
    && /opt/venv/bin/pip install -c constraints.txt $CONTROLLER_DEPS
COPY pyproject.toml README.md ./
COPY wire ./wire
COPY streams ./streams
COPY control ./control
COPY engine_sidecar ./engine_sidecar
COPY shibuya ./shibuya
COPY --from=web /web/node_modules/uplot/dist/uPlot.iife.min.js \
    /web/node_modules/uplot/dist/uPlot.min.css /web/node_modules/uplot/LICENSE \
    ./control/results/assets/
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps .

FROM ${PYTHON_IMAGE} AS server
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

# --- the same with the embedded ClickHouse engine, for where no ClickHouse server runs ----------
FROM server AS embedded
USER root
COPY constraints.txt /tmp/
RUN --mount=type=cache,target=/root/.cache/pip \
    /opt/venv/bin/pip install -c /tmp/constraints.txt chdb && rm /tmp/constraints.txt
USER 10001

# --- the default target -----------------------------------------------------------------------
FROM server AS controller
