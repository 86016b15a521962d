"""Round trips with clients other people wrote: each creates a topic, produces
keyed messages with idempotence on, consumes every one back with manual
partition assignment, and checks ListOffsets."""

import json
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
N = 3000
PARTITIONS = 3


def expect_in_order(acked, consumed):
    """acked and consumed map partition -> [(offset, key, value)]."""
    assert sum(len(v) for v in acked.values()) == N
    for p, recs in acked.items():
        assert consumed[p] == sorted(recs), f"partition {p} differs"
        offsets = [o for o, _, _ in sorted(recs)]
        assert offsets == list(range(len(offsets))), f"partition {p} has gaps"


def test_confluent_kafka_round_trip(broker):
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("ck", PARTITIONS, 1)])["ck"].result(timeout=30)

    acked = defaultdict(list)
    first_ts = []

    def on_delivery(err, msg):
        assert err is None, err
        acked[msg.partition()].append((msg.offset(), msg.key(), msg.value()))
        first_ts.append(msg.timestamp()[1])

    producer = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 5})
    for i in range(N):
        producer.produce("ck", key=f"k{i}".encode(), value=f"value-{i}".encode(), on_delivery=on_delivery)
        producer.poll(0)
    assert producer.flush(60) == 0

    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "unused-manual", "enable.auto.commit": False})
    consumer.assign([TopicPartition("ck", p, 0) for p in range(PARTITIONS)])
    consumed = defaultdict(list)
    deadline = time.time() + 60
    while sum(len(v) for v in consumed.values()) < N and time.time() < deadline:
        m = consumer.poll(0.5)
        if m is None:
            continue
        assert m.error() is None, m.error()
        consumed[m.partition()].append((m.offset(), m.key(), m.value()))
    expect_in_order(acked, consumed)

    for p in range(PARTITIONS):
        low, high = consumer.get_watermark_offsets(TopicPartition("ck", p), timeout=10)
        assert (low, high) == (0, len(acked[p]))
    # By timestamp: the earliest produce time finds offset 0 in some partition;
    # a time in the future finds nothing (-1).
    found = consumer.offsets_for_times([TopicPartition("ck", p, min(first_ts)) for p in range(PARTITIONS)], timeout=10)
    assert all(tp.offset >= 0 for tp in found)
    assert 0 in [tp.offset for tp in found]
    future = consumer.offsets_for_times([TopicPartition("ck", 0, int(time.time() * 1000) + 3_600_000)], timeout=10)
    assert future[0].offset == -1
    consumer.close()


def test_kafka_python_round_trip(broker):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic("kp", PARTITIONS, 1)])
    admin.close()

    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=True, acks="all", linger_ms=5)
    futures = [producer.send("kp", key=f"k{i}".encode(), value=f"value-{i}".encode()) for i in range(N)]
    producer.flush(60)
    acked = defaultdict(list)
    for i, f in enumerate(futures):
        md = f.get(timeout=30)
        acked[md.partition].append((md.offset, f"k{i}".encode(), f"value-{i}".encode()))
    producer.close()

    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False, consumer_timeout_ms=10000)
    tps = [TopicPartition("kp", p) for p in range(PARTITIONS)]
    consumer.assign(tps)
    consumer.seek_to_beginning()
    consumed = defaultdict(list)
    for m in consumer:
        consumed[m.partition].append((m.offset, m.key, m.value))
        if sum(len(v) for v in consumed.values()) == N:
            break
    expect_in_order(acked, consumed)
    assert consumer.beginning_offsets(tps) == {tp: 0 for tp in tps}
    assert consumer.end_offsets(tps) == {tp: len(acked[tp.partition]) for tp in tps}
    consumer.close()


def java_classpath():
    cp_file = ROOT / "interop" / "java" / "target" / "classpath.txt"
    classes = ROOT / "interop" / "java" / "target" / "classes"
    if not cp_file.exists() or not classes.exists():
        pytest.fail("Java harness not built: run scripts/test (it builds interop/java with Maven)")
    return f"{classes}:{cp_file.read_text().strip()}"


def test_java_kafka_clients_round_trip(broker):
    out = subprocess.run(
        ["java", "-cp", java_classpath(), "cohort.interop.RoundTrip", broker.bootstrap, "java-rt", str(N), str(PARTITIONS)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["acked"] == N and result["consumed"] == N
    assert result["earliest"] == [0] * PARTITIONS
    assert sum(result["latest"]) == N
    assert result["by_timestamp_found"] is True
