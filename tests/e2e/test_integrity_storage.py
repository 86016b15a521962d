"""Damage a crash cannot explain, applied to the files of a stopped broker that
holds known acknowledged data. After each, a start either serves every
acknowledged record intact, or takes only the damaged partition (or the group
coordinator) offline with an error naming the file while the rest serves; and
nothing is deleted until an operator runs `cohort repair`, which cuts at the
damage and moves what it cuts aside."""

import os
import shutil
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import BIN
from kafka_wire import Conn, list_offsets_v4

KAFKA_STORAGE_ERROR = 56


def storage_error(b, partition):
    """Whether the broker answers KAFKA_STORAGE_ERROR for partition `partition` of t."""
    return list_offsets_v4(Conn(b.bootstrap), "t", partition)[0] == KAFKA_STORAGE_ERROR

PARTITIONS = 3
PER_PARTITION = 300
SMALL_SEGMENTS = ["--segment-bytes", "4096"]


def produce_known(bootstrap, topic):
    """Creates `topic` and writes PER_PARTITION acknowledged records to each
    partition; returns {partition: [value, ...]} in offset order."""
    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept alive until the result
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(timeout=30)
    acked = defaultdict(dict)

    def on_delivery(err, msg):
        assert err is None, err
        acked[msg.partition()][msg.offset()] = msg.value()

    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                  "linger.ms": 0, "batch.num.messages": 10})
    for i in range(PER_PARTITION):
        for part in range(PARTITIONS):
            p.produce(topic, value=f"{topic}-{part}-{i:05}".encode() + b"x" * 40, partition=part,
                      on_delivery=on_delivery)
        p.poll(0)
    assert p.flush(30) == 0
    return {part: [acked[part][o] for o in sorted(acked[part])] for part in range(PARTITIONS)}


def read_partition(bootstrap, topic, partition, expect, timeout=15):
    """Every record of one partition from offset 0, or the error that stopped it."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader", "enable.auto.commit": False,
                  "check.crcs": True, "fetch.error.backoff.ms": 50})
    c.assign([TopicPartition(topic, partition, 0)])
    got, error = [], None
    deadline = time.time() + timeout
    while len(got) < expect and time.time() < deadline:
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                continue
            error = m.error()
            if m.error().code() == KafkaError.KAFKA_STORAGE_ERROR or not m.error().retriable():
                break
            continue
        got.append(m.value())
    c.close()
    return got, error


def commit(bootstrap, group, topic, offsets):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    c.commit(offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()], asynchronous=False)
    c.close()


def committed(bootstrap, group, topic, timeout=10):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        return {tp.partition: tp.offset
                for tp in c.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=timeout)}
    finally:
        c.close()


def segments(data_dir, topic_partition_dir):
    d = Path(data_dir) / "partitions" / topic_partition_dir
    return sorted(d.glob("*.log"))


def partition_dirs(data_dir):
    return sorted(p.name for p in (Path(data_dir) / "partitions").iterdir())


def snapshot(data_dir):
    """Every file under the data directory with its size (to show nothing was deleted)."""
    out = {}
    for p in Path(data_dir).rglob("*"):
        if p.is_file() and p.name not in (".lock", "recovery-points", "clean-shutdown"):
            out[str(p.relative_to(data_dir))] = p.stat().st_size
    return out


def run_repair(data_dir, *extra):
    out = subprocess.run([str(BIN), "repair", "--data-dir", str(data_dir), *extra],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture
def loaded(broker_factory):
    """A stopped broker holding topic `t` (3 x 300 acknowledged records, small
    segments) and group `g`'s committed offsets."""
    b = broker_factory(SMALL_SEGMENTS).start()
    data = produce_known(b.bootstrap, "t")
    commit(b.bootstrap, "g", "t", {0: 100, 1: 200, 2: 300})
    assert b.stop() == 0
    return b, data


def dir_of(b, partition):
    """The directory of partition `partition` of topic t."""
    import json
    topics = json.loads((b.data_dir / "meta" / "topics.json").read_text())["topics"]
    tid = [t for t in topics if t["name"] == "t"][0]["id"]
    return f"{tid}-{partition}"


def assert_served(b, data, partitions=range(PARTITIONS)):
    for p in partitions:
        got, err = read_partition(b.bootstrap, "t", p, len(data[p]))
        assert got == data[p], f"partition {p}: {len(got)} of {len(data[p])} records, error {err}"


def test_a_clean_restart_serves_everything_and_checks_nothing_away(loaded):
    b, data = loaded
    before = snapshot(b.data_dir)
    b.start()
    assert_served(b, data)
    assert committed(b.bootstrap, "g", "t") == {0: 100, 1: 200, 2: 300}
    assert "clean_shutdown=true" in b.log()
    after = {k: v for k, v in snapshot(b.data_dir).items() if k in before}
    assert after == before


def test_a_deleted_topics_json_refuses_to_start_then_repair_rebuilds_it(loaded):
    b, data = loaded
    (b.data_dir / "meta" / "topics.json").unlink()
    before = snapshot(b.data_dir)
    with pytest.raises(RuntimeError) as e:
        b.start()
    assert "topics.json is missing" in str(e.value) and "cohort repair" in str(e.value)
    assert snapshot(b.data_dir) == before, "nothing was deleted"
    out = run_repair(b.data_dir)
    assert "topic t" in out and "rebuilt from its partitions' metadata" in out, out
    b.start()
    assert_served(b, data)
    assert committed(b.bootstrap, "g", "t") == {0: 100, 1: 200, 2: 300}


def test_an_old_segment_cut_mid_batch_takes_only_its_partition_offline(loaded):
    b, data = loaded
    damaged = segments(b.data_dir, dir_of(b, 1))[1]
    size = damaged.stat().st_size
    with open(damaged, "r+b") as f:
        f.truncate(size - 20)
    before = snapshot(b.data_dir)
    b.start()
    assert str(damaged) in b.log() and "partition offline" in b.log()
    assert_served(b, data, partitions=[0, 2])
    assert storage_error(b, 1)
    assert read_partition(b.bootstrap, "t", 1, 1, timeout=3)[0] == []
    assert committed(b.bootstrap, "g", "t") == {0: 100, 1: 200, 2: 300}
    b.stop()
    assert {k: v for k, v in snapshot(b.data_dir).items() if k in before} == before
    # The operator's repair cuts there and keeps what it cut.
    out = run_repair(b.data_dir)
    assert str(damaged) in out and "moved aside" in out, out
    b.start()
    got, err = read_partition(b.bootstrap, "t", 1, PER_PARTITION, timeout=5)
    assert err is None and got == data[1][:len(got)] and 0 < len(got) < PER_PARTITION
    cut = list(b.data_dir.glob("repair-*/partitions/*"))
    assert cut and any(p.name.endswith(".log.cut") for p in cut[0].iterdir())


def test_a_missing_middle_segment_is_not_served_as_a_gap(loaded):
    b, data = loaded
    segs = segments(b.data_dir, dir_of(b, 2))
    assert len(segs) >= 3
    segs[1].unlink()
    b.start()
    assert f"offsets jump from" in b.log()
    assert storage_error(b, 2)
    assert read_partition(b.bootstrap, "t", 2, 1, timeout=3)[0] == []
    assert_served(b, data, partitions=[0, 1])


def test_a_flipped_byte_in_an_old_segment_is_never_served(loaded):
    b, data = loaded
    seg = segments(b.data_dir, dir_of(b, 0))[0]
    with open(seg, "r+b") as f:
        f.seek(200)
        byte = f.read(1)
        f.seek(200)
        f.write(bytes([byte[0] ^ 0x55]))
    b.start()
    got, err = read_partition(b.bootstrap, "t", 0, PER_PARTITION, timeout=5)
    # Whatever was served before the damaged batch is intact; the damaged batch
    # and everything after it are refused.
    assert got == data[0][:len(got)] and len(got) < PER_PARTITION
    assert storage_error(b, 0)
    assert str(seg) in b.log()
    assert_served(b, data, partitions=[1, 2])


def test_an_unknown_partition_directory_is_set_aside_not_deleted(loaded):
    b, data = loaded
    src = b.data_dir / "partitions" / dir_of(b, 0)
    stray = b.data_dir / "partitions" / ("ab" * 16 + "-0")
    shutil.copytree(src, stray)
    b.start()
    assert not stray.exists()
    assert (b.data_dir / "stray" / stray.name).is_dir()
    assert "moved to" in b.log()
    assert_served(b, data)


def coordinator_log(b):
    root = b.data_dir / "coordinator" / "shard-0"
    logs = sorted(root.glob("log-*/*.log"))
    assert len(logs) == 1
    return logs[0]


def test_a_flipped_byte_in_the_coordinator_log_takes_only_the_coordinator_offline(loaded):
    b, data = loaded
    log = coordinator_log(b)
    with open(log, "r+b") as f:
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 0x01]))
    size = log.stat().st_size
    b.start()
    assert "group coordinator offline" in b.log() and str(log) in b.log()
    # Produce and fetch still serve; group requests are refused.
    assert_served(b, data)
    with pytest.raises(Exception):
        committed(b.bootstrap, "g", "t", timeout=3)
    b.stop()
    assert log.stat().st_size == size, "nothing cut without repair"
    out = run_repair(b.data_dir)
    assert "coordinator/shard-0" in out and "moved aside" in out, out
    b.start()
    committed(b.bootstrap, "g", "t")  # loads and answers again


def test_a_coordinator_log_cut_after_a_clean_stop_refuses_to_load(loaded):
    b, data = loaded
    log = coordinator_log(b)
    with open(log, "r+b") as f:
        f.truncate(log.stat().st_size - 5)
    b.start()
    assert "group coordinator offline" in b.log()
    assert_served(b, data)


def test_a_torn_tail_after_kill_minus_9_is_cut_and_every_acknowledged_commit_kept(broker_factory):
    b = broker_factory(SMALL_SEGMENTS).start()
    data = produce_known(b.bootstrap, "t")
    for i in range(20):
        commit(b.bootstrap, "g", "t", {0: i, 1: 2 * i, 2: 3 * i})
    b.kill()
    # A crash mid-write leaves part of a batch after the last whole one, in
    # the coordinator log and in a partition.
    log = coordinator_log(b)
    with open(log, "ab") as f:
        f.write(log.read_bytes()[:40])
    seg = segments(b.data_dir, dir_of(b, 0))[-1]
    with open(seg, "ab") as f:
        f.write(seg.read_bytes()[:30])
    b.start()
    assert "torn tail" in b.log()
    assert committed(b.bootstrap, "g", "t") == {0: 19, 1: 38, 2: 57}
    assert_served(b, data)
