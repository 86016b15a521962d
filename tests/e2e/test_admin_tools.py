"""DescribeProducers, DescribeLogDirs and DeleteRecords through kafka-python's
admin client (a second client library beside confluent-kafka's).

Set KAFKA_BOOTSTRAP=host:port to run them against another broker (an Apache
Kafka 4.4, for instance) and compare."""

import os
import time

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka.structs import TopicPartition


def test_producers_log_dirs_and_delete_records(broker):
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP") or broker.bootstrap
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    topic = f"tools-{time.time_ns()}"
    admin.create_topics([NewTopic(topic, 2, 1)])
    time.sleep(0.5)
    p = KafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    for _ in range(3):
        p.send(topic, b"x" * 100, partition=0)
    p.flush()
    p.close()

    states = admin.describe_producers([TopicPartition(topic, 0), TopicPartition(topic, 1)])
    (active,) = states[TopicPartition(topic, 0)].active_producers
    assert (active.producer_epoch, active.last_sequence) == (0, 2)
    assert active.last_timestamp > time.time() * 1000 - 60_000
    assert (active.coordinator_epoch, active.current_transaction_start_offset) == (-1, -1)
    assert states[TopicPartition(topic, 1)].active_producers == []

    (broker_dirs,) = admin.describe_log_dirs()
    (log_dir,) = broker_dirs["log_dirs"]
    assert log_dir["error_code"] == 0
    sizes = {(t["name"], p["partition_index"]): p["partition_size"]
             for t in log_dir["topics"] for p in t["partitions"]}
    assert sizes[(topic, 0)] > 300 and sizes[(topic, 1)] == 0

    deleted = admin.delete_records({TopicPartition(topic, 0): 2})
    assert deleted[TopicPartition(topic, 0)]["low_watermark"] == 2
    admin.close()
