"""A full disk: produce is refused (KAFKA_STORAGE_ERROR) while it is full, no
acknowledged record is lost, and the partition takes records again as soon as
space is freed, without a restart. Runs on a small tmpfs the test mounts;
skipped, saying why, where the machine does not allow mounting one."""

import subprocess
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "small-disk"
    mnt.mkdir()
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mnt)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {out.stderr.strip() or out.returncode}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def produce(bootstrap, topic, values, timeout_ms=3000):
    """Produces each value; returns (acknowledged values in offset order, errors)."""
    acked, errors = {}, []

    def done(err, msg):
        if err is None:
            acked[msg.offset()] = msg.value()
        else:
            errors.append(err)

    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0,
                  "message.timeout.ms": timeout_ms, "enable.idempotence": False})
    for v in values:
        p.produce(topic, value=v, on_delivery=done)
        p.poll(0)
    p.flush(timeout_ms / 1000 + 10)
    return [acked[o] for o in sorted(acked)], errors


def read_all(bootstrap, topic, expect):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "disk", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    got = []
    deadline = time.time() + 30
    while len(got) < expect and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append(m.value())
    c.close()
    return got


def test_a_full_disk_refuses_produce_then_recovers_without_a_restart(broker_factory, small_disk):
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (6 << 20))
    b = broker_factory(["--segment-bytes", str(1 << 20)])
    b.data_dir = small_disk / "data"
    b.start()
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    admin.create_topics([NewTopic("full", 1, 1)])["full"].result(timeout=30)

    # Fill the disk: 100 KB records until the broker refuses them.
    values = [f"{i:06}".encode() + b"x" * 100_000 for i in range(300)]
    acked, errors = produce(b.bootstrap, "full", values)
    assert errors, "the disk never filled"
    assert 0 < len(acked) < len(values)
    assert "append failed" in b.log()

    # Space comes back: the same broker takes records again.
    filler.unlink()
    later = [f"later-{i}".encode() for i in range(20)]
    acked_later, errors_later = produce(b.bootstrap, "full", later, timeout_ms=10000)
    assert acked_later == later and not errors_later
    assert "appends succeed again" in b.log()

    # Nothing acknowledged was lost, across a restart too.
    expected = acked + acked_later
    assert read_all(b.bootstrap, "full", len(expected)) == expected
    assert b.stop() == 0
    b.start()
    assert read_all(b.bootstrap, "full", len(expected)) == expected


def fill(path):
    """Writes zeros to `path` until the file system is full."""
    with open(path, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass


def test_commits_on_a_full_disk_are_refused_and_acknowledged_ones_survive(broker_factory, small_disk):
    b = broker_factory()
    b.data_dir = small_disk / "data"
    b.start()
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    admin.create_topics([NewTopic("c", 1, 1)])["c"].result(timeout=30)
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "g", "enable.auto.commit": False})
    c.commit(offsets=[TopicPartition("c", 0, 5)], asynchronous=False)
    fill(small_disk / "filler")
    # Commits fit in the log's last page until they do not: then they are
    # refused, not acknowledged.
    refused = False
    for i in range(6, 400):
        try:
            c.commit(offsets=[TopicPartition("c", 0, i)], asynchronous=False)
        except Exception:
            refused = True
            break
    assert refused, "every commit was acknowledged on a full disk"
    assert "coordinator log write failed" in b.log()
    (small_disk / "filler").unlink()
    deadline = time.time() + 20
    while True:
        try:
            c.commit(offsets=[TopicPartition("c", 0, 42)], asynchronous=False)
            break
        except Exception:
            assert time.time() < deadline, "commits never came back"
            time.sleep(0.2)
    c.close()
    assert b.stop() == 0
    b.start()
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "g", "enable.auto.commit": False})
    assert c.committed([TopicPartition("c", 0)], timeout=10)[0].offset == 42
    c.close()
