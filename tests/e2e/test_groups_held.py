"""Held classic heartbeats (`--group-classic-hold-heartbeat-ms`) with real
clients: librdkafka, kafka-python and the Java client each run a classic group
through joins, a graceful leave and a commit-heavy steady state while the
broker holds their heartbeats. Nothing may get slower or break because of it:
no client logs a heartbeat that timed out or failed, nobody loses its
partitions, the usual invariants hold (nothing acknowledged lost, duplicates
only in the uncommitted tail, never two owners). Timings go to
target/e2e-figures/held.jsonl beside the unheld runs in classic.jsonl."""

import re
import struct
import time

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from groups import Member, SeqProducer, caught_up, check_invariants, record_figures, settled, wait_until

HOLD_ARGS = ["--group-initial-rebalance-delay-ms", "300", "--group-classic-hold-heartbeat-ms", "2500"]

CASES = [("confluent", "range"), ("confluent", "cooperative-sticky"), ("kafka-python", "range"), ("java", "range")]

# What each client logs when a heartbeat times out or fails on the wire.
TROUBLE = re.compile(r"(?i)(heartbeat[^\n]*(timed out|timeout|failed|expired)|REQTMOUT|request time(d out|out)|DisconnectException|session timed out|marking coordinator dead)")


def arr(items):
    return struct.pack(">i", len(items)) + b"".join(items)


def read_string(buf, at):
    n = struct.unpack(">h", buf[at:at + 2])[0]
    return buf[at + 2:at + 2 + n].decode(), at + 2 + n


def join_v1(group, topic, session_ms):
    """A JoinGroup v1 body for a new member subscribing to `topic` (range)."""
    from kafka_wire import string

    meta = struct.pack(">h", 0) + arr([string(topic)]) + struct.pack(">i", 0)
    return string(group) + struct.pack(">ii", session_ms, 10_000) + string("") + string("consumer") \
        + arr([string("range") + struct.pack(">i", len(meta)) + meta])


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


def test_a_heartbeat_read_together_with_a_fetch_does_not_hold_the_fetch(broker_factory):
    """librdkafka sends its first Heartbeat and its OffsetFetch back to back
    right after SyncGroup, so the broker often reads both in one go. The
    fetch's answer must not wait the hold behind the heartbeat's (it once
    waited the whole 2.5 s, leaving a new eager member's partitions idle)."""
    from kafka_wire import Conn, string

    b = broker_factory(HOLD_ARGS).start()
    group, topic = "held-wire", "held-wire-topic"
    c = Conn(b.bootstrap)

    def call(key, version, body):
        corr = c.request(key, version, body)
        frame = c.read_frame()
        assert struct.unpack(">i", frame[:4])[0] == corr
        return frame[4:]

    join = join_v1(group, topic, 10_000)
    body = call(11, 1, join)
    error, generation = struct.unpack(">hi", body[:6])
    assert error == 0
    _, at = read_string(body, 6)
    _, at = read_string(body, at)
    member, _ = read_string(body, at)
    assignment = struct.pack(">h", 0) + arr([string(topic) + arr([struct.pack(">i", 0)])]) + struct.pack(">i", 0)
    sync = string(group) + struct.pack(">i", generation) + string(member) \
        + arr([string(member) + struct.pack(">i", len(assignment)) + assignment])
    assert struct.unpack(">h", call(14, 1, sync)[:2])[0] == 0

    heartbeat = string(group) + struct.pack(">i", generation) + string(member)
    fetch = string(group) + arr([string(topic) + arr([struct.pack(">i", 0)])])
    frames = b""
    for key, version, payload in ((12, 0, heartbeat), (9, 1, fetch)):
        c.corr += 1
        msg = struct.pack(">hhi", key, version, c.corr) + string("wire-test") + payload
        frames += struct.pack(">i", len(msg)) + msg
    for attempt in range(5):
        t0 = time.time()
        c.send_raw(frames)  # one write: both requests are read together
        c.read_frame()
        c.read_frame()
        took = time.time() - t0
        # Held, the fetch would come back after the 2.5 s hold.
        assert took < 1.5, f"attempt {attempt}: heartbeat and fetch took {took:.2f} s"



def test_a_stopping_broker_answers_a_held_heartbeat_instead_of_waiting_out_its_hold(broker_factory):
    """SIGTERM while a member's Heartbeat is held (60 s here): the broker
    answers it and stops, rather than keeping the connection, and the
    shutdown, until the hold is up (the shutdown's drain gives up after 10 s
    and drops the connection unanswered)."""
    from kafka_wire import Conn, string

    b = broker_factory(["--group-initial-rebalance-delay-ms", "0", "--group-classic-hold-heartbeat-ms", "60000"]).start()
    group, topic = "held-stop", "held-stop-topic"
    c = Conn(b.bootstrap)

    join = join_v1(group, topic, 120_000)
    c.request(11, 1, join)
    body = c.read_frame()[4:]
    error, generation = struct.unpack(">hi", body[:6])
    assert error == 0, error
    _, at = read_string(body, 6)
    _, at = read_string(body, at)
    member, _ = read_string(body, at)
    c.request(14, 1, string(group) + struct.pack(">i", generation) + string(member) + arr([string(member) + struct.pack(">i", 0)]))
    assert struct.unpack(">h", c.read_frame()[4:6])[0] == 0
    corr = c.request(12, 0, string(group) + struct.pack(">i", generation) + string(member))
    time.sleep(0.5)  # held by now
    assert b.stop() == 0
    c.sock.settimeout(5)
    frame = c.read_frame()
    assert struct.unpack(">i", frame[:4])[0] == corr
