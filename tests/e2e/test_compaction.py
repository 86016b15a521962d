"""Log compaction with real clients: the newest record of every key stays at
its offset, tombstones stay for delete.retention.ms and then go, offsets are
never renumbered, keyless records are refused, and kill -9 while the cleaner
runs loses nothing."""

import random
import signal
import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer
from kafka.structs import TopicPartition as KpTopicPartition

FAST_CLEANER = ["--segment-bytes", "4096", "--log-cleaner-backoff-ms", "200",
                "--retention-check-interval-ms", "200"]
COMPACT = {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "3000"}


def produce(bootstrap, topic, pairs):
    """pairs: [(key, value or None)]; returns {key: offset of its last write}."""
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 2, "enable.idempotence": True})
    last = {}

    def done(err, m):
        assert err is None, err
        last[m.key()] = max(last.get(m.key(), -1), m.offset())

    for k, v in pairs:
        p.produce(topic, key=k, value=v, partition=0, on_delivery=done)
        p.poll(0)
    assert p.flush(30) == 0
    return last


def read_all(bootstrap, topic):
    """Every (offset, key, value) from the start, with librdkafka."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"r-{time.time_ns()}", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest"})
    _, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    c.assign([TopicPartition(topic, 0, 0)])
    out = []
    deadline = time.time() + 30
    while time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            if out and out[-1][0] >= high - 1 or c.position([TopicPartition(topic, 0)])[0].offset >= high:
                break
            continue
        if m.error():
            raise KafkaException(m.error())
        out.append((m.offset(), m.key(), m.value()))
        if m.offset() >= high - 1:
            break
    c.close()
    return out, high


def wait_for(predicate, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.2)
    return predicate()


def test_the_newest_value_of_every_key_stays_at_its_offset(broker_factory):
    b = broker_factory(FAST_CLEANER).start()
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    admin.create_topics([NewTopic("state", 1, 1, config=COMPACT)])["state"].result(timeout=30)
    writes = [(b"k%d" % (i % 20), b"v%d" % i) for i in range(2000)]
    last = produce(b.bootstrap, "state", writes)
    # Roll the segment holding the last writes so they can be cleaned too.
    produce(b.bootstrap, "state", [(b"filler-%d" % i, b"x" * 200) for i in range(40)])

    def compacted():
        records, high = read_all(b.bootstrap, "state")
        return (records, high) if len(records) < 400 else None

    got = wait_for(compacted)
    assert got, "the cleaner did not run"
    records, high = got
    assert high == 2040  # nothing renumbered, the end did not move
    offsets = [o for o, _, _ in records]
    assert offsets == sorted(set(offsets))
    newest = {}
    for o, k, v in records:
        newest[k] = (o, v)
    for k, off in last.items():
        assert newest[k][0] == off, (k, newest[k], off)  # the newest write, at its own offset
        assert newest[k][1] == b"v%d" % off
    # kafka-python reads the same compacted log (gaps and empty batches).
    kc = KafkaConsumer(bootstrap_servers=b.bootstrap, enable_auto_commit=False, consumer_timeout_ms=5000)
    kc.assign([KpTopicPartition("state", 0)])
    kc.seek_to_beginning()
    seen = [(m.offset, m.key, m.value) for m in kc]
    kc.close()
    assert seen == records


def test_a_tombstone_stays_for_delete_retention_then_goes(broker_factory):
    b = broker_factory(FAST_CLEANER).start()
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    admin.create_topics([NewTopic("ts", 1, 1, config=COMPACT)])["ts"].result(timeout=30)
    produce(b.bootstrap, "ts", [(b"gone", b"a"), (b"kept", b"b")])
    tomb = produce(b.bootstrap, "ts", [(b"gone", None)])[b"gone"]
    produce(b.bootstrap, "ts", [(b"filler-%d" % i, b"x" * 300) for i in range(40)])

    def only_tombstone():
        records, _ = read_all(b.bootstrap, "ts")
        gone = [r for r in records if r[1] == b"gone"]
        return records if gone == [(tomb, b"gone", None)] else None

    records = wait_for(only_tombstone, 10)
    assert records, "the old value of the deleted key was not cleaned away"
    assert (1, b"kept", b"b") in records

    def tombstone_removed():
        records, _ = read_all(b.bootstrap, "ts")
        return records if not any(r[1] == b"gone" for r in records) else None

    records = wait_for(tombstone_removed, 20)
    assert records, "the tombstone outlived delete.retention.ms"
    assert (1, b"kept", b"b") in records


def test_keyless_records_are_refused_as_kafka_refuses_them(broker_factory):
    b = broker_factory().start()
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    admin.create_topics([NewTopic("keyed", 1, 1, config={"cleanup.policy": "compact"})])["keyed"].result(timeout=30)
    errors = []
    p = Producer({"bootstrap.servers": b.bootstrap, "retries": 0})
    p.produce("keyed", value=b"no key", on_delivery=lambda e, m: errors.append(e))
    p.flush(10)
    assert errors[0] is not None and errors[0].code() == 87  # INVALID_RECORD


def test_kill_during_cleaning_loses_no_newest_value(broker_factory):
    b = broker_factory([a if a != "200" else "50" for a in FAST_CLEANER]).start()
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    admin.create_topics([NewTopic("crashy", 1, 1, config=COMPACT)])["crashy"].result(timeout=30)
    rng = random.Random(7)
    acknowledged = {}
    for round_ in range(6):
        writes = [(b"k%d" % rng.randrange(50), b"r%d-%d" % (round_, i)) for i in range(800)]
        last = produce(b.bootstrap, "crashy", writes)
        for k, off in last.items():
            acknowledged[k] = off
        time.sleep(rng.uniform(0.05, 0.4))  # let a cleaning pass start
        b.proc.send_signal(signal.SIGKILL)
        b.proc.wait(timeout=30)
        b.proc = None
        b.start()
        records, high = read_all(b.bootstrap, "crashy")
        newest = {}
        for o, k, v in records:
            newest[k] = o
        for k, off in acknowledged.items():
            assert newest.get(k) == off, (round_, k, newest.get(k), off)
    assert "cleaned" in b.log() or "log cleaned" in b.log()
