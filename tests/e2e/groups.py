"""Harness for consumer-group tests with real clients: member processes, a
sequence-numbered producer, bounded waits, and the invariants every run must
keep (nothing lost, duplicates only in the uncommitted tail, never two owners
of a partition at once)."""

import json
import signal
import subprocess
import tempfile
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


class SeqProducer:
    """Writes records to every partition in turn, acks=all, and remembers what
    was acknowledged."""

    def __init__(self, bootstrap, topic, partitions, rate=300):
        from confluent_kafka import Producer

        self.topic = topic
        self.partitions = partitions
        self.rate = rate
        self.acked = defaultdict(set)
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 5})
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def _run(self):
        from confluent_kafka import KafkaException

        seq = 0
        while not self.stop_event.is_set():
            part = seq % self.partitions
            try:
                self.p.produce(self.topic, value=str(seq).encode(), partition=part, on_delivery=self._delivered)
                seq += 1
            except (KafkaException, BufferError):
                # A partition just added is not in the producer's metadata yet.
                self.p.poll(0.1)
            self.p.poll(0)
            time.sleep(1.0 / self.rate)
        self.p.flush(30)

    def _delivered(self, err, msg):
        if err is None:
            with self.lock:
                self.acked[msg.partition()].add(msg.offset())

    def stop(self):
        self.stop_event.set()
        self.thread.join(timeout=60)

    def ends(self):
        with self.lock:
            return {p: max(offs) + 1 for p, offs in self.acked.items() if offs}


class Member:
    # Extra arguments for every member process (the benchmarks set this).
    EXTRA_ARGS = []

    def __init__(self, bootstrap, group, topic, strategy, name, client="confluent", instance=None, session_ms=6000, protocol="classic", revoke_sleep=0.0):
        self.name = name
        self.events = []
        self.ended_at = None
        if client == "java":
            cp = java_classpath()
            cmd = ["java", "-cp", cp, "cohort.interop.GroupMember", bootstrap, group, topic, strategy, name, instance or "", str(session_ms), protocol]
        else:
            cmd = [sys.executable, str(HERE / "member.py"), bootstrap, group, topic, strategy, "--client", client,
                   "--name", name, "--session-ms", str(session_ms), "--protocol", protocol]
            if instance:
                cmd += ["--instance", instance]
            if revoke_sleep:
                cmd += ["--revoke-sleep", str(revoke_sleep)]
            cmd += Member.EXTRA_ARGS
        # The client's own log (librdkafka, kafka-python's logging, Java's
        # slf4j) goes to a file that tests may read.
        self.log_file = tempfile.NamedTemporaryFile(prefix=f"member-{name}-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log_file, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                self.events.append(json.loads(line))
            except json.JSONDecodeError:
                pass

    def log(self):
        with open(self.log_file.name, errors="replace") as f:
            return f.read()

    def owned(self):
        owned = set()
        for e in list(self.events):
            if e["ev"] == "assign":
                owned |= set(e["parts"])
            elif e["ev"] in ("revoke", "lost"):
                owned -= set(e["parts"])
        return owned

    def alive(self):
        return self.ended_at is None

    def stop(self, timeout=30):
        """Graceful: the client closes and leaves the group."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=timeout)
        self.reader.join(timeout=5)
        self.ended_at = time.time()

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        # Ownership ends when the process is gone: it may still have printed
        # records it consumed between the signal and its death.
        self.ended_at = time.time()
        self.reader.join(timeout=5)

    def count(self, ev):
        return sum(1 for e in list(self.events) if e["ev"] == ev)


def java_classpath():
    cp_file = ROOT / "interop" / "java" / "target" / "classpath.txt"
    classes = ROOT / "interop" / "java" / "target" / "classes"
    if not cp_file.exists():
        raise RuntimeError("Java harness not built: run scripts/test")
    return f"{classes}:{cp_file.read_text().strip()}"


def wait_until(predicate, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return time.time()
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def settled(members, partitions):
    """Every partition owned by exactly one live member, and each live member
    has reported its first assignment."""
    live = [m for m in members if m.alive()]
    if not live or any(m.count("assign") == 0 for m in live):
        return False
    seen = []
    for m in live:
        seen.extend(m.owned())
    return sorted(seen) == list(range(partitions))


def ownership_intervals(members, end_time):
    """(member, partition) -> [(start, end)] from each member's callbacks."""
    out = defaultdict(list)
    for m in members:
        open_at = {}
        for e in m.events:
            if e["ev"] == "assign":
                for p in e["parts"]:
                    open_at.setdefault(p, e["t"])
            elif e["ev"] in ("revoke", "lost"):
                for p in e["parts"]:
                    if p in open_at:
                        out[(m.name, p)].append((open_at.pop(p), e["t"]))
            elif e["ev"] == "closing":
                # The application stopped consuming; close() may leave the
                # group before its revocation callbacks finish.
                for p, start in open_at.items():
                    out[(m.name, p)].append((start, e["t"]))
                open_at.clear()
                break
        stop = m.ended_at or end_time
        for p, start in open_at.items():
            out[(m.name, p)].append((start, stop))
    return out


def check_invariants(members, producer, end_time):
    """Returns a summary; raises AssertionError on any violation."""
    intervals = ownership_intervals(members, end_time)
    by_partition = defaultdict(list)
    for (name, p), spans in intervals.items():
        for s, e in spans:
            by_partition[p].append((s, e, name))
    # Never two owners at once.
    for p, spans in by_partition.items():
        spans.sort()
        for (s1, e1, n1), (s2, e2, n2) in zip(spans, spans[1:]):
            assert n1 == n2 or s2 >= e1, f"partition {p} owned by {n1} until {e1} and by {n2} from {s2}"
    # Records are consumed only inside their consumer's ownership.
    consumed = defaultdict(list)  # p -> [(t, offset, member)]
    for m in members:
        for e in m.events:
            if e["ev"] == "recs":
                for o in e["offs"]:
                    consumed[e["p"]].append((e["t"], o, m.name))
    for p, recs in consumed.items():
        for t, o, name in recs:
            spans = intervals.get((name, p), [])
            assert any(s <= t <= e + 0.001 for s, e in spans), f"{name} consumed {p}@{o} while not owning {p}"
    # Nothing acknowledged is lost.
    ends = producer.ends()
    for p, end in ends.items():
        got = {o for _, o, _ in consumed[p]}
        missing = [o for o in producer.acked[p] if o not in got]
        assert not missing, f"partition {p}: {len(missing)} acked records never consumed, first {sorted(missing)[:5]}"
    # Duplicates only in the uncommitted tail: a record read twice was read
    # again by a later owner, at or after the last commit before that owner's
    # assignment.
    commits = defaultdict(list)  # p -> [(t, offset)]
    for m in members:
        for e in m.events:
            if e["ev"] == "commit":
                for p, o in e["offs"]:
                    commits[p].append((e["t"], o))
    duplicates = 0
    for p, recs in consumed.items():
        recs.sort()
        first_reader = {}
        for t, o, name in recs:
            if o not in first_reader:
                first_reader[o] = (t, name)
                continue
            duplicates += 1
            committed_before = max((c for ct, c in commits[p] if ct <= t), default=0)
            assert o >= committed_before, f"partition {p}@{o} re-read below the committed offset {committed_before}"
    return {"consumed": sum(len(v) for v in consumed.values()), "duplicates": duplicates, "acked": sum(len(v) for v in producer.acked.values())}


def caught_up(members, ends):
    """Every partition's last acknowledged record was delivered to someone."""
    done = {}
    for m in members:
        for e in list(m.events):
            if e["ev"] == "recs":
                done[e["p"]] = max(done.get(e["p"], 0), e["offs"][-1] + 1)
    return all(done.get(p, 0) >= end for p, end in ends.items())


def record_figures(name, figures):
    """Appends one run's timings to target/e2e-figures/NAME.jsonl."""
    out = ROOT / "target" / "e2e-figures"
    out.mkdir(parents=True, exist_ok=True)
    with open(out / f"{name}.jsonl", "a") as f:
        f.write(json.dumps(figures) + "\n")
