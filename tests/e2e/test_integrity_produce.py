"""Batches with a correct CRC and bad content are refused with the error code
Kafka gives (its LogValidator), are not stored, and do not stop a consumer of
the partition: it reads every good record around them.

Set KAFKA_BOOTSTRAP=host:port to run the same batches against another broker
(an Apache Kafka 4.x, for instance) and compare."""

import gzip
import os
import struct
import time

import pytest
from confluent_kafka import Consumer, TopicPartition

from kafka_wire import Conn, parse_produce_v8, produce_v8, raw_batch, record

PRODUCE, METADATA = 0, 3
NOW = int(time.time() * 1000)
UNKNOWN_SERVER_ERROR, CORRUPT_MESSAGE, INVALID_TIMESTAMP, INVALID_RECORD = -1, 2, 32, 87


def two_records():
    return record(0, b"a") + record(1, b"b")


# (name, batch, expected error code, a piece of the partition's error message or None)
BAD = [
    ("gzip flag on a payload that is not gzip", raw_batch(two_records(), 2, ts=NOW, attributes=1),
     UNKNOWN_SERVER_ERROR, None),
    ("zstd flag on a payload that is not zstd", raw_batch(two_records(), 2, ts=NOW, attributes=4),
     UNKNOWN_SERVER_ERROR, None),
    ("gzip payload cut short",
     raw_batch(gzip.compress(b"".join(record(i, b"x" * 20) for i in range(100)))[:-12], 100, ts=NOW,
               attributes=1), UNKNOWN_SERVER_ERROR, None),
    ("codec 7", raw_batch(two_records(), 2, ts=NOW, attributes=7), UNKNOWN_SERVER_ERROR, None),
    ("record count larger than the records", raw_batch(two_records(), 3, ts=NOW),
     INVALID_RECORD, "premature EOF"),
    ("record count smaller than the records", raw_batch(two_records(), 1, ts=NOW),
     INVALID_RECORD, "records still remaining"),
    ("lastOffsetDelta far past the records", raw_batch(record(0, b"a"), 1, last_delta=2**31 - 2, ts=NOW),
     INVALID_RECORD, "Inconsistent batch offset range"),
    ("records that do not decode", raw_batch(b"\x7f" * 30, 2, ts=NOW), INVALID_RECORD, None),
    ("a batch with no records", raw_batch(b"", 0, last_delta=0, ts=NOW),
     INVALID_RECORD, "Invalid reported count for record batch: 0"),
    ("a timestamp of 2^62", raw_batch(record(0, b"a"), 1, ts=2**62), INVALID_TIMESTAMP,
     "invalid timestamp"),
    ("a control batch", raw_batch(record(0, b"a"), 1, ts=NOW, attributes=0x20), INVALID_RECORD,
     "control records"),
    ("a non-zero base offset", raw_batch(record(0, b"a"), 1, ts=NOW, base_offset=9), INVALID_RECORD,
     "should be 0"),
    ("a length below the batch minimum",
     struct.pack(">qi", 0, 10) + b"\x00" * 30, CORRUPT_MESSAGE, None),
]


def bootstrap(broker):
    return os.environ.get("KAFKA_BOOTSTRAP") or broker.bootstrap


def create(conn, topic):
    conn.request(METADATA, 1, struct.pack(">i", 1) + struct.pack(">h", len(topic)) + topic.encode())
    conn.read_frame()
    time.sleep(0.5)


def produce(conn, topic, batch):
    conn.request(PRODUCE, 8, produce_v8(topic, 0, batch))
    [(_, _, err, base, errs, msg)] = parse_produce_v8(conn.read_frame())
    return err, base, errs, msg


def test_each_bad_batch_gets_kafkas_error_and_consumers_keep_going(broker):
    boot = bootstrap(broker)
    topic = f"hostile-{int(time.time())}"
    c = Conn(boot)
    create(c, topic)
    assert produce(c, topic, raw_batch(record(0, b"good-0"), 1, ts=NOW))[0] == 0
    for name, batch, code, fragment in BAD:
        err, base, errs, msg = produce(c, topic, batch)
        if code is None:
            assert err != 0, name
        else:
            assert err == code, f"{name}: {err} {msg}"
        assert base == -1, name
        if fragment is not None and not os.environ.get("KAFKA_BOOTSTRAP"):
            text = (msg or "") + " ".join(m or "" for _, m in errs)
            assert fragment in text, f"{name}: {msg} {errs}"
        print(f"{name}: error {err}, message {msg!r}, record errors {errs}")
    # The connection survived every refusal, and the partition still takes and
    # serves good records after them.
    err, base, _, _ = produce(c, topic, raw_batch(record(0, b"good-1") + record(1, b"good-2"), 2, ts=NOW))
    assert (err, base) == (0, 1)

    consumer = Consumer({"bootstrap.servers": boot, "group.id": f"g-{topic}", "enable.auto.commit": False,
                         "check.crcs": True})
    consumer.assign([TopicPartition(topic, 0, 0)])
    got = []
    deadline = time.time() + 20
    while len(got) < 3 and time.time() < deadline:
        m = consumer.poll(0.5)
        if m is not None:
            assert not m.error(), m.error()
            got.append((m.offset(), m.value()))
    consumer.close()
    assert got == [(0, b"good-0"), (1, b"good-1"), (2, b"good-2")]


def test_a_past_timestamp_is_accepted_by_default_and_refused_under_a_bound(broker_factory):
    old = raw_batch(record(0, b"old"), 1, ts=-5)
    # Kafka 4's message.timestamp.before.max.ms defaults to unbounded: -5 passes.
    default = broker_factory().start()
    c = Conn(default.bootstrap)
    create(c, "past")
    assert produce(c, "past", old)[0] == 0
    assert produce(c, "past", raw_batch(record(0, b"now"), 1, ts=NOW))[:2] == (0, 1)
    consumer = Consumer({"bootstrap.servers": default.bootstrap, "group.id": "past"})
    consumer.assign([TopicPartition("past", 0, 0)])
    got = []
    deadline = time.time() + 20
    while len(got) < 2 and time.time() < deadline:
        m = consumer.poll(0.5)
        if m is not None and not m.error():
            got.append((m.value(), m.timestamp()[1]))
    consumer.close()
    assert got == [(b"old", -5), (b"now", NOW)]
    bounded = broker_factory(["--message-timestamp-before-max-ms", "86400000"]).start()
    c = Conn(bounded.bootstrap)
    create(c, "past")
    err, base, errs, msg = produce(c, "past", old)
    assert (err, base) == (INVALID_TIMESTAMP, -1)
    assert errs and errs[0][0] == 0 and "Timestamp -5 of message with offset 0 is out of range" in errs[0][1]
