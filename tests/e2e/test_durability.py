"""Nothing acknowledged is lost: kill -9 during acks=-1 produce, and clean
restarts, with a real client on both sides."""

import os
import threading
import time
from collections import defaultdict

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic


def create(bootstrap, name, partitions, config=None):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1, config=config or {})])[name].result(timeout=30)


def consume_all(bootstrap, topic, partitions, expected_total, timeout=60):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out = defaultdict(list)
    deadline = time.time() + timeout
    while sum(len(v) for v in out.values()) < expected_total and time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            raise KafkaException(m.error())
        out[m.partition()].append((m.offset(), m.key(), m.value()))
    c.close()
    return out


def test_kill_minus_9_during_acks_all_produce_loses_nothing_acknowledged(broker):
    create(broker.bootstrap, "crash", 3)
    acked = defaultdict(dict)
    lock = threading.Lock()
    stop = threading.Event()

    def on_delivery(err, msg):
        if err is None:
            with lock:
                acked[msg.partition()][msg.offset()] = (msg.key(), msg.value())

    producer = Producer({
        "bootstrap.servers": broker.bootstrap, "acks": "all", "enable.idempotence": True,
        "linger.ms": 2, "message.timeout.ms": 5000, "reconnect.backoff.max.ms": 200,
    })

    def produce():
        i = 0
        while not stop.is_set():
            try:
                producer.produce("crash", key=f"k{i}".encode(), value=os.urandom(64) + str(i).encode(), on_delivery=on_delivery)
                i += 1
            except BufferError:
                pass
            producer.poll(0.001)

    t = threading.Thread(target=produce)
    t.start()
    # Kill only once a good number of records are acknowledged, while producing.
    deadline = time.time() + 30
    while time.time() < deadline:
        with lock:
            if sum(len(v) for v in acked.values()) > 3000:
                break
        time.sleep(0.05)
    broker.kill()
    time.sleep(0.5)
    stop.set()
    t.join(timeout=30)
    producer.purge()
    producer.flush(10)

    with lock:
        snapshot = {p: dict(v) for p, v in acked.items()}
    total = sum(len(v) for v in snapshot.values())
    assert total > 3000

    broker.start()
    # The restarted log may hold records whose acks never arrived (in flight at
    # the kill); every acked one must be there at its offset, byte for byte.
    ends = {}
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "unused"})
    for p in range(3):
        low, high = c.get_watermark_offsets(TopicPartition("crash", p), timeout=10)
        ends[p] = high
    c.close()
    got = consume_all(broker.bootstrap, "crash", 3, sum(ends.values()))
    for p, recs in snapshot.items():
        offsets = [o for o, _, _ in got[p]]
        assert offsets == list(range(len(offsets))), f"gap in partition {p}"
        stored = {o: (k, v) for o, k, v in got[p]}
        for offset, kv in recs.items():
            assert stored.get(offset) == kv, f"acked record {p}@{offset} lost or changed"


def test_clean_restart_keeps_topics_configs_and_data(broker):
    create(broker.bootstrap, "keep", 2, {"retention.ms": "86400000", "max.message.bytes": "2000000"})
    p = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True})
    for i in range(500):
        p.produce("keep", key=str(i).encode(), value=f"v{i}".encode(), partition=i % 2)
    assert p.flush(30) == 0
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    before = admin.list_topics(timeout=10).topics["keep"]
    before_id = str(before.topic_id) if hasattr(before, "topic_id") else None

    assert broker.stop() == 0, broker.log()
    broker.start()

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    after = admin.list_topics(timeout=10).topics["keep"]
    assert sorted(after.partitions) == [0, 1]
    if before_id is not None:
        assert str(after.topic_id) == before_id
    res = ConfigResource(ConfigResource.Type.TOPIC, "keep")
    configs = admin.describe_configs([res])[res].result(timeout=10)
    assert configs["retention.ms"].value == "86400000"
    assert configs["max.message.bytes"].value == "2000000"
    got = consume_all(broker.bootstrap, "keep", 2, 500)
    assert [len(got[0]), len(got[1])] == [250, 250]
    assert [v for _, _, v in got[0]] == [f"v{i}".encode() for i in range(0, 500, 2)]
    # Producing after the restart continues the offsets.
    p = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True})
    offsets = []
    p.produce("keep", value=b"after", partition=0, on_delivery=lambda e, m: offsets.append(m.offset()))
    assert p.flush(30) == 0
    assert offsets == [250]


def test_every_fsync_policy_keeps_data_across_a_clean_restart(broker_factory):
    for policy in ["interval:20", "never"]:
        b = broker_factory(["--fsync", policy]).start()
        create(b.bootstrap, "t", 1)
        p = Producer({"bootstrap.servers": b.bootstrap, "acks": "all"})
        for i in range(200):
            p.produce("t", value=f"{policy}-{i}".encode())
        assert p.flush(30) == 0
        assert b.stop() == 0
        b.start()
        got = consume_all(b.bootstrap, "t", 1, 200)
        assert [v for _, _, v in got[0]] == [f"{policy}-{i}".encode() for i in range(200)]
        b.kill()
