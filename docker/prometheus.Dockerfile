# syntax=docker/dockerfile:1
# Prometheus from Debian 12's package: a stand-in for prom/prometheus where no image registry is
# reachable (docker-compose.local.yml; `shibuya dev images prometheus`). Same entry point and
# working folder as prom/prometheus, so the compose file's command and volumes hold.
#   docker build -f docker/prometheus.Dockerfile -t shibuya-prometheus:2.42.0 .

ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends prometheus \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /prometheus && chown prometheus:prometheus /prometheus
WORKDIR /prometheus
USER prometheus
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
