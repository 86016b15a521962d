"""Held classic heartbeats (`--group-classic-hold-heartbeat-ms`) with real
clients: librdkafka, kafka-python and the Java client each run a classic group
through joins, a graceful leave and a commit-heavy steady state while the
broker holds their heartbeats. Nothing may get slower or break because of it:
no client logs a heartbeat that timed out or failed, nobody loses its
partitions, the usual invariants hold (nothing acknowledged lost, duplicates
only in the uncommitted tail, never two owners). Timings go to
target/e2e-figures/held.jsonl beside the unheld runs in classic.jsonl."""

import re
import time

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from groups import Member, SeqProducer, caught_up, check_invariants, record_figures, settled, wait_until

HOLD_ARGS = ["--group-initial-rebalance-delay-ms", "300", "--group-classic-hold-heartbeat-ms", "2500"]

CASES = [("confluent", "range"), ("confluent", "cooperative-sticky"), ("kafka-python", "range"), ("java", "range")]

# What each client logs when a heartbeat times out or fails on the wire.
TROUBLE = re.compile(r"(?i)(heartbeat[^\n]*(timed out|timeout|failed|expired)|REQTMOUT|request time(d out|out)|DisconnectException|session timed out|marking coordinator dead)")


@pytest.mark.parametrize("client,strategy", CASES, ids=[f"{c}-{s}" for c, s in CASES])
def test_held_heartbeats_slow_nothing_and_time_nothing_out(broker_factory, client, strategy):
    b = broker_factory(HOLD_ARGS).start()
    topic, group = "held", f"held-{client}-{strategy}"
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    admin.create_topics([NewTopic(topic, 6, 1)])[topic].result(timeout=30)
    producer = SeqProducer(b.bootstrap, topic, 6).start()
    members = []
    figures = {"client": client, "strategy": strategy, "hold_ms": 2500}
    try:
        for i in range(3):
            t0 = time.time()
            members.append(Member(b.bootstrap, group, topic, strategy, f"m{i}", client=client))
            t1 = wait_until(lambda: settled(members, 6) and members[-1].owned(), 90, f"member {i} to get partitions")
            figures[f"join_{i + 1}_s"] = round(t1 - t0, 2)
        # Several held heartbeats pass (each answered after the hold, or by
        # the member's next request on the connection).
        time.sleep(8)
        t0 = time.time()
        members[2].stop()
        t1 = wait_until(lambda: settled(members, 6), 60, "the group to settle after a graceful leave")
        figures["leave_s"] = round(t1 - t0, 2)
        figures["close_s"] = round(members[2].ended_at - t0, 2)
        producer.stop()
        ends = producer.ends()
        wait_until(lambda: caught_up(members, ends), 60, "the members to consume everything")
    finally:
        producer.stop()
        for m in members:
            if m.alive():
                m.stop()
    record_figures("held", figures)
    for m in members:
        assert m.count("lost") == 0, f"{m.name} lost its partitions"
        trouble = [line for line in m.log().splitlines() if TROUBLE.search(line)]
        assert not trouble, f"{m.name} logged heartbeat trouble: {trouble[:3]}"
    check_invariants(members, producer, time.time())
