"""One consumer-group member in its own process, printing what its application
sees as JSON lines on stdout: assignments, revocations, lost partitions, the
offsets it consumed, and its commits. Used by the group tests and the lab.

    member.py BOOTSTRAP GROUP TOPIC STRATEGY [--client confluent|kafka-python]
              [--instance ID] [--session-ms N] [--protocol classic|consumer]
"""

import argparse
import json
import signal
import sys
import time

running = True


def emit(ev, **kw):
    print(json.dumps({"t": time.time(), "ev": ev, **kw}), flush=True)


def stop(*_):
    global running
    running = False


def run_confluent(a):
    from confluent_kafka import Consumer, KafkaException

    conf = {
        "bootstrap.servers": a.bootstrap,
        "group.id": a.group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "topic.metadata.refresh.interval.ms": 1000,
        "client.id": a.name,
    }
    if a.protocol == "consumer":
        conf["group.protocol"] = "consumer"
        if a.strategy:
            conf["group.remote.assignor"] = a.strategy
    else:
        conf.update({
            "partition.assignment.strategy": a.strategy,
            "session.timeout.ms": a.session_ms,
            "heartbeat.interval.ms": 500,
        })
    if a.instance:
        conf["group.instance.id"] = a.instance
    c = Consumer(conf)
    positions = {}

    def commit(parts=None):
        offs = [(p, o) for p, o in positions.items() if parts is None or p in parts]
        if not offs:
            return
        from confluent_kafka import TopicPartition
        try:
            c.commit(offsets=[TopicPartition(a.topic, p, o) for p, o in offs], asynchronous=False)
            emit("commit", offs=offs)
        except KafkaException as e:
            emit("commit_failed", error=str(e))

    def on_assign(_c, parts):
        emit("assign", parts=sorted(p.partition for p in parts))

    def on_revoke(_c, parts):
        ps = {p.partition for p in parts}
        emit("revoking", parts=sorted(ps))
        if a.revoke_sleep:
            time.sleep(a.revoke_sleep)
        commit(ps)
        for p in ps:
            positions.pop(p, None)
        emit("revoke", parts=sorted(ps))

    def on_lost(_c, parts):
        ps = {p.partition for p in parts}
        for p in ps:
            positions.pop(p, None)
        emit("lost", parts=sorted(ps))

    c.subscribe([a.topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
    emit("started")
    last_commit = time.time()
    while running:
        msgs = c.consume(num_messages=500, timeout=0.1)
        got = {}
        stamps = {}
        for m in msgs:
            if m.error():
                emit("error", error=str(m.error()))
                continue
            if m.topic() != a.topic and not a.topic.startswith("^"):
                continue
            got.setdefault(m.partition(), []).append(m.offset())
            if a.emit_values:
                try:
                    stamps.setdefault(m.partition(), []).append(float(m.value()))
                except (TypeError, ValueError):
                    pass
            positions[m.partition()] = m.offset() + 1
        for p, offs in got.items():
            if a.emit_values:
                emit("recs", p=p, offs=offs, ts=stamps.get(p, []))
            else:
                emit("recs", p=p, offs=offs)
        if time.time() - last_commit > 0.5:
            commit()
            last_commit = time.time()
    # From here on the application consumes nothing: closing may leave the
    # group before the revocation callbacks of close() have run.
    emit("closing")
    commit()
    c.close()
    emit("closed")


def run_kafka_python(a):
    # Its warnings (a heartbeat that failed or timed out) go to stderr, which
    # the tests keep.
    import logging
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
    from kafka.coordinator.assignors.range import RangePartitionAssignor
    from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
    from kafka.structs import OffsetAndMetadata

    assignors = {"range": RangePartitionAssignor, "roundrobin": RoundRobinPartitionAssignor}
    if a.strategy == "cooperative-sticky":
        from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
        assignors["cooperative-sticky"] = CooperativeStickyAssignor
    kw = dict(
        bootstrap_servers=a.bootstrap,
        group_id=a.group,
        client_id=a.name,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=a.session_ms,
        heartbeat_interval_ms=500,
        metadata_max_age_ms=1000,
        partition_assignment_strategy=[assignors[a.strategy]],
    )
    if a.instance:
        kw["group_instance_id"] = a.instance
    c = KafkaConsumer(**kw)
    positions = {}

    def commit(parts=None):
        offs = {p: o for p, o in positions.items() if parts is None or p in parts}
        if not offs:
            return
        try:
            c.commit({TopicPartition(a.topic, p): OffsetAndMetadata(o, "", -1) for p, o in offs.items()})
            emit("commit", offs=sorted(offs.items()))
        except Exception as e:  # noqa: BLE001 - reported, not hidden
            emit("commit_failed", error=repr(e))

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            ps = {tp.partition for tp in revoked}
            commit(ps)
            for p in ps:
                positions.pop(p, None)
            emit("revoke", parts=sorted(ps))

        def on_partitions_assigned(self, assigned):
            emit("assign", parts=sorted(tp.partition for tp in assigned))

        def on_partitions_lost(self, lost):
            ps = {tp.partition for tp in lost}
            for p in ps:
                positions.pop(p, None)
            emit("lost", parts=sorted(ps))

    c.subscribe([a.topic], listener=Listener())
    emit("started")
    last_commit = time.time()
    while running:
        batch = c.poll(timeout_ms=100)
        for tp, recs in batch.items():
            offs = [r.offset for r in recs]
            positions[tp.partition] = offs[-1] + 1
            emit("recs", p=tp.partition, offs=offs)
        if time.time() - last_commit > 0.5:
            commit()
            last_commit = time.time()
    emit("closing")
    commit()
    c.close()
    emit("closed")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("bootstrap")
    p.add_argument("group")
    p.add_argument("topic")
    p.add_argument("strategy")
    p.add_argument("--client", default="confluent")
    p.add_argument("--instance")
    p.add_argument("--name", default="member")
    p.add_argument("--session-ms", type=int, default=6000)
    p.add_argument("--protocol", default="classic")
    p.add_argument("--revoke-sleep", type=float, default=0.0)
    p.add_argument("--emit-values", action="store_true", help="records carry produce timestamps; report them")
    a = p.parse_args()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    {"confluent": run_confluent, "kafka-python": run_kafka_python}[a.client](a)


if __name__ == "__main__":
    sys.exit(main())
