# syntax=docker/dockerfile:1
# The engine images, one per engine type, each with the sidecar that runs it (docs/engines.md):
#   JMeter 5.6.3 (the last target, the default):
#     docker build -f docker/engine.Dockerfile -t shibuya-engine:0.1.0 .
#   Locust 2.47.0:  --target locust  -t shibuya-engine-locust:0.1.0
#   Gatling 3.15.1: --target gatling -t shibuya-engine-gatling:0.1.0
# Build from the repository root. `shibuya dev images` builds all three with podman on a Debian
# base of this machine's (PYTHON_IMAGE; docs/containers.md).

ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm

# --- the project in a virtualenv, JMeter laid out the way the sidecar expects, Gatling with the
# sidecar's launcher compiled against it, Locust in an environment of its own -----------------
FROM ${PYTHON_IMAGE} AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jdk-headless maven \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Only what the sidecar and the `shibuya` command import (not the API's or the worker's
# dependencies), at the versions the tests run with (constraints.txt), before the project's code
# so that a change of code reuses this layer; tests/integration/test_deploy_files.py keeps the
# list complete, tests/integration/test_images.py runs it.
ARG SIDECAR_DEPS="aiokafka cramjam defusedxml httpx msgspec numpy prometheus-client pyarrow \
    pydantic pydantic-settings rich typer"
COPY constraints.txt ./
RUN --mount=type=cache,target=/root/.cache/pip \
    python -m venv /opt/venv \
    && /opt/venv/bin/pip install -c constraints.txt $SIDECAR_DEPS
COPY engine_sidecar/locust-requirements.txt ./
RUN --mount=type=cache,target=/root/.cache/pip \
    python -m venv /opt/locust \
    && /opt/locust/bin/pip install -r locust-requirements.txt
COPY pyproject.toml README.md ./
COPY wire ./wire
COPY streams ./streams
COPY control ./control
COPY engine_sidecar ./engine_sidecar
COPY shibuya ./shibuya
RUN --mount=type=cache,target=/root/.m2 \
    /opt/venv/bin/pip install --no-cache-dir --no-deps . \
    && SHIBUYA_CACHE_DIR=/opt/cache /opt/venv/bin/shibuya dev jmeter \
    && mv /opt/cache/jmeter-5.6.3-plugins-1 /opt/jmeter \
    && SHIBUYA_CACHE_DIR=/opt/cache /opt/venv/bin/shibuya dev gatling \
    && mv /opt/cache/gatling-3.15.1-launcher-3 /opt/gatling

# --- Locust engines: no Java ------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS locust
RUN useradd --uid 10001 --create-home --shell /usr/sbin/nologin engine
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/locust /opt/locust
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    SHIBUYA_SIDECAR_LOCUST__PYTHON=/opt/locust/bin/python \
    SHIBUYA_SIDECAR_WORK_DIR=/work \
    SHIBUYA_SIDECAR_HEALTH_HOST=0.0.0.0
WORKDIR /work
RUN chown 10001:10001 /work
USER 10001
EXPOSE 8089
ENTRYPOINT ["shibuya"]
CMD ["sidecar", "run"]

# --- Gatling engines: a JDK, for each compiles its plan's simulation --------------------------
FROM ${PYTHON_IMAGE} AS gatling
RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jdk-headless \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 10001 --create-home --shell /usr/sbin/nologin engine
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/gatling /opt/gatling
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    SHIBUYA_SIDECAR_GATLING__HOME=/opt/gatling \
    SHIBUYA_SIDECAR_WORK_DIR=/work \
    SHIBUYA_SIDECAR_HEALTH_HOST=0.0.0.0
WORKDIR /work
RUN chown 10001:10001 /work
USER 10001
EXPOSE 8089
ENTRYPOINT ["shibuya"]
CMD ["sidecar", "run"]

# --- JMeter engines (the default target): a JRE, the virtualenv, JMeter; no compilers ---------
FROM ${PYTHON_IMAGE} AS jmeter
RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 10001 --create-home --shell /usr/sbin/nologin engine
COPY --from=build /opt/venv /opt/venv
COPY --from=build --chown=10001:10001 /opt/jmeter /opt/jmeter
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    SHIBUYA_SIDECAR_JMETER__HOME=/opt/jmeter \
    SHIBUYA_SIDECAR_WORK_DIR=/work \
    SHIBUYA_SIDECAR_HEALTH_HOST=0.0.0.0
WORKDIR /work
RUN chown 10001:10001 /work
USER 10001
EXPOSE 8089
ENTRYPOINT ["shibuya"]
CMD ["sidecar", "run"]
