"""kill -9 in the middle of the broker's riskier moments: segment rolls under
acks=all produce, coordinator log compactions under a commit storm, and the
growth of a topic's partitions. After each restart, every acknowledged record
and commit is there, and nothing is left half made."""

import threading
import time
from collections import defaultdict

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

from test_durability import consume_all


def test_kill_minus_9_during_segment_rolls_loses_nothing_acknowledged(broker_factory):
    # 2 KB segments: a roll every few batches.
    b = broker_factory(["--segment-bytes", "2048"]).start()
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    admin.create_topics([NewTopic("roll", 2, 1)])["roll"].result(timeout=30)
    acked = defaultdict(dict)
    for round_ in range(3):
        lock = threading.Lock()
        stop = threading.Event()

        def on_delivery(err, msg):
            if err is None:
                with lock:
                    acked[msg.partition()][msg.offset()] = msg.value()

        p = Producer({"bootstrap.servers": b.bootstrap, "acks": "all", "enable.idempotence": True,
                      "linger.ms": 1, "message.timeout.ms": 3000})

        def produce(p=p, stop=stop, round_=round_):
            i = 0
            while not stop.is_set():
                try:
                    p.produce("roll", value=f"{round_}-{i}".encode() + b"r" * 200, on_delivery=on_delivery)
                    i += 1
                except BufferError:
                    pass
                p.poll(0.001)

        t = threading.Thread(target=produce)
        t.start()
        time.sleep(1.0 + 0.3 * round_)
        b.kill()
        stop.set()
        t.join(timeout=30)
        p.purge()
        p.flush(5)
        b.start()
    ends = {}
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "x"})
    for part in range(2):
        ends[part] = c.get_watermark_offsets(TopicPartition("roll", part), timeout=10)[1]
    c.close()
    got = consume_all(b.bootstrap, "roll", 2, sum(ends.values()))
    total = 0
    for part, recs in acked.items():
        stored = {o: v for o, _, v in got[part]}
        assert [o for o, _, _ in got[part]] == list(range(len(got[part]))), f"gap in {part}"
        for offset, v in recs.items():
            assert stored.get(offset) == v, f"acknowledged record {part}@{offset} lost"
        total += len(recs)
    assert total > 500
    segments = list((b.data_dir / "partitions").glob("*/*.log"))
    assert len(segments) > 20, "the test rolled segments"


def test_kill_minus_9_during_coordinator_log_compactions_keeps_every_acknowledged_commit(broker_factory):
    # Compact the coordinator log every few hundred records.
    b = broker_factory(["--coordinator-compact-after", "200"]).start()
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    admin.create_topics([NewTopic("commits", 4, 1)])["commits"].result(timeout=30)
    last = {}
    for round_ in range(4):
        stop = threading.Event()
        acked = {}

        def storm(group, round_=round_, stop=stop, acked=acked):
            # Bound to this round: a thread outliving it never writes into the
            # next. Commits are asynchronous, awaited by polling, so a dead
            # broker never blocks the thread past `stop`.
            results = []
            c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": group, "enable.auto.commit": False,
                          "on_commit": lambda err, parts: results.append((err, parts))})
            i = 0
            while not stop.is_set():
                i += 1
                results.clear()
                c.commit(offsets=[TopicPartition("commits", part, round_ * 100000 + i) for part in range(4)],
                         asynchronous=True)
                while not results and not stop.is_set():
                    c.poll(0.05)
                if results:
                    err, parts = results[0]
                    # Acknowledged only when every partition's commit was.
                    if err is None and all(tp.error is None for tp in parts):
                        acked[group] = round_ * 100000 + i
            # Closing waits on the dead broker; let it finish in the background
            # (its last commit at most is acknowledged + 1).
            threading.Thread(target=c.close, daemon=True).start()

        threads = [threading.Thread(target=storm, args=(f"g{k}",)) for k in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.5 + 0.4 * round_)
        b.kill()
        stop.set()
        for t in threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in threads)
        last.update(acked)
        b.start()
        # Every group's committed offset is its last acknowledged commit or a
        # later one whose answer the kill swallowed.
        for group, offset in last.items():
            c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": group, "enable.auto.commit": False})
            got = c.committed([TopicPartition("commits", part) for part in range(4)], timeout=10)
            c.close()
            for tp in got:
                assert tp.offset >= offset, f"{group}: committed {tp.offset}, acknowledged {offset}"
                assert tp.offset <= offset + 1
    assert "compacted coordinator log" in b.log()


def test_kill_minus_9_while_partitions_are_added_leaves_the_old_or_the_new_count(broker_factory):
    b = broker_factory().start()
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    admin.create_topics([NewTopic("grow", 2, 1)])["grow"].result(timeout=30)
    p = Producer({"bootstrap.servers": b.bootstrap, "acks": "all"})
    for part in range(2):
        p.produce("grow", value=b"before", partition=part)
    assert p.flush(10) == 0
    admin.create_partitions([NewPartitions("grow", 9000)], request_timeout=120)
    deadline = time.time() + 60
    while len(list((b.data_dir / "partitions").iterdir())) < 300 and time.time() < deadline:
        time.sleep(0.005)
    b.kill()
    b.start()
    md = AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(timeout=10).topics["grow"]
    dirs = len(list((b.data_dir / "partitions").iterdir()))
    assert len(md.partitions) in (2, 9000)
    assert dirs == len(md.partitions), f"{dirs} directories for {len(md.partitions)} partitions"
    got = consume_all(b.bootstrap, "grow", 2, 2)
    assert [r[2] for part in range(2) for r in got[part]] == [b"before", b"before"]
