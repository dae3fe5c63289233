# syntax=docker/dockerfile:1
# The engine image: JMeter 5.6.3 (non-GUI, from Maven Central) and the sidecar that runs it.
# Build from the repository root: docker build -f docker/engine.Dockerfile -t shibuya-engine:0.1.0 .

ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm

# --- the project in a virtualenv, and JMeter laid out the way the sidecar expects -----------
FROM ${PYTHON_IMAGE} AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless maven \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY wire ./wire
COPY streams ./streams
COPY control ./control
COPY engine_sidecar ./engine_sidecar
COPY shibuya ./shibuya
# Only what the sidecar imports (not the API's or the worker's dependencies), at the versions
# the tests run with (constraints.txt); tests/integration/test_deploy_files.py keeps the list
# complete.
ARG SIDECAR_DEPS="aiokafka cramjam defusedxml msgspec numpy prometheus-client pyarrow pydantic \
    pydantic-settings rich typer"
COPY constraints.txt ./
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir -c constraints.txt $SIDECAR_DEPS \
    && /opt/venv/bin/pip install --no-cache-dir --no-deps . \
    && SHIBUYA_CACHE_DIR=/opt/cache /opt/venv/bin/shibuya dev jmeter \
    && mv /opt/cache/jmeter-5.6.3-plugins-1 /opt/jmeter

# --- what runs: a JRE, the virtualenv, JMeter; no compilers, no Maven ---------------------
FROM ${PYTHON_IMAGE}
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
