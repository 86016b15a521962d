"""Mixed groups: a live classic group rolled member by member onto the consumer
protocol (group.protocol=consumer) and back, with librdkafka and the Java
client, eager and cooperative. The producer writes sequence-numbered records
the whole time: nothing acknowledged may be lost, no partition may have two
owners at once, and duplicates may come only from the uncommitted tail.
Timings go to target/e2e-figures/migration.jsonl."""

import time

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from groups import Member, SeqProducer, caught_up, check_invariants, record_figures, settled, wait_until

ARGS = ["--group-consumer-session-timeout-ms", "6000"]
PARTITIONS = 12
CASES = [("confluent", "cooperative-sticky"), ("confluent", "range"), ("java", "cooperative-sticky"), ("java", "range")]


def create_topic(bootstrap, topic, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(timeout=60)


def whole_log(b):
    """The broker's whole log (b.log() keeps only its tail)."""
    return b.log_path.read_text(errors="replace")


def roll(b, members, group, topic, client, to, strategy, figures, label):
    """Replaces each live member, one at a time, by one speaking `to`."""
    for i in range(len(members)):
        old = members[i]
        if not old.alive():
            continue
        t0 = time.time()
        old.stop()
        name = f"{old.name.split('-')[0]}-{to}{label}"
        assignor = "uniform" if to == "consumer" else strategy
        m = Member(b.bootstrap, group, topic, assignor, name, client=client, protocol=to, session_ms=10000)
        members.append(m)
        wait_until(lambda: settled(members, PARTITIONS) and m.owned(), 90, f"{name} to settle")
        figures.setdefault(f"roll_{label}_s", []).append(round(time.time() - t0, 2))


@pytest.mark.parametrize("client,strategy", CASES, ids=[f"{c}-{s}" for c, s in CASES])
def test_a_classic_group_rolls_onto_the_consumer_protocol_and_back(broker_factory, client, strategy):
    b = broker_factory(ARGS).start()
    topic, group = "rollout", f"roll-{client}-{strategy}"
    create_topic(b.bootstrap, topic, PARTITIONS)
    producer = SeqProducer(b.bootstrap, topic, PARTITIONS, rate=200).start()
    members = []
    figures = {"client": client, "strategy": strategy}
    try:
        for i in range(3):
            members.append(Member(b.bootstrap, group, topic, strategy, f"m{i}-classic", client=client, session_ms=10000))
        wait_until(lambda: settled(members, PARTITIONS) and all(m.owned() for m in members), 90, "the classic group to settle")
        roll(b, members, group, topic, client, "consumer", strategy, figures, "up")
        wait_until(lambda: "group converted to the consumer protocol" in whole_log(b), 10, "the upgrade to be logged")
        roll(b, members, group, topic, client, "classic", strategy, figures, "down")
        wait_until(lambda: "group converted to the classic protocol" in whole_log(b), 10, "the downgrade to be logged")
        producer.stop()
        ends = producer.ends()
        wait_until(lambda: caught_up(members, ends), 90, "the live members to consume every record")
    finally:
        producer.stop_event.set()
        for m in members:
            if m.alive():
                m.stop()
    figures.update(check_invariants(members, producer, time.time()))
    record_figures("migration", figures)


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_a_broker_restart_in_the_middle_of_a_rollout_keeps_the_mixed_group(broker_factory, how):
    """Half rolled (one consumer-protocol member beside two classic ones), the
    broker restarts, cleanly or killed with SIGKILL: the mixed group comes
    back from its log with the same owners, and the rollout finishes."""
    b = broker_factory(ARGS).start()
    topic, group = "restart-rollout", "roll-restart"
    create_topic(b.bootstrap, topic, PARTITIONS)
    producer = SeqProducer(b.bootstrap, topic, PARTITIONS, rate=200).start()
    members = [Member(b.bootstrap, group, topic, "cooperative-sticky", f"m{i}-classic", session_ms=10000) for i in range(3)]
    figures = {"client": "confluent", "strategy": "cooperative-sticky", "restart": how}
    try:
        wait_until(lambda: settled(members, PARTITIONS) and all(m.owned() for m in members), 90, "the classic group to settle")
        members[0].stop()
        members.append(Member(b.bootstrap, group, topic, "uniform", "m0-consumer", protocol="consumer", session_ms=10000))
        wait_until(lambda: settled(members, PARTITIONS) and members[-1].owned(), 90, "the first consumer-protocol member to settle")
        if how == "sigterm":
            assert b.stop() == 0
        else:
            b.kill()
        b.start()
        wait_until(lambda: settled(members, PARTITIONS), 90, "the mixed group to settle after the restart")
        roll(b, members, group, topic, "confluent", "consumer", "cooperative-sticky", figures, "up")
        producer.stop()
        ends = producer.ends()
        wait_until(lambda: caught_up(members, ends), 90, "the live members to consume every record")
    finally:
        producer.stop_event.set()
        for m in members:
            if m.alive():
                m.stop()
    figures.update(check_invariants(members, producer, time.time()))
    record_figures("migration", figures)
