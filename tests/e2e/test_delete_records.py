"""DeleteRecords with a real admin client: the log start offset moves, nothing
before it is served again, the move survives a restart, and the segments wholly
before it are removed.

Set KAFKA_BOOTSTRAP=host:port to run the broker-neutral test against another
broker (an Apache Kafka 4.4, for instance) and compare."""

import os
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def produce(bootstrap, topic, n):
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "batch.num.messages": 1})
    for i in range(n):
        p.produce(topic, value=b"r%d" % i, partition=0)
        p.poll(0)
    assert p.flush(30) == 0


def delete_before(admin, topic, offset):
    tp = TopicPartition(topic, 0, offset)
    return admin.delete_records([tp])[tp].result(timeout=10)


def first_offset_read(bootstrap, topic):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{time.time_ns()}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])  # below the start: reset to earliest
    try:
        for _ in range(50):
            m = c.poll(0.2)
            if m is not None and m.error() is None:
                return m.offset()
        return None
    finally:
        c.close()


def test_delete_records_moves_the_start_as_kafka_does(broker):
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP") or broker.bootstrap
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = f"dr-{time.time_ns()}"
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=30)
    time.sleep(0.3)
    produce(bootstrap, topic, 20)

    assert delete_before(admin, topic, 5).low_watermark == 5
    # Never back.
    assert delete_before(admin, topic, 3).low_watermark == 5
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused"})
    assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (5, 20)
    c.close()
    assert first_offset_read(bootstrap, topic) == 5
    # Past the high watermark: OFFSET_OUT_OF_RANGE.
    with pytest.raises(Exception) as e:
        delete_before(admin, topic, 21)
    assert e.value.args[0].code() == 1
    # -1 (OFFSET_END): up to the high watermark.
    assert delete_before(admin, topic, -1).low_watermark == 20


def test_the_start_survives_a_restart_and_old_segments_go(broker_factory):
    b = broker_factory(["--segment-bytes", "1024", "--retention-check-interval-ms", "100"]).start()
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    admin.create_topics([NewTopic("dr", 1, 1)])["dr"].result(timeout=30)
    produce(b.bootstrap, "dr", 200)
    (part_dir,) = list((b.data_dir / "partitions").iterdir())  # the one partition
    segments_before = len([f for f in part_dir.iterdir() if f.suffix == ".log"])
    assert segments_before > 5

    assert delete_before(admin, "dr", 150).low_watermark == 150
    deadline = time.time() + 10
    while time.time() < deadline:  # bounded wait for the retention pass
        segments = [f for f in part_dir.iterdir() if f.suffix == ".log"]
        if len(segments) < segments_before // 2:
            break
        time.sleep(0.1)
    assert len(segments) < segments_before // 2

    b.kill()  # not even a clean stop
    b.start()
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "unused"})
    assert c.get_watermark_offsets(TopicPartition("dr", 0), timeout=10) == (150, 200)
    c.close()
    assert first_offset_read(b.bootstrap, "dr") == 150
