#!/bin/bash
# Healthy once the broker accepts connections on its client port (KAFKA_LISTENERS' first).
port=${KAFKA_LISTENERS%%,*}
port=${port##*:}
exec 3<>"/dev/tcp/127.0.0.1/${port:-9092}"
