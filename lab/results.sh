#!/usr/bin/env bash
# Reproduces docs/results.md: Cohort and Apache Kafka 4.4 side by side, every
# protocol, benchmarks.md A (S1 one member joins, S3 partitions 100 -> 1000,
# S4 one member leaves), a killed member, a new group (S5) and B (rolling
# restart, dynamic and static members), the upgrade of a live group to the
# consumer protocol and back, and S1 with the Java client,
# librdkafka members on 100 partitions (10 members; 4 for the rolling restarts). Each command starts a fresh broker
# per run. Takes about two hours on a 2-core machine.
# Then: cohort lab report DIR prints each table and writes DIR/report.html.
#
#   lab/results.sh [OUT_DIR] [TRIALS]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-lab-results/published}
TRIALS=${2:-3}
cargo build --release -p cohort >/dev/null
# A copy, so a rebuild while this runs cannot pull the binary away.
BIN=$(mktemp -d)/cohort
cp target/release/cohort "$BIN"
# Every protocol, at Cohort's defaults (classic heartbeats held 2.5 s).
LAB="$BIN lab run --broker cohort,kafka --protocol eager,cooperative,consumer --partitions 100"
# The protocols each scenario names.
LAB_PLAIN="$BIN lab run --broker cohort,kafka --partitions 100"
set -x
$LAB scale-out --members 10 --trials "$TRIALS" --out "$OUT/s1"
# Cooperative S1 with members carried through the follow-up round.
$LAB_PLAIN scale-out --protocol cooperative --members 10 --trials "$TRIALS" --cohort-arg=--group-classic-follow-up-hold=true --out "$OUT/s1-follow-up"
$LAB scale-in --members 10 --trials "$TRIALS" --out "$OUT/s4"
# A member killed with SIGKILL; a whole new group of 10 (S5), and the classic
# protocols again with the quiet end of the first rebalance.
$LAB crash --members 10 --trials "$TRIALS" --out "$OUT/crash"
$LAB new-group --members 10 --trials "$TRIALS" --out "$OUT/s5"
$BIN lab run new-group --broker cohort --protocol eager,cooperative --partitions 100 --members 10 --trials "$TRIALS" --cohort-arg=--group-initial-rebalance-quiet-ms=300 --out "$OUT/s5-quiet"
# Classic clients learn of new partitions from their metadata refresh (five
# minutes by default); five seconds here, for every protocol alike. The probe
# writes every 100 ms: 1000 partitions every 10 ms is more than this machine
# produces and consumes beside ten members.
$LAB partitions --members 10 --to-partitions 1000 --probe-interval-ms 100 --client-config topic.metadata.refresh.interval.ms=5000 --out "$OUT/s3"
# A classic group of 10 rolled onto the consumer protocol and back, one member
# at a time (librdkafka; then the Java client).
$LAB_PLAIN upgrade --protocol eager,cooperative --members 10 --trials 1 --out "$OUT/upgrade"
$LAB_PLAIN upgrade --protocol eager,cooperative --members 10 --trials 1 --client java --out "$OUT/upgrade-java"
# S1 with the Java client (one JVM per member).
$LAB_PLAIN scale-out --protocol eager,cooperative,consumer --members 10 --trials "$TRIALS" --client java --out "$OUT/s1-java"
# B: four members restarted one at a time (2 s down each).
$LAB rolling --members 4 --out "$OUT/b-dynamic"
$LAB rolling --members 4 --static --out "$OUT/b-static"
