"""Join-to-steady time (benchmarks.md A), first cut, with real librdkafka members.

A probe producer writes one record per partition every 10 ms whose value is its
produce time. After a trigger at t0 (S1: one member joins; S3: partitions grow
from P to 10 x P; S4: one member leaves gracefully), JTS is the time until every
partition has delivered, to the application of the member that owns it
afterwards, a record produced after t0. Also reported: the longest gap between
deliveries of any one partition around the trigger.

t0 is taken in this process when it starts the joining member (S1), sends
CreatePartitions (S3) or signals the leaving member (S4): before the broker sees
anything, so JTS here includes client start-up and is an upper bound.

    python bench/jts.py --scenario S1 --members 10 --partitions 100 --trials 10 \\
        [--bootstrap HOST:PORT | --cohort-arg=--group-consumer-heartbeat-interval-ms=5000 ...]
"""

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic  # noqa: E402

from groups import Member, wait_until  # noqa: E402


def start_cohort(extra):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    data = tempfile.mkdtemp()
    log = open(os.environ.get("JTS_BROKER_LOG", os.devnull), "w")
    proc = subprocess.Popen([str(ROOT / "target" / "release" / "cohort"), "serve", "--listen", f"127.0.0.1:{port}",
                             "--data-dir", data, *extra], stdout=log, stderr=log)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("cohort did not start")


class Probe:
    def __init__(self, bootstrap, topic, partitions):
        self.p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "acks": 1})
        self.topic, self.partitions = topic, partitions
        self.stop_event = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop_event.is_set():
            now = time.time()
            for p in range(self.partitions):
                try:
                    self.p.produce(self.topic, value=f"{now:.6f}".encode(), partition=p)
                except Exception:  # noqa: BLE001 - new partitions not yet known
                    pass
            self.p.poll(0)
            time.sleep(max(0.0, 0.01 - (time.time() - now)))

    def stop(self):
        self.stop_event.set()
        self.t.join(timeout=10)
        self.p.flush(10)


def owners_after(members):
    owner = {}
    for m in members:
        if m.alive():
            for p in m.owned():
                owner[p] = m.name
    return owner


def measure(members, t0, partitions):
    """Seconds from t0 until every partition delivered a post-t0 record to its
    final owner, and the longest delivery gap of any partition."""
    owner = owners_after(members)
    first = {}
    deliveries = {}
    by_name = {m.name: m for m in members}
    for p in range(partitions):
        m = by_name.get(owner.get(p))
        if m is None:
            return None, None
        for e in list(m.events):
            if e["ev"] == "recs" and e["p"] == p and any(ts > t0 for ts in e.get("ts", [])):
                first[p] = e["t"]
                break
    if len(first) < partitions:
        return None, None
    for m in members:
        for e in list(m.events):
            if e["ev"] == "recs" and t0 - 1 <= e["t"]:
                deliveries.setdefault(e["p"], []).append(e["t"])
    gaps = [max((b - a for a, b in zip(sorted(ts), sorted(ts)[1:])), default=0.0) for ts in deliveries.values()]
    return max(first.values()) - t0, max(gaps, default=0.0)


def group_stable(admin, group):
    try:
        d = admin.describe_consumer_groups([group])[group].result(timeout=10)
        return d.state.name == "STABLE"
    except Exception:  # noqa: BLE001 - not described yet
        return False


def trial(bootstrap, scenario, n, partitions, assignor, index):
    topic, group = f"jts-{scenario}-{index}-{os.getpid()}", f"jts-{scenario}-{index}-{os.getpid()}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(timeout=60)
    probe = Probe(bootstrap, topic, partitions)
    base = n - 1 if scenario == "S1" else n
    members = []
    try:
        for i in range(base):
            members.append(Member(bootstrap, group, topic, assignor, f"m{i}", protocol="consumer"))
            members[-1].proc.args  # noqa: B018
        wait_until(lambda: all(m.count("assign") for m in members) and sorted(p for m in members for p in m.owned()) == list(range(partitions)), 120, "the group to settle")
        wait_until(lambda: group_stable(admin, group), 60, "the broker to report the group stable")
        # Trigger at a random moment relative to the members' heartbeat timers.
        time.sleep(1.0 + (index * 0.37) % 1.0)
        final_partitions = partitions
        if scenario == "S1":
            t0 = time.time()
            members.append(Member(bootstrap, group, topic, assignor, f"m{base}", protocol="consumer"))
        elif scenario == "S3":
            final_partitions = partitions * 10
            t0 = time.time()
            admin.create_partitions([NewPartitions(topic, final_partitions)])[topic].result(timeout=60)
            probe.partitions = final_partitions
        else:
            t0 = time.time()
            members[-1].stop()
        live = [m for m in members if m.alive()]

        def converged():
            covered = sorted(p for m in live for p in m.owned()) == list(range(final_partitions))
            newcomer_ok = scenario != "S1" or bool(members[-1].owned())
            return covered and newcomer_ok and group_stable(admin, group)

        wait_until(converged, 120, "the group to converge after the trigger")
        result = (None, None)
        deadline = time.time() + 60
        while time.time() < deadline:
            result = measure(members, t0, final_partitions)
            if result[0] is not None:
                break
            time.sleep(0.1)
        return result
    finally:
        probe.stop()
        for m in members:
            if m.alive():
                m.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", choices=["S1", "S3", "S4"], required=True)
    ap.add_argument("--members", type=int, default=10)
    ap.add_argument("--partitions", type=int, default=100)
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--assignor", default="uniform")
    ap.add_argument("--bootstrap")
    ap.add_argument("--cohort-arg", action="append", default=[])
    a = ap.parse_args()
    proc = None
    bootstrap = a.bootstrap
    if not bootstrap:
        extra = []
        for arg in a.cohort_arg:
            extra += arg.split("=", 1)
        proc, bootstrap = start_cohort(extra)
    # Member processes must print produce times for this measurement.
    Member.EXTRA_ARGS = ["--emit-values"]
    try:
        results = []
        for i in range(a.trials):
            jts, gap = trial(bootstrap, a.scenario, a.members, a.partitions, a.assignor, i)
            results.append((jts, gap))
            print(f"trial {i}: jts {jts if jts is None else round(jts * 1000)} ms, longest gap {gap if gap is None else round(gap * 1000)} ms", flush=True)
        ok = sorted(r[0] * 1000 for r in results if r[0] is not None)
        gaps = sorted(r[1] * 1000 for r in results if r[1] is not None)
        summary = {
            "scenario": a.scenario, "members": a.members, "partitions": a.partitions, "assignor": a.assignor,
            "broker": a.bootstrap or "cohort " + " ".join(a.cohort_arg), "client": "librdkafka (confluent-kafka)",
            "trials": a.trials, "measured": len(ok),
            "jts_p50_ms": round(statistics.median(ok)) if ok else None,
            "jts_p99_ms": round(ok[min(len(ok) - 1, int(len(ok) * 0.99))]) if ok else None,
            "jts_max_ms": round(ok[-1]) if ok else None,
            "gap_max_ms": round(gaps[-1]) if gaps else None,
        }
        print(json.dumps(summary))
    finally:
        if proc:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
