"""Many partitions: creation is bounded (Kafka's 10,000 per request, and
--max-partitions per broker) and all or nothing; it never holds up produce on
other topics; partitions' files are opened on use, within a bounded number of
descriptors; and a crash in the middle of a creation leaves either the whole
topic or nothing behind."""

import os
import threading
import time
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

POLICY_VIOLATION = 44


def admin(b):
    return AdminClient({"bootstrap.servers": b.bootstrap})


def create(a, name, n, timeout=120):
    return a.create_topics([NewTopic(name, n, 1)], request_timeout=timeout)[name]


def error_code(future, timeout=120):
    try:
        future.result(timeout=timeout)
        return 0
    except Exception as e:
        return e.args[0].code()


def partition_dirs(b):
    return sorted(p.name for p in (b.data_dir / "partitions").iterdir())


def open_fds(b):
    return len(os.listdir(f"/proc/{b.proc.pid}/fd"))


def test_creation_past_the_limits_is_refused_and_leaves_nothing(broker_factory):
    b = broker_factory(["--max-partitions", "5000"]).start()
    a = admin(b)
    assert error_code(create(a, "huge", 30000)) == POLICY_VIOLATION
    assert error_code(create(a, "too-many", 6000)) == POLICY_VIOLATION
    assert error_code(create(a, "fits", 100)) == 0
    assert error_code(a.create_partitions([NewPartitions("fits", 30000)])["fits"]) == POLICY_VIOLATION
    assert error_code(a.create_partitions([NewPartitions("fits", 5001)])["fits"]) == POLICY_VIOLATION
    assert len(partition_dirs(b)) == 100


def test_thousands_of_partitions_within_a_few_descriptors_while_produce_goes_on(broker_factory):
    b = broker_factory(["--max-open-files", "64"]).start()
    a = admin(b)
    assert error_code(create(a, "steady", 1)) == 0
    acked, failed = [], []
    stop = threading.Event()

    def steady():
        p = Producer({"bootstrap.servers": b.bootstrap, "acks": "all", "linger.ms": 0})
        i = 0
        while not stop.is_set():
            p.produce("steady", value=str(i).encode(),
                      on_delivery=lambda err, m: (failed if err else acked).append(m))
            p.poll(0.01)
            i += 1
        p.flush(30)

    t = threading.Thread(target=steady)
    t.start()
    for i in range(3):
        assert error_code(create(a, f"wide-{i}", 2000)) == 0
    stop.set()
    t.join()
    assert acked and not failed, f"{len(failed)} failed"
    assert len(partition_dirs(b)) == 6001

    # One record to every partition, and each read back.
    p = Producer({"bootstrap.servers": b.bootstrap, "acks": "all", "linger.ms": 5})
    for i in range(3):
        for part in range(2000):
            p.produce(f"wide-{i}", value=f"{i}-{part}".encode(), partition=part)
            if part % 500 == 0:
                p.poll(0)
    assert p.flush(120) == 0
    fds = open_fds(b)
    assert fds < 64 + 100, fds
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "wide", "enable.auto.commit": False})
    c.assign([TopicPartition("wide-1", part, 0) for part in range(0, 2000, 97)])
    got = set()
    deadline = time.time() + 30
    while len(got) < len(range(0, 2000, 97)) and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.add(m.value())
    c.close()
    assert got == {f"1-{part}".encode() for part in range(0, 2000, 97)}
    assert open_fds(b) < 64 + 100

    # A restart opens them all again within the same bound.
    assert b.stop() == 0
    b.start()
    assert open_fds(b) < 64 + 100
    assert error_code(create(a := admin(b), "after", 1)) == 0


def test_kill_minus_9_during_a_big_creation_leaves_all_or_nothing(broker_factory):
    b = broker_factory().start()
    a = admin(b)
    assert error_code(create(a, "before", 3)) == 0
    future = create(a, "interrupted", 9000)
    # Kill once the creation is under way: directories are being made.
    deadline = time.time() + 60
    while len(partition_dirs(b)) < 3 + 500 and time.time() < deadline:
        time.sleep(0.01)
    b.kill()
    b.start()
    dirs = partition_dirs(b)
    md = AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(timeout=10).topics
    print("interrupted kept:", "interrupted" in md, len(dirs))
    if "interrupted" in md:
        assert len(md["interrupted"].partitions) == 9000 and len(dirs) == 9003
    else:
        assert len(dirs) == 3, f"{len(dirs)} directories left behind"
    assert not (b.data_dir / "stray").exists() or not list((b.data_dir / "stray").iterdir())
    assert error_code(create(admin(b), "again", 10)) == 0
