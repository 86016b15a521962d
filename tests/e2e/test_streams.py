"""A Kafka Streams application against the broker: interop/streams WordCount
(flatMapValues -> groupBy, which goes through a repartition topic -> count in
a state store with a changelog topic -> output topic), run as two instances
of one application. One instance is stopped with SIGTERM halfway; its tasks
move to the other, which restores their counts from the changelog. The last
count written per word must be exactly the count over everything produced."""

import random
import re
import shutil
import signal
import struct
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STREAMS = ROOT / "interop" / "streams" / "target"
APP_ID = "wordcount"
INPUT = "wc-lines"
OUTPUT = "wc-counts"
VOCAB = ["Apple", "banana", "cherry", "date", "Elder", "fig", "grape", "honeydew", "kiwi", "lemon", "mango", "nectarine"]
SEPARATORS = [" ", "  ", ", ", "-", "! ", ". ", "\t"]
WAIT = 120  # seconds, for the whole of the test's waits


def streams_classpath():
    if shutil.which("java") is None:
        pytest.skip("java is not on PATH")
    cp_file = STREAMS / "classpath.txt"
    classes = STREAMS / "classes" / "cohort" / "streams" / "WordCount.class"
    if not cp_file.exists() or not classes.exists():
        pytest.skip("interop/streams not built: mvn -q -B -f interop/streams/pom.xml compile")
    return f"{STREAMS / 'classes'}:{cp_file.read_text().strip()}"


def make_lines(rng, n, start):
    lines = []
    for i in range(n):
        words = [rng.choice(VOCAB) for _ in range(rng.randint(1, 8))]
        line = words[0]
        for w in words[1:]:
            line += rng.choice(SEPARATORS) + w
        if rng.random() < 0.2:
            line = rng.choice(SEPARATORS) + line
        if rng.random() < 0.2:
            line += rng.choice(SEPARATORS)
        lines.append((None if (start + i) % 5 == 0 else str(start + i), line))
    return lines


def count_words(lines):
    return Counter(w for _, line in lines for w in re.split(r"\W+", line.lower()) if w)


def produce(bootstrap, lines):
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all"})
    failed = []
    for key, line in lines:
        p.produce(INPUT, key=key, value=line, on_delivery=lambda err, msg: err and failed.append(err))
    assert p.flush(30) == 0, "producer did not deliver everything within 30 s"
    assert not failed, failed


class Instance:
    """One WordCount JVM; its stdout lines are collected by a thread."""

    def __init__(self, name, classpath, bootstrap, tmp_path):
        self.name = name
        self.lines = []
        self.lock = threading.Lock()
        self.log_path = tmp_path / f"{name}.log"
        state_dir = tmp_path / f"{name}-state"
        state_dir.mkdir()
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            ["java", "-cp", classpath, "cohort.streams.WordCount", bootstrap, APP_ID, INPUT, OUTPUT, str(state_dir)],
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self.lock:
                self.lines.append(line.rstrip("\n"))

    def out(self):
        with self.lock:
            return list(self.lines)

    def state(self):
        states = [l.split(" ", 1)[1] for l in self.out() if l.startswith("STATE ")]
        return states[-1] if states else None

    def tasks(self):
        tasks = [l.split(" ", 1)[1] if " " in l else "" for l in self.out() if l.startswith("TASKS")]
        return set(filter(None, tasks[-1].split(","))) if tasks else None

    def describe(self):
        try:
            log = self.log_path.read_text(errors="replace")
        except OSError:
            log = ""
        errors = [l for l in log.splitlines() if " ERROR " in l or " WARN " in l or "Exception" in l]
        return (
            f"--- {self.name} (exit {self.proc.poll()}) stdout:\n" + "\n".join(self.out()) +
            f"\n--- {self.name} WARN/ERROR lines (last 40 of {len(errors)}; full log {self.log_path}):\n" +
            "\n".join(errors[-40:]) + "\n"
        )

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.log.close()


class OutputReader:
    """Assigned to every output partition from the beginning; keeps the last
    count seen per word."""

    def __init__(self, bootstrap, partitions):
        from confluent_kafka import Consumer, TopicPartition

        self.consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": "wc-test-reader",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
        })
        self.consumer.assign([TopicPartition(OUTPUT, p, 0) for p in range(partitions)])
        self.last = {}
        self.records = 0

    def poll(self, seconds):
        end = time.time() + seconds
        while time.time() < end:
            msg = self.consumer.poll(0.1)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            value = msg.value()
            assert value is not None and len(value) == 8, f"value of {msg.key()!r} is {value!r}, not an 8-byte long"
            self.last[msg.key().decode()] = struct.unpack(">q", value)[0]
            self.records += 1

    def close(self):
        self.consumer.close()


def read_whole_output(bootstrap, partitions):
    """A fresh consumer reads every output partition from offset 0 to its
    high watermark."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "wc-test-final", "enable.auto.commit": False})
    try:
        ends = {p: c.get_watermark_offsets(TopicPartition(OUTPUT, p), timeout=10)[1] for p in range(partitions)}
        c.assign([TopicPartition(OUTPUT, p, 0) for p in range(partitions)])
        last, pos = {}, {p: 0 for p in range(partitions)}
        deadline = time.time() + 30
        while any(pos[p] < ends[p] for p in pos):
            assert time.time() < deadline, f"output not read to its end within 30 s: at {pos}, ends {ends}"
            msg = c.poll(0.2)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            assert len(msg.value()) == 8
            last[msg.key().decode()] = struct.unpack(">q", msg.value())[0]
            pos[msg.partition()] = msg.offset() + 1
        return last, ends
    finally:
        c.close()


def test_streams_word_count_two_instances_one_stopped(broker, tmp_path):
    from confluent_kafka.admin import AdminClient, NewTopic

    classpath = streams_classpath()
    deadline = time.time() + WAIT

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for topic, fut in admin.create_topics([NewTopic(INPUT, 3, 1), NewTopic(OUTPUT, 3, 1)]).items():
        fut.result(timeout=30)

    rng = random.Random(20240611)
    first = make_lines(rng, 300, 0)
    second = make_lines(rng, 300, 300)
    expected_first = count_words(first)
    expected_total = count_words(first + second)
    produce(broker.bootstrap, first)

    instances = []
    stopped = []
    reader = None
    try:
        instances = [Instance(n, classpath, broker.bootstrap, tmp_path) for n in ("wc-a", "wc-b")]
        reader = OutputReader(broker.bootstrap, 3)

        def wait_for(what, cond):
            while not cond():
                dead = [i for i in instances if i.proc.poll() is not None and i not in stopped]
                assert not dead, f"{what}: an instance exited\n" + "".join(i.describe() for i in instances)
                assert time.time() < deadline, (
                    f"{what}: not done {WAIT} s into the test; last counts {reader.last} "
                    f"after {reader.records} records\n" + "".join(i.describe() for i in instances)
                )
                reader.poll(0.5)

        # Both RUNNING, with the six tasks (0_x: input -> repartition,
        # 1_x: repartition -> count) split between them, and every count of
        # the first batch out.
        wait_for(
            "both instances RUNNING with the first batch counted",
            lambda: all(i.state() == "RUNNING" for i in instances)
            and all(i.tasks() for i in instances)
            and reader.last == dict(expected_first),
        )
        a, b = instances
        assert a.tasks().isdisjoint(b.tasks()), (a.tasks(), b.tasks())
        assert a.tasks() | b.tasks() == {"0_0", "0_1", "0_2", "1_0", "1_1", "1_2"}, (a.tasks(), b.tasks())

        # Stop the instance holding the most counting tasks, so the other
        # has to restore their stores from the changelog.
        gone, survivor = sorted(instances, key=lambda i: -sum(t.startswith("1_") for t in i.tasks()))
        moved = set(gone.tasks())
        gone.proc.send_signal(signal.SIGTERM)
        stopped.append(gone)
        try:
            code = gone.proc.wait(timeout=max(1, min(45, deadline - time.time())))
        except subprocess.TimeoutExpired:
            pytest.fail(f"{gone.name} did not exit after SIGTERM\n" + gone.describe())
        gone.reader.join(timeout=5)
        assert "CLOSED true" in gone.out(), f"{gone.name} did not close cleanly (exit {code})\n" + gone.describe()
        assert gone.state() == "NOT_RUNNING", gone.describe()

        produce(broker.bootstrap, second)
        wait_for(
            f"{survivor.name} RUNNING with all tasks and both batches counted",
            lambda: survivor.state() == "RUNNING"
            and survivor.tasks() == {"0_0", "0_1", "0_2", "1_0", "1_1", "1_2"}
            and reader.last == dict(expected_total),
        )
        assert moved <= survivor.tasks()

        last, ends = read_whole_output(broker.bootstrap, 3)
        unexpected = set(last) - set(expected_total)
        assert not unexpected, f"words that were never produced: {unexpected}"
        wrong = {w: (last.get(w), n) for w, n in expected_total.items() if last.get(w) != n}
        assert not wrong, f"last count per word (got, expected) differs: {wrong}; output ends {ends}"
    finally:
        if reader is not None:
            reader.close()
        for i in instances:
            i.kill()
