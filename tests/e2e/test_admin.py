"""Topic administration and cluster description through real admin clients."""

import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic


def test_create_delete_and_grow_topics(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("grow", 1, 1)])["grow"].result(timeout=30)
    # Creating it again is TOPIC_ALREADY_EXISTS.
    with pytest.raises(Exception, match="already exists"):
        admin.create_topics([NewTopic("grow", 1, 1)])["grow"].result(timeout=30)
    # More replicas than brokers, bad names and unknown configs are refused.
    with pytest.raises(Exception, match="replication factor"):
        admin.create_topics([NewTopic("rf3", 1, 3)])["rf3"].result(timeout=30)
    with pytest.raises(Exception, match="illegal"):
        admin.create_topics([NewTopic("bad name!", 1, 1)])["bad name!"].result(timeout=30)
    with pytest.raises(Exception, match="Unknown topic config"):
        admin.create_topics([NewTopic("cfg", 1, 1, config={"no.such.config": "1"})])["cfg"].result(timeout=30)

    admin.create_partitions([NewPartitions("grow", 3)])["grow"].result(timeout=30)
    with pytest.raises(Exception, match="higher than the requested"):
        admin.create_partitions([NewPartitions("grow", 2)])["grow"].result(timeout=30)
    assert sorted(admin.list_topics(timeout=10).topics["grow"].partitions) == [0, 1, 2]

    # The new partition takes records.
    delivered = []
    p = Producer({"bootstrap.servers": broker.bootstrap})
    p.produce("grow", value=b"in-new-partition", partition=2, on_delivery=lambda e, m: delivered.append((e, m.offset())))
    assert p.flush(30) == 0 and delivered == [(None, 0)]

    admin.delete_topics(["grow"])["grow"].result(timeout=30)
    assert "grow" not in admin.list_topics(timeout=10).topics
    with pytest.raises(Exception):
        admin.delete_topics(["grow"])["grow"].result(timeout=30)
    # A topic recreated under the same name starts empty.
    admin.create_topics([NewTopic("grow", 1, 1)])["grow"].result(timeout=30)
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "unused"})
    assert c.get_watermark_offsets(TopicPartition("grow", 0), timeout=10) == (0, 0)
    c.close()


def test_metadata_auto_creates_with_one_partition(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    p = Producer({"bootstrap.servers": broker.bootstrap})
    p.produce("auto-made", value=b"x")
    assert p.flush(30) == 0
    assert sorted(admin.list_topics(timeout=10).topics["auto-made"].partitions) == [0]


def test_describe_cluster_and_configs(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    cluster = admin.describe_cluster().result(timeout=10)
    assert [n.id for n in cluster.nodes] == [0]
    assert cluster.controller.id == 0 and cluster.cluster_id
    admin.create_topics([NewTopic("conf", 1, 1, config={"retention.bytes": "12345"})])["conf"].result(timeout=30)
    t = ConfigResource(ConfigResource.Type.TOPIC, "conf")
    b = ConfigResource(ConfigResource.Type.BROKER, "0")
    got = admin.describe_configs([t, b])
    topic_configs = got[t].result(timeout=10)
    assert topic_configs["retention.bytes"].value == "12345"
    assert topic_configs["cleanup.policy"].value == "delete"
    broker_configs = got[b].result(timeout=10)
    assert broker_configs["num.partitions"].value == "1"
    assert broker_configs["cohort.fsync.policy"].value == "always"


def test_retention_by_size_drops_old_segments(broker_factory):
    # Small segments through the broker flag: a topic's segment.bytes may not
    # go below 1 MiB, as in Kafka.
    b = broker_factory(["--retention-check-interval-ms", "100", "--segment-bytes", "20000"]).start()
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    admin.create_topics([NewTopic("short", 1, 1, config={"retention.bytes": "40000"})])["short"].result(timeout=30)
    p = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 0, "batch.num.messages": 1})
    for i in range(400):
        p.produce("short", value=bytes(500))
        p.poll(0)
    assert p.flush(30) == 0
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "unused"})
    low = 0
    for _ in range(100):  # bounded wait for the retention pass
        low, high = c.get_watermark_offsets(TopicPartition("short", 0), timeout=10)
        if low > 0:
            break
        time.sleep(0.1)
    assert low > 0 and high == 400
    # What is left starts at the new log start and reads back.
    c.assign([TopicPartition("short", 0, low)])
    m = None
    for _ in range(50):
        m = c.poll(0.2)
        if m is not None:
            break
    assert m is not None and m.error() is None and m.offset() == low
    c.close()
