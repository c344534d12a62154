#!/bin/sh
# Creates roadwatch's input and output topics on the compose stack's broker, once, before
# roadwatch and the simulator start (the `kafka-init` service of docker-compose.yml).
# Topic names are config/default.toml's [kafka.topics]; tests/deployment.rs checks that
# every one of them is created here. Per-unit `dispatch.<unit_id>` topics are created by
# roadwatch on first use (kafka.dispatch_topic_partitions).
set -eu

BOOTSTRAP="${BOOTSTRAP:-kafka:9092}"
INPUT_PARTITIONS="${INPUT_PARTITIONS:-3}"
KAFKA_BIN="${KAFKA_BIN:-/opt/kafka/bin}"

create() {
  # $1 topic, $2 partitions
  "$KAFKA_BIN/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP" --create --if-not-exists \
    --topic "$1" --partitions "$2" --replication-factor 1
}

# Inputs (CONTRACT section 2), keyed by camera, plate, station or unit id.
for topic in camera-detections plate-reads weather-observations patrol-positions dispatch-acks operator-actions; do
  create "$topic" "$INPUT_PARTITIONS"
done

# Outputs (CONTRACT sections 3 and 6).
create alerts "$INPUT_PARTITIONS"
create roadwatch-dlq 1

"$KAFKA_BIN/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP" --list
