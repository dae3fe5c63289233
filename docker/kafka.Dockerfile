# syntax=docker/dockerfile:1
# Apache Kafka 4.1.2 from Maven Central's jars on Debian's JRE: a stand-in for apache/kafka where
# no image registry is reachable (docker-compose.local.yml; `shibuya dev images kafka`). It reads
# apache/kafka's KAFKA_* variables (docker/kafka/run.sh); docker/kafka/pom.xml names the jars of
# shibuya/dev/kafka.py, which the tests' broker runs.
#   docker build -f docker/kafka.Dockerfile -t shibuya-kafka:4.1.2 .

ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE} AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jdk-headless maven \
    && rm -rf /var/lib/apt/lists/*
COPY docker/kafka/pom.xml /src/pom.xml
RUN --mount=type=cache,target=/root/.m2 \
    mvn -B -q -f /src/pom.xml dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory=/opt/kafka/libs

FROM ${BASE_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 1000 --create-home --shell /usr/sbin/nologin appuser \
    && mkdir -p /var/lib/kafka/data && chown -R 1000:1000 /var/lib/kafka
COPY --from=build /opt/kafka/libs /opt/kafka/libs
COPY docker/kafka/run.sh docker/kafka/ready.sh docker/kafka/log4j2.properties /opt/kafka/
USER 1000
EXPOSE 9092
ENTRYPOINT ["/opt/kafka/run.sh"]
