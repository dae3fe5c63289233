#!/bin/bash
# Apache Kafka as apache/kafka runs it: every KAFKA_* variable becomes a server property
# (KAFKA_NODE_ID=1 → node.id=1; "__" stands for "_" and "___" for "-"), the storage is formatted
# unless it was (CLUSTER_ID, else a random one), then the broker runs in the foreground.
set -euo pipefail
props=/var/lib/kafka/server.properties
: >"$props"
for var in $(compgen -e); do
  case $var in
    KAFKA_HEAP_OPTS | KAFKA_OPTS | KAFKA_LOG4J_OPTS | KAFKA_JVM_PERFORMANCE_OPTS) continue ;;
    KAFKA_*) ;;
    *) continue ;;
  esac
  key=${var#KAFKA_}
  key=${key,,}
  key=${key//___/-}
  key=${key//__/@}
  key=${key//_/.}
  printf '%s=%s\n' "${key//@/_}" "${!var}" >>"$props"
done
grep -q '^log\.dirs=' "$props" || echo "log.dirs=/var/lib/kafka/data" >>"$props"
log_dir=$(sed -n 's/^log\.dirs=\([^,]*\).*/\1/p' "$props")
classpath="/opt/kafka/libs/*"
log4j="-Dlog4j2.configurationFile=/opt/kafka/log4j2.properties"
if [ ! -e "$log_dir/meta.properties" ]; then
  cluster_id=${CLUSTER_ID:-$(java -cp "$classpath" "$log4j" kafka.tools.StorageTool random-uuid)}
  java -cp "$classpath" "$log4j" kafka.tools.StorageTool format "--cluster-id=$cluster_id" \
    -c "$props"
fi
# shellcheck disable=SC2086 # the options are words
exec java ${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m} -XX:+UseG1GC -Djava.awt.headless=true "$log4j" \
  ${KAFKA_OPTS:-} -cp "$classpath" kafka.Kafka "$props"
